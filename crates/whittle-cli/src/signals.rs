//! Interruptions must not leave stray files or a half-written output.
//!
//! - SIGINT, SIGTERM, SIGHUP: remove the temporary files a save is writing (nothing has
//!   been renamed over the output yet, so the previous output is untouched), then exit 130.
//! - SIGXFSZ (a file size limit was hit) is ignored, so the write fails with an ordinary
//!   error (`File too large`) that the save reports and cleans up after, instead of the
//!   process being killed mid-write.

/// Installs the handlers; harmless if called twice.
pub fn install() {
    let _ = ctrlc::set_handler(|| {
        whittle_ir::save::remove_temp_files_in_flight();
        eprintln!("error: interrupted; nothing was written");
        std::process::exit(130);
    });
    // SAFETY: setting a signal's disposition to SIG_IGN has no memory-safety preconditions.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
}
