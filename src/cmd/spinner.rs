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
        let _erase = EraseOnInterrupt::install();
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

/// While a line is on the screen, Ctrl-C with its default action (elhaz ends) first
/// erases the line, so the shell's prompt does not land after it. Where SIGINT is
/// handled or ignored already, nothing changes. The old action is back when dropped.
struct EraseOnInterrupt(Option<libc::sigaction>);

impl EraseOnInterrupt {
    fn install() -> EraseOnInterrupt {
        // SAFETY: sigaction with valid pointers; the handler below only calls
        // async-signal-safe functions (write, raise).
        unsafe {
            let mut old: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(libc::SIGINT, std::ptr::null(), &mut old) != 0
                || old.sa_sigaction != libc::SIG_DFL
            {
                return EraseOnInterrupt(None);
            }
            let mut act: libc::sigaction = std::mem::zeroed();
            act.sa_sigaction = erase_then_end as *const () as libc::sighandler_t;
            act.sa_flags = libc::SA_RESETHAND;
            libc::sigemptyset(&mut act.sa_mask);
            if libc::sigaction(libc::SIGINT, &act, std::ptr::null_mut()) != 0 {
                return EraseOnInterrupt(None);
            }
            EraseOnInterrupt(Some(old))
        }
    }
}

impl Drop for EraseOnInterrupt {
    fn drop(&mut self) {
        if let Some(old) = self.0.take() {
            // SAFETY: restores the action read at install.
            unsafe {
                libc::sigaction(libc::SIGINT, &old, std::ptr::null_mut());
            }
        }
    }
}

/// Erases the line, then lets SIGINT end elhaz as it would have: SA_RESETHAND made its
/// action the default again, and the signal raised here is delivered on return.
extern "C" fn erase_then_end(_: libc::c_int) {
    const ERASE: &[u8] = b"\r\x1b[2K";
    // SAFETY: write(2) and raise(3) are async-signal-safe.
    unsafe {
        libc::write(2, ERASE.as_ptr().cast(), ERASE.len());
        libc::raise(libc::SIGINT);
    }
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
