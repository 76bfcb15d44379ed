//! A spinner (or a progress bar, when the work can count) on stderr while waiting for
//! STS, SSO or the daemon: shown only on a terminal, and only after 300 ms, so fast
//! answers print nothing. Used by the command
//! layer only; prompts below it reach [`suspend`] through credentials::mfa's guard.

use std::sync::Mutex;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

static CURRENT: Mutex<Option<ProgressBar>> = Mutex::new(None);

/// Runs `work` with a spinner saying `message` once it takes more than 300 ms.
pub(crate) fn spin<T>(message: &str, work: impl FnOnce() -> T) -> T {
    let message = message.to_string();
    watch(move || (0, 0, message.clone()), work)
}

/// Whether a spinner or bar may be drawn: on a terminal, unless ELHAZ_NO_SPINNER.
fn drawn() -> bool {
    use std::io::IsTerminal;
    std::io::stderr().is_terminal() && std::env::var_os("ELHAZ_NO_SPINNER").is_none()
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_spinner())
        .progress_chars("=> ")
}

/// Runs `work` with a line on stderr once it takes more than 300 ms: `status()` is
/// read ten times a second as (done, total, text), shown as a bar while total is above
/// 0, else as a spinner. The line is cleared when `work` returns.
pub(crate) fn watch<T>(
    status: impl Fn() -> (u64, u64, String) + Send + 'static,
    work: impl FnOnce() -> T,
) -> T {
    if !drawn() {
        return work();
    }
    let pb = ProgressBar::hidden();
    pb.set_style(style("{spinner} {msg}"));
    pb.set_message(status().2);
    if let Ok(mut c) = CURRENT.lock() {
        *c = Some(pb.clone());
    }
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let shown = pb.clone();
    let waiter = std::thread::spawn(move || {
        use std::sync::mpsc::RecvTimeoutError::Timeout;
        if rx.recv_timeout(Duration::from_millis(300)) != Err(Timeout) {
            return;
        }
        shown.set_draw_target(indicatif::ProgressDrawTarget::stderr());
        let mut as_bar = false;
        loop {
            let (done, total, text) = status();
            if (total > 0) != as_bar {
                as_bar = total > 0;
                shown.set_style(style(if as_bar {
                    "[{bar:30}] {msg}"
                } else {
                    "{spinner} {msg}"
                }));
            }
            if as_bar {
                shown.set_length(total);
                shown.set_position(done);
            }
            shown.set_message(text);
            shown.tick();
            if rx.recv_timeout(Duration::from_millis(100)) != Err(Timeout) {
                return;
            }
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
        if !drawn() {
            return Shown(None);
        }
        let pb = ProgressBar::new_spinner();
        pb.set_style(style("{spinner} {msg}"));
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
