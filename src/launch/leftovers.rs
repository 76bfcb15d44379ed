//! What a `--server` run leaves behind when it is killed (SIGKILL runs no clean-up):
//! the private directory of the child's AWS files (`elhaz-aws-*`, see
//! `crate::env::chain`). Each run records its own process in that directory (a `pid`
//! file), and each run removes the directories whose recorded process is gone. Never
//! another user's, never one whose process lives, never one it cannot tell about (no
//! `pid` file, another pid namespace): those stay.

use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

/// How `crate::env::chain::prepare` names the directories.
const PREFIX: &str = "elhaz-aws-";

/// The file, in each directory, that names the process it belongs to.
const OWNER_FILE: &str = "pid";

/// The process a directory belongs to: its pid, when it started (so that a reused pid
/// is not taken for it) and its pid namespace (so that a pid of another is not read
/// in ours).
#[derive(Debug, PartialEq, Eq)]
struct Owner {
    pid: u32,
    start: Option<u64>,
    namespace: Option<u64>,
}

impl Owner {
    fn me() -> Owner {
        let pid = std::process::id();
        Owner {
            pid,
            start: crate::sys::process_start(pid),
            namespace: crate::sys::pid_namespace(),
        }
    }

    /// `PID START NAMESPACE`, `-` for what is not known.
    fn line(&self) -> String {
        let or_dash = |v: Option<u64>| v.map_or("-".to_string(), |v| v.to_string());
        format!(
            "{} {} {}\n",
            self.pid,
            or_dash(self.start),
            or_dash(self.namespace)
        )
    }

    fn parse(text: &str) -> Option<Owner> {
        let mut fields = text.lines().next()?.split(' ');
        let pid = fields.next()?.parse().ok().filter(|&p| p > 0)?;
        let mut next = || match fields.next()? {
            "-" => Some(None),
            v => v.parse().ok().map(Some),
        };
        let (start, namespace) = (next()?, next()?);
        Some(Owner {
            pid,
            start,
            namespace,
        })
    }

    /// Whether the process is gone for sure. A pid of another namespace, or a live
    /// process whose start cannot be compared, is not.
    fn gone(&self) -> bool {
        if self.namespace != crate::sys::pid_namespace() {
            return false;
        }
        match crate::sys::process_start(self.pid) {
            // That pid runs: gone only if it is another process now.
            Some(start) => self.start.is_some_and(|s| s != start),
            None => {
                let pid = nix::unistd::Pid::from_raw(self.pid as i32);
                nix::sys::signal::kill(pid, None) == Err(nix::errno::Errno::ESRCH)
            }
        }
    }
}

/// Records this process as the owner of `dir`, a directory it has just made.
pub(super) fn mark(dir: &Path) {
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(dir.join(OWNER_FILE))
        .and_then(|mut f| f.write_all(Owner::me().line().as_bytes()));
    if let Err(e) = written {
        // The run goes on; only a later sweep will not know this directory's owner.
        tracing::debug!(error = %e, dir = %dir.display(), "cannot record the directory's owner");
    }
}

/// The owner recorded in `dir` (None: no record, or not one of ours).
fn owner_of(dir: &Path) -> Option<Owner> {
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(dir.join(OWNER_FILE))
        .ok()?;
    if !f.metadata().ok()?.is_file() {
        return None;
    }
    let mut text = String::new();
    (&mut f).take(128).read_to_string(&mut text).ok()?;
    Owner::parse(&text)
}

/// Removes the directories in `base` that a run whose process is gone left behind,
/// `keep` (this run's own) aside. Only directories of this user, as `prepare` makes
/// them (not a link, 0700), with a record of their owner.
pub(super) fn sweep(base: &Path, keep: &Path) {
    let Ok(entries) = std::fs::read_dir(base) else {
        return;
    };
    let me = nix::unistd::getuid().as_raw();
    for entry in entries.flatten() {
        let path = entry.path();
        if path == keep
            || !entry
                .file_name()
                .to_str()
                .is_some_and(|n| n.starts_with(PREFIX))
        {
            continue;
        }
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if !meta.is_dir() || meta.uid() != me || meta.mode() & 0o777 != 0o700 {
            continue;
        }
        if owner_of(&path).is_some_and(|o| o.gone()) {
            match std::fs::remove_dir_all(&path) {
                Ok(()) => tracing::debug!(dir = %path.display(), "removed a killed run's files"),
                Err(e) => {
                    tracing::debug!(error = %e, dir = %path.display(), "cannot remove a killed run's files")
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_owner_survives_its_line() {
        let me = Owner::me();
        assert_eq!(Owner::parse(&me.line()), Some(me));
        let partial = Owner {
            pid: 7,
            start: None,
            namespace: Some(3),
        };
        assert_eq!(partial.line(), "7 - 3\n");
        assert_eq!(Owner::parse("7 - 3\n"), Some(partial));
        for bad in ["", "0 1 2", "x 1 2", "7 1", "7 x 2", "-7 1 2"] {
            assert_eq!(Owner::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn this_process_is_not_gone_and_another_namespace_is_never_gone() {
        let me = Owner::me();
        assert!(!me.gone());
        let reused = Owner {
            start: me.start.map(|s| s + 1),
            ..Owner::me()
        };
        assert_eq!(
            reused.gone(),
            me.start.is_some(),
            "the pid is another process now"
        );
        let elsewhere = Owner {
            pid: u32::MAX / 2,
            start: None,
            namespace: me.namespace.map(|n| n + 1),
        };
        assert!(!elsewhere.gone());
    }
}
