//! The user's browser, opened on a URL that must not be seen by other local users: a
//! console sign-in URL (a bearer credential), an IAM Identity Center `/authorize` URL
//! (its `state`, client and redirect would let another user send the listener a code
//! for her own identity) or a device verification URL. Nothing of it goes in argv,
//! where every local user can read it (`/proc/*/cmdline`): the browser is given a
//! `file://` page (0600, in a fresh 0700 directory) that redirects to the URL, and the
//! page is removed once the browser has read it. `$BROWSER` (with Python's `%s` and
//! `:` conventions), else `xdg-open` (`open` on macOS). Knows nothing of AWS.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use percent_encoding::NON_ALPHANUMERIC;

use crate::error::{Error, Kind, Result};

/// The URL opener when $BROWSER is unset: `open` on macOS, xdg-open elsewhere (on
/// Linux, `open` is openvt or run-mailcap, which must never get the URL).
const OPENERS: &[&str] = if cfg!(target_os = "macos") {
    &["open"]
} else {
    &["xdg-open"]
};

/// How long the page waits for the browser to read it.
const PAGE_WAIT: Duration = Duration::from_secs(60);

/// How long a detached browser command has to fail before it counts as opened.
const SETTLE: Duration = Duration::from_secs(1);

/// After the page was last read, how long it stays for a second reader (xdg-open
/// looks at a file's type before the browser opens it).
const PAGE_GRACE: Duration = Duration::from_secs(2);

/// The browser command, as `sh -c` runs it with the page's URL as `$1`: `$BROWSER`'s
/// first entry (`%s` stands for the URL), else the platform's opener.
fn command() -> Result<(String, String)> {
    let browser = std::env::var("BROWSER")
        .ok()
        .filter(|b| !b.trim().is_empty());
    let program = match browser {
        Some(b) => b.split(':').next().unwrap_or(&b).to_string(),
        None => OPENERS
            .iter()
            .find(|p| which::which(p).is_ok())
            .map(|p| p.to_string())
            .ok_or_else(|| Error::usage("no browser found: set $BROWSER, or install xdg-open"))?,
    };
    let script = if program.contains("%s") {
        program.replace("%s", "\"$1\"")
    } else {
        format!("{program} \"$1\"")
    };
    Ok((program, script))
}

/// Starts the browser on the page.
fn spawn(page: &Page, quiet: bool) -> Result<(String, std::process::Child)> {
    let (program, script) = command()?;
    let mut cmd = std::process::Command::new("/bin/sh");
    cmd.args(["-c", &script, "sh", &page.file_url()]);
    if quiet {
        cmd.stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
    }
    let child = cmd.spawn().map_err(|e| {
        Error::other(format!(
            "cannot start the browser {program:?}: {}",
            crate::error::io_reason(&e)
        ))
    })?;
    Ok((program, child))
}

/// Opens `url` and waits until the browser has read the page (or the browser command
/// failed), then for the browser command itself; the program's name on success.
pub(crate) fn open_and_wait(url: &str, title: &str) -> Result<String> {
    let page = Page::write(url, title)?;
    let mut watch = page.watch();
    let (program, mut child) = spawn(&page, false)?;
    let failed = |status: std::process::ExitStatus| {
        Error::other(format!("the browser {program:?} failed ({status})"))
    };
    let deadline = Instant::now() + PAGE_WAIT;
    let mut exited = None;
    while !watch.done() {
        if exited.is_none()
            && let Ok(Some(status)) = child.try_wait()
        {
            if !status.success() {
                return Err(failed(status));
            }
            exited = Some(status);
        }
        if Instant::now() > deadline {
            return Err(Error::other(format!(
                "the browser {program:?} did not open the page within {}s",
                PAGE_WAIT.as_secs()
            )));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(page);
    let status = match exited {
        Some(s) => s,
        None => child.wait().map_err(|e| {
            Error::other(format!(
                "cannot wait for the browser {program:?}: {}",
                crate::error::io_reason(&e)
            ))
        })?,
    };
    if !status.success() {
        return Err(failed(status));
    }
    Ok(program)
}

/// Opens `url` without waiting: a thread keeps the page until the browser has read it
/// (or a minute has passed) and reaps the browser command; dropping what it returns
/// removes the page at once. None when the browser command did not start or failed
/// at once.
pub(crate) fn open_detached(url: &str, title: &str) -> Option<Opened> {
    let page = Page::write(url, title).ok()?;
    let mut watch = page.watch();
    let (_, mut child) = spawn(&page, true).ok()?;
    // A command that fails (no such browser, no display) is no opened browser: it has
    // a second to fail, unless the page is read or the command succeeds before.
    let settle = Instant::now() + SETTLE;
    loop {
        match child.try_wait() {
            Ok(Some(status)) if !status.success() => return None,
            Ok(Some(_)) => break,
            Ok(None) => {}
            Err(_) => return None,
        }
        if watch.seen() || Instant::now() >= settle {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let page = std::sync::Arc::new(std::sync::Mutex::new(Some(page)));
    let kept = page.clone();
    std::thread::spawn(move || {
        let mut watch = watch;
        let deadline = Instant::now() + PAGE_WAIT;
        while !watch.done() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        drop(kept.lock().map(|mut p| p.take()));
        let _ = child.wait();
    });
    Some(Opened(page))
}

/// A browser opened by [`open_detached`]: its page, removed when this is dropped (or
/// once read, whichever is first).
pub(crate) struct Opened(std::sync::Arc<std::sync::Mutex<Option<Page>>>);

impl Drop for Opened {
    fn drop(&mut self) {
        drop(self.0.lock().map(|mut p| p.take()));
    }
}

/// The local page that redirects the browser to the URL; removed on drop.
struct Page {
    dir: tempfile::TempDir,
    path: PathBuf,
}

impl Page {
    fn write(url: &str, title: &str) -> Result<Page> {
        // The user's runtime directory (a tmpfs of their own) where there is one.
        let base = std::env::var_os("XDG_RUNTIME_DIR")
            .map(PathBuf::from)
            .filter(|d| d.is_absolute() && d.is_dir())
            .unwrap_or_else(std::env::temp_dir);
        let fail = |e: &std::io::Error| Error::io(Kind::Other, "cannot write a page in", &base, e);
        let dir = tempfile::Builder::new()
            .prefix("elhaz-page-")
            .permissions(std::fs::Permissions::from_mode(0o700))
            .tempdir_in(&base)
            .map_err(|e| fail(&e))?;
        let path = dir.path().join("open.html");
        let (html, title) = (escape_html(url), escape_html(title));
        let text = format!(
            "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">\n<meta name=\"referrer\" content=\"no-referrer\">\n<meta http-equiv=\"refresh\" content=\"0;url={html}\">\n<title>{title}</title></head>\n<body><p><a href=\"{html}\">Continue: {title}</a></p></body></html>\n"
        );
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| fail(&e))?;
        file.write_all(text.as_bytes()).map_err(|e| fail(&e))?;
        Ok(Page { dir, path })
    }

    /// The page as a file:// URL (its path percent-encoded).
    fn file_url(&self) -> String {
        const PATH: &percent_encoding::AsciiSet = &NON_ALPHANUMERIC
            .remove(b'/')
            .remove(b'-')
            .remove(b'_')
            .remove(b'.');
        use std::os::unix::ffi::OsStrExt;
        format!(
            "file://{}",
            percent_encoding::percent_encode(self.path.as_os_str().as_bytes(), PATH)
        )
    }

    fn watch(&self) -> PageWatch {
        PageWatch::new(&self.path)
    }
}

impl Drop for Page {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
        let _ = std::fs::remove_dir(self.dir.path());
    }
}

/// Whether the page has been read (opens and closes of the file, seen through
/// [`crate::sys::FileWatch`]; without it, a fixed wait).
struct PageWatch {
    watch: Option<crate::sys::FileWatch>,
    open: i64,
    read_once: bool,
    last: Instant,
}

impl PageWatch {
    fn new(path: &Path) -> PageWatch {
        PageWatch {
            watch: crate::sys::FileWatch::new(path),
            open: 0,
            read_once: false,
            last: Instant::now(),
        }
    }

    /// True once the page has been opened and closed, no one has it open, and no one
    /// opened it for PAGE_GRACE.
    fn done(&mut self) -> bool {
        if self.watch.is_none() {
            // No way to watch: leave the browser ten seconds to read it.
            return self.last.elapsed() >= Duration::from_secs(10);
        }
        self.update();
        self.read_once && self.open <= 0 && self.last.elapsed() >= PAGE_GRACE
    }

    /// Whether the page has been opened at all.
    fn seen(&mut self) -> bool {
        self.update();
        self.read_once || self.open > 0
    }

    fn update(&mut self) {
        let Some(w) = &self.watch else { return };
        let (opened, closed) = w.events();
        if opened + closed > 0 {
            self.open += opened as i64 - closed as i64;
            self.read_once |= closed > 0;
            self.last = Instant::now();
        }
    }
}

/// Escapes text for HTML (element text and attribute values).
pub(crate) fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}
