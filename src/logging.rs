//! Logging: the CLI logs to stderr (quiet unless -v or ELHAZ_LOG); the daemon logs to
//! its file, rotated at 5 MB with 3 old files kept (as the original's daemon.log).
//! No secret is ever passed to a log call. It must not know of credentials, configs
//! or the daemon's protocol.

use crate::terminal::escape_controls;
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use tracing_subscriber::EnvFilter;
use tracing_subscriber::field::MakeExt;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::error::{Error, Kind, Result};
use crate::fsutil::{ensure_private_dir, open_private};

pub(crate) const MAX_BYTES: u64 = 5 * 1024 * 1024;
pub(crate) const BACKUPS: usize = 3;

/// Targets that write whole requests at trace level, headers included. The SDK redacts
/// `Authorization` and `x-amz-security-token` but not, for one, the SSO portal's
/// `x-amz-sso_bearer_token`; no ELHAZ_LOG may enable these below debug.
const REQUEST_DUMPERS: &[&str] = &[
    "aws_smithy_runtime",
    "aws_smithy_runtime_api",
    "aws_smithy_http_client",
    "aws_sigv4",
    "hyper",
    "hyper_util",
    "h2",
];

fn filter(verbose: u8, default: &str) -> EnvFilter {
    if let Ok(f) = std::env::var("ELHAZ_LOG")
        && let Ok(f) = EnvFilter::try_new(f)
    {
        return f;
    }
    EnvFilter::new(match verbose {
        0 => default,
        1 => "elhaz=info",
        _ => "elhaz=debug",
    })
}

/// A global filter that lets everything through but the request dumpers' trace
/// events: it only ever narrows what [`filter`] enables.
fn cap() -> tracing_subscriber::filter::Targets {
    use tracing_subscriber::filter::LevelFilter;
    tracing_subscriber::filter::Targets::new()
        .with_default(LevelFilter::TRACE)
        .with_targets(REQUEST_DUMPERS.iter().map(|t| (*t, LevelFilter::DEBUG)))
}

/// Stderr logging for the CLI. Without -v or ELHAZ_LOG the filter would let through
/// only elhaz's error events, and the CLI has none (the panic hook's duplicates the
/// message the default hook has printed): no subscriber is installed then, which
/// saves building one at every start.
pub fn init_cli(verbose: u8) {
    if verbose == 0 && std::env::var_os("ELHAZ_LOG").is_none() {
        return;
    }
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter(verbose, "elhaz=error"))
        .with_writer(io::stderr)
        .with_target(false)
        .finish()
        .with(cap())
        .try_init();
}

/// File logging for the daemon. Returns the guard that flushes on drop.
pub(crate) fn init_daemon(
    path: &Path,
    verbose: u8,
) -> Result<tracing_appender::non_blocking::WorkerGuard> {
    let writer = RotatingFile::open(path, MAX_BYTES, BACKUPS)?;
    let (nb, guard) = tracing_appender::non_blocking(writer);
    // Every field, the message too, with its control characters escaped: values come
    // from peers (action, request_id, config names) and files (error messages), and a
    // newline or an escape sequence in one must not forge a line or reach the terminal
    // of whoever reads the log.
    let fields = tracing_subscriber::fmt::format::debug_fn(|w, field, value| {
        let text = format!("{value:?}");
        if field.name() == "message" {
            write!(w, "{}", escape_controls(&text))
        } else {
            write!(w, "{}={}", field.name(), escape_controls(&text))
        }
    })
    .delimited(" ");
    let _ = tracing_subscriber::fmt()
        .fmt_fields(fields)
        .with_env_filter(filter(verbose.max(1), "elhaz=info"))
        .with_writer(nb)
        .with_ansi(false)
        .with_target(false)
        .finish()
        .with(cap())
        .try_init();
    Ok(guard)
}

/// A log file that rotates by size: `daemon.log`, `daemon.log.1` … `.N`.
#[derive(Clone)]
pub(crate) struct RotatingFile {
    inner: Arc<Mutex<Inner>>,
}

struct Inner {
    path: PathBuf,
    file: File,
    size: u64,
    max: u64,
    backups: usize,
}

impl RotatingFile {
    pub(crate) fn open(path: &Path, max: u64, backups: usize) -> Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            ensure_private_dir(dir, Kind::Daemon)?;
        }
        let file =
            open_private(path).map_err(|e| Error::io(Kind::Daemon, "cannot open log", path, &e))?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        Ok(RotatingFile {
            inner: Arc::new(Mutex::new(Inner {
                path: path.to_path_buf(),
                file,
                size,
                max,
                backups,
            })),
        })
    }
}

impl Inner {
    fn rotate(&mut self) -> io::Result<()> {
        let name = |i: usize| {
            let mut s = self.path.as_os_str().to_owned();
            s.push(format!(".{i}"));
            PathBuf::from(s)
        };
        for i in (1..self.backups).rev() {
            let _ = std::fs::rename(name(i), name(i + 1));
        }
        if self.backups > 0 {
            std::fs::rename(&self.path, name(1))?;
        } else {
            std::fs::remove_file(&self.path)?;
        }
        self.file = open_private(&self.path)?;
        self.size = 0;
        Ok(())
    }
}

impl Write for RotatingFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if inner.size > 0 && inner.size + buf.len() as u64 > inner.max {
            inner.rotate()?;
        }
        let n = inner.file.write(buf)?;
        inner.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .file
            .flush()
    }
}

impl<'a> MakeWriter<'a> for RotatingFile {
    type Writer = RotatingFile;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotates_by_size_and_keeps_three() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("logs").join("daemon.log");
        let mut w = RotatingFile::open(&path, 100, 3).unwrap();
        for i in 0..20 {
            writeln!(w, "line {i:03} .......................................").unwrap();
        }
        assert!(path.exists());
        for i in 1..=3 {
            assert!(dir.path().join(format!("logs/daemon.log.{i}")).exists());
        }
        assert!(!dir.path().join("logs/daemon.log.4").exists());
        assert!(std::fs::metadata(&path).unwrap().len() <= 100);
    }

    #[test]
    fn control_characters_are_escaped_and_nothing_else_changes() {
        assert_eq!(escape_controls("prod-1 é \\ \"x\""), "prod-1 é \\ \"x\"");
        assert_eq!(
            escape_controls("a\nb\rc\td\x1b[2J\x7f\u{9b}31m\x00"),
            "a\\nb\\rc\\td\\x1b[2J\\x7f\\u{9b}31m\\x00"
        );
    }
}
