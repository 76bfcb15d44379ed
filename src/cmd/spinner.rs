//! A spinner on stderr while waiting for STS, SSO or the daemon: shown only on a
//! terminal, and only after 300 ms, so fast answers print nothing. Used by the command
//! layer only; prompts below it reach [`suspend`] through credentials::mfa's guard.

use std::sync::Mutex;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

static CURRENT: Mutex<Option<ProgressBar>> = Mutex::new(None);

/// Runs `work` with a spinner saying `message` once it takes more than 300 ms.
pub(crate) fn spin<T>(message: &str, work: impl FnOnce() -> T) -> T {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() || std::env::var_os("ELHAZ_NO_SPINNER").is_some() {
        return work();
    }
    let pb = ProgressBar::hidden();
    pb.set_style(
        ProgressStyle::with_template("{spinner} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    pb.set_message(message.to_string());
    if let Ok(mut c) = CURRENT.lock() {
        *c = Some(pb.clone());
    }
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let shown = pb.clone();
    let waiter = std::thread::spawn(move || {
        if rx.recv_timeout(Duration::from_millis(300)).is_err() {
            shown.set_draw_target(indicatif::ProgressDrawTarget::stderr());
            shown.enable_steady_tick(Duration::from_millis(100));
            let _ = rx.recv();
        }
    });
    let out = work();
    let _ = tx.send(());
    let _ = waiter.join();
    pb.finish_and_clear();
    if let Ok(mut c) = CURRENT.lock() {
        *c = None;
    }
    out
}

/// Runs `f` (a prompt) with the spinner, if any, out of the way.
pub(crate) fn suspend<T>(f: impl FnOnce() -> T) -> T {
    let pb = CURRENT.lock().ok().and_then(|c| c.clone());
    match pb {
        Some(pb) => pb.suspend(f),
        None => f(),
    }
}

/// A spinner shown at once (on a terminal) until dropped, for waits whose text is
/// known only once they start (an SSO login's code). It does not take the place of
/// [`spin`]'s spinner.
pub(crate) struct Shown(Option<ProgressBar>);

impl Shown {
    pub(crate) fn start(message: &str) -> Shown {
        use std::io::IsTerminal;
        if !std::io::stderr().is_terminal() || std::env::var_os("ELHAZ_NO_SPINNER").is_some() {
            return Shown(None);
        }
        let pb = ProgressBar::new_spinner();
        pb.set_style(
            ProgressStyle::with_template("{spinner} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        pb.set_message(message.to_string());
        pb.enable_steady_tick(Duration::from_millis(100));
        Shown(Some(pb))
    }
}

impl Drop for Shown {
    fn drop(&mut self) {
        if let Some(pb) = self.0.take() {
            pb.finish_and_clear();
        }
    }
}
