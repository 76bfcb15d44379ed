//! The daemon's lock file and socket directory: one daemon per socket, found by its
//! lock even when its socket is gone, and no socket in a directory another user could
//! write to. Knows nothing of the protocol or of what the daemon serves.

use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::fcntl::{Flock, FlockArg};

use crate::error::{Error, Kind, Result, display_path};
use crate::fsutil::ensure_private_dir;

/// The lock file next to the socket, held for the daemon's life.
pub(crate) fn lock_path(socket: &Path) -> PathBuf {
    let mut s = socket.as_os_str().to_owned();
    s.push(".lock");
    PathBuf::from(s)
}

/// Takes the daemon lock for `socket` and writes this process's pid in it (so that
/// `daemon stop` and `status` find the daemon even when its socket is gone). Fails with
/// a Daemon error naming the socket when another daemon holds it, and refuses a socket
/// directory another user could write to (see [`check_socket_dir`]) and a lock path
/// that is a symbolic link.
pub(crate) fn take_lock(socket: &Path) -> Result<Flock<std::fs::File>> {
    let dir = socket_dir(socket);
    ensure_private_dir(dir, Kind::Daemon)?;
    check_socket_dir(dir)?;
    let path = lock_path(socket);
    let mut file = open_lock(&path, true)?;
    // A client checking whether the lock is held holds it (shared) for an instant: try
    // a few times before concluding that another daemon has it.
    let mut tries = 0;
    let lock = loop {
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => break lock,
            Err((f, _)) if tries < 10 => {
                file = f;
                tries += 1;
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(_) => {
                return Err(Error::daemon(format!(
                    "a daemon is already running on {}",
                    display_path(socket)
                )));
            }
        }
    };
    let pid = format!("{}\n", std::process::id());
    lock.set_len(0)
        .and_then(|()| std::os::unix::fs::FileExt::write_all_at(&*lock, pid.as_bytes(), 0))
        .map_err(|e| Error::io(Kind::Daemon, "cannot write daemon lock", &path, &e))?;
    Ok(lock)
}

/// The directory of a socket path (`.` for a bare name).
pub(crate) fn socket_dir(socket: &Path) -> &Path {
    socket
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// Opens the lock file without following a symbolic link: one planted at the lock
/// path would otherwise make the daemon create or lock a file of the planter's choice.
fn open_lock(path: &Path, create: bool) -> Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(create)
        .create(create)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
        .open(path);
    let not_regular = || {
        Error::daemon(format!(
            "the daemon lock {} is not a regular file",
            display_path(path)
        ))
        .with_hint(format!(
            "if you did not put it there, someone else did: remove it (rm {}) or use another --socket-path",
            path.display()
        ))
    };
    match file {
        Ok(f) if f.metadata().is_ok_and(|m| m.is_file()) => Ok(f),
        Ok(_) => Err(not_regular()),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => Err(Error::daemon(format!(
            "the daemon lock {} is a symbolic link; elhaz does not follow it",
            display_path(path)
        ))
        .with_hint(format!(
            "if you did not put it there, someone else did: remove it (rm {}) or use another --socket-path",
            path.display()
        ))),
        Err(e) => Err(Error::io(Kind::Daemon, "cannot open daemon lock", path, &e)),
    }
}

/// Refuses a lock path that is there but is not a regular file (a symbolic link, a
/// FIFO…), with the same error the daemon gives, so the client can say it.
pub(crate) fn check_lock(socket: &Path) -> Result<()> {
    let path = lock_path(socket);
    match std::fs::symlink_metadata(&path) {
        Ok(m) if !m.is_file() => open_lock(&path, false).map(drop),
        _ => Ok(()),
    }
}

/// Refuses a socket directory that another user owns or that group or others may write
/// to: whoever can write there can swap the socket for their own and be handed the
/// user's requests (and MFA codes). Root's directories are accepted when not writable
/// by others.
pub(crate) fn check_socket_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(dir)
        .map_err(|e| Error::io(Kind::Daemon, "cannot read socket directory", dir, &e))?;
    let me = nix::unistd::geteuid().as_raw();
    let shown = display_path(dir);
    if m.uid() != me && m.uid() != 0 {
        return Err(Error::daemon(format!(
            "the socket directory {shown} belongs to uid {}, not to you (uid {me}): whoever owns it can replace the daemon's socket",
            m.uid()
        ))
        .with_hint(format!(
            "use a directory of your own (mkdir -m 700 DIR; --socket-path DIR/daemon.sock), or have root give it to you: chown {me} {0} && chmod 700 {0}",
            dir.display()
        )));
    }
    if m.mode() & 0o022 != 0 {
        return Err(Error::daemon(format!(
            "the socket directory {shown} is writable by other users (mode {:o}): they could replace the daemon's socket",
            m.mode() & 0o7777
        ))
        .with_hint(format!("make it private: chmod 700 {}", dir.display())));
    }
    Ok(())
}

/// Whether a daemon (running, or still shutting down) holds the lock of `socket`.
pub(crate) fn lock_is_held(socket: &Path) -> bool {
    lock_holder(socket).is_some()
}

/// The pid of the daemon holding the lock of `socket` (0 when it holds the lock but
/// has not written its pid yet, or was started by an older elhaz); None when no daemon
/// holds it.
pub(crate) fn lock_holder(socket: &Path) -> Option<u32> {
    use std::io::Read;
    let file = open_lock(&lock_path(socket), false).ok()?;
    match Flock::lock(file, FlockArg::LockSharedNonblock) {
        Ok(_) => None,
        Err((mut file, _)) => {
            let mut text = String::new();
            let _ = (&mut file).take(32).read_to_string(&mut text);
            Some(text.trim().parse().unwrap_or(0))
        }
    }
}
