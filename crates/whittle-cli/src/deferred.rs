//! Dropping big things off the critical path: an onnxruntime session pool takes ~15 ms to
//! tear down, time a command does not need to wait for while it has other work to do.
//!
//! Invariant: everything handed to [`drop_later`] is dropped before the process exits —
//! [`finish`] joins every pending drop, and `main_exit_code` calls it — so destructors with
//! side effects (temporary folders removed) still run, and never concurrently with exit.
use std::sync::Mutex;
use std::thread::JoinHandle;

static PENDING: Mutex<Vec<JoinHandle<()>>> = Mutex::new(Vec::new());

/// Drops `value` on a background thread (on this one if no thread can be started).
pub fn drop_later<T: Send + 'static>(value: T) {
    // When the thread cannot start, the closure — and the value with it — is dropped here.
    if let Ok(handle) = std::thread::Builder::new()
        .name("whittle-drop".into())
        .spawn(move || drop(value))
    {
        PENDING
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(handle);
    }
}

/// Waits for every pending drop.
pub fn finish() {
    let handles = std::mem::take(&mut *PENDING.lock().unwrap_or_else(|e| e.into_inner()));
    for h in handles {
        // A panicking destructor has already printed its message; exit as planned.
        let _ = h.join();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    struct Counted(Arc<AtomicUsize>);
    impl Drop for Counted {
        fn drop(&mut self) {
            std::thread::sleep(std::time::Duration::from_millis(20));
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn every_value_is_dropped_by_finish() {
        let n = Arc::new(AtomicUsize::new(0));
        for _ in 0..3 {
            drop_later(Counted(n.clone()));
        }
        finish();
        assert_eq!(n.load(Ordering::SeqCst), 3);
    }
}
