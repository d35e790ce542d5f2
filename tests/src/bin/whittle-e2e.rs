//! The `whittle` CLI for the end-to-end suites (same code as the real binary).
fn main() -> std::process::ExitCode {
    whittle_cli::main_exit_code()
}
