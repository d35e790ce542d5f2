//! `whittle`: inspect, clean up, compress and verify ONNX models.

fn main() -> std::process::ExitCode {
    whittle_cli::main_exit_code()
}
