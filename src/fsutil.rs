//! Private files: directories created 0700, files written 0600 and atomically (temp
//! file, fsync, rename), or keeping the mode of the file they replace; small files read
//! without ever blocking or reading without end; and where the home directory is. It knows nothing of what the files hold.

use std::fs::{self, File, Metadata, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::error::{Error, Kind, Result, display_path};

/// The home directory: $HOME, else the passwd entry.
pub(crate) fn home_dir() -> Result<PathBuf> {
    if let Some(h) = std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        return Ok(PathBuf::from(h));
    }
    nix::unistd::User::from_uid(nix::unistd::getuid())
        .ok()
        .flatten()
        .map(|u| u.dir)
        .ok_or_else(|| {
            Error::usage(
                "cannot find the home directory: HOME is unset and there is no passwd entry",
            )
            .with_hint("set HOME, or pass --config-dir and --socket-path")
        })
}

/// Creates `dir` and its missing parents with mode 0700. An existing directory is left
/// as it is.
pub(crate) fn ensure_private_dir(dir: &Path, kind: Kind) -> Result<()> {
    match fs::metadata(dir) {
        Ok(m) if m.is_dir() => return Ok(()),
        Ok(_) => {
            return Err(Error::new(
                kind,
                format!("{}: is not a directory", display_path(dir)),
            ));
        }
        Err(_) => {}
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| Error::io(kind, "cannot create directory", dir, &e))
}

/// Writes `data` to `path` atomically, mode 0600: a temp file in the same directory,
/// fsync, rename over `path`, fsync the directory. On any failure `path` is untouched
/// and the temp file is removed.
pub(crate) fn write_atomic(path: &Path, data: &[u8], kind: Kind) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    ensure_private_dir(dir, kind)?;
    let fail = |what: &str, e: &std::io::Error| {
        let err = Error::io(kind, what, path, e);
        match e.kind() {
            ErrorKind::PermissionDenied => err.with_hint(format!(
                "make it yours: chown -R \"$USER\" {0} && chmod 700 {0}",
                dir.display()
            )),
            _ => err,
        }
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".elhaz-")
        .suffix(".tmp")
        .permissions(fs::Permissions::from_mode(0o600))
        .tempfile_in(dir)
        .map_err(|e| fail("cannot write", &e))?;
    tmp.write_all(data).map_err(|e| fail("cannot write", &e))?;
    tmp.as_file()
        .sync_all()
        .map_err(|e| fail("cannot write", &e))?;
    tmp.persist(path)
        .map_err(|e| fail("cannot write", &e.error))?;
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Opens (creating, 0600) a file for appending; used for lock files.
/// The same, refusing a symbolic link at `path` (ELOOP): a lock file is never opened
/// through a link someone else put there.
pub(crate) fn open_private_nofollow(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
}

pub(crate) fn open_private(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
}

/// Why [`read_regular`] read nothing.
#[derive(Debug)]
pub(crate) enum Unread {
    /// The stat, open or read failed (not found, permission denied, …).
    Io(std::io::Error),
    /// Not a regular file: what it is instead ("a directory", "a FIFO", …).
    NotRegular { kind: &'static str, is_dir: bool },
    /// Larger than the limit.
    TooLarge,
    /// Refused by the caller's own check.
    Refused(Error),
}

/// A regular file's bytes and metadata, read without ever blocking or reading without
/// end: `path` is stat'ed first (a device is never opened), opened with O_NONBLOCK (a
/// FIFO put in its place meanwhile does not hang the open), the opened descriptor is
/// checked again, and at most `max` bytes are read. A symlink is followed (dotfile
/// managers use them). `check` sees both metadata, after the regular-file check and
/// before the size check.
pub(crate) fn read_regular(
    path: &Path,
    max: u64,
    check: impl Fn(&Metadata) -> Result<()>,
) -> std::result::Result<(Vec<u8>, Metadata), Unread> {
    let vet = |meta: &Metadata| {
        if !meta.is_file() {
            return Err(Unread::NotRegular {
                kind: file_kind(meta),
                is_dir: meta.is_dir(),
            });
        }
        check(meta).map_err(Unread::Refused)?;
        if meta.len() > max {
            return Err(Unread::TooLarge);
        }
        Ok(())
    };
    vet(&fs::metadata(path).map_err(Unread::Io)?)?;
    let file = open_nonblocking(path).map_err(Unread::Io)?;
    let meta = file.metadata().map_err(Unread::Io)?;
    vet(&meta)?;
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    (&file)
        .take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(Unread::Io)?;
    if bytes.len() as u64 > max {
        return Err(Unread::TooLarge);
    }
    Ok((bytes, meta))
}

/// Opens `path` for reading without blocking on a FIFO or becoming a terminal's
/// controlling process.
pub(crate) fn open_nonblocking(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
}

/// What a file that is not a regular one is, for a message.
pub(crate) fn file_kind(meta: &Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let t = meta.file_type();
    if t.is_file() {
        "a regular file"
    } else if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else {
        "not a regular file"
    }
}

/// Whether this user may replace `path` as [`write_keeping_mode`] does (the file, if
/// it exists, and its directory, or the closest existing one, writable), asked before
/// any work whose result would then be lost. Root may write anything.
pub(crate) fn check_writable(path: &Path, kind: Kind) -> Result<()> {
    use nix::unistd::{AccessFlags, access};
    let target = fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let refused =
        |e: nix::errno::Errno| Error::io(kind, "cannot write", path, &std::io::Error::from(e));
    if target.exists() {
        access(&target, AccessFlags::W_OK).map_err(refused)?;
    }
    let mut dir = target.parent();
    while let Some(d) = dir {
        let d = if d.as_os_str().is_empty() {
            Path::new(".")
        } else {
            d
        };
        if d.exists() {
            return access(d, AccessFlags::W_OK | AccessFlags::X_OK).map_err(refused);
        }
        dir = d.parent();
    }
    Ok(())
}

/// Writes `data` to `path` atomically (a temp file in the same directory, renamed over
/// it), keeping its mode; a symlink is followed, so it stays a link. A file that does
/// not exist is created 0600, in a 0700 directory if that is missing too. `before` is
/// what the file held when it was read: if it changed meanwhile, nothing is written.
pub(crate) fn write_keeping_mode(path: &Path, data: &str, before: &str) -> Result<()> {
    let (target, mode) = match fs::canonicalize(path) {
        Ok(t) => {
            let mode = fs::metadata(&t)
                .map_err(|e| Error::io(Kind::Config, "cannot read", path, &e))?
                .permissions()
                .mode()
                & 0o7777;
            (t, mode)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => (path.to_path_buf(), 0o600),
        Err(e) => return Err(Error::io(Kind::Config, "cannot read", path, &e)),
    };
    let dir = target
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    crate::fsutil::ensure_private_dir(dir, Kind::Config)?;
    let fail = |e: &std::io::Error| Error::io(Kind::Config, "cannot write", path, e);
    let mut tmp = tempfile::Builder::new()
        .prefix(".elhaz-")
        .suffix(".tmp")
        .permissions(fs::Permissions::from_mode(0o600))
        .tempfile_in(dir)
        .map_err(|e| fail(&e))?;
    tmp.write_all(data.as_bytes()).map_err(|e| fail(&e))?;
    // fchmod is not subject to the umask: the file gets exactly the old mode.
    tmp.as_file()
        .set_permissions(fs::Permissions::from_mode(mode))
        .map_err(|e| fail(&e))?;
    tmp.as_file().sync_all().map_err(|e| fail(&e))?;
    let now = match fs::read(&target) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(Error::io(Kind::Config, "cannot read", path, &e)),
    };
    if now != before.as_bytes() {
        return Err(Error::config(format!(
            "{} changed while elhaz was writing it; nothing written",
            display_path(path)
        ))
        .with_hint("run the command again"));
    }
    tmp.persist(&target).map_err(|e| fail(&e.error))?;
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_creates_a_private_file_follows_links_and_keeps_modes() {
        let tmp = tempfile::tempdir().unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o7777;

        let fresh = tmp.path().join("new/aws/config");
        write_keeping_mode(&fresh, "[default]\n", "").unwrap();
        assert_eq!(fs::read_to_string(&fresh).unwrap(), "[default]\n");
        assert_eq!(mode(&fresh), 0o600);
        assert_eq!(mode(fresh.parent().unwrap()), 0o700);

        // A dotfiles-style link stays a link; its target gets the text, keeping 0644.
        let real = tmp.path().join("dotfiles-config");
        fs::write(&real, "old\n").unwrap();
        fs::set_permissions(&real, fs::Permissions::from_mode(0o644)).unwrap();
        let link = tmp.path().join("config");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        write_keeping_mode(&link, "new\n", "old\n").unwrap();
        assert!(
            fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(fs::read_to_string(&real).unwrap(), "new\n");
        assert_eq!(mode(&real), 0o644);

        // Changed since it was read: nothing written.
        let e = write_keeping_mode(&link, "newer\n", "old\n").unwrap_err();
        assert!(e.message.contains("changed while"), "{}", e.message);
        assert_eq!(fs::read_to_string(&real).unwrap(), "new\n");
        let left = fs::read_dir(tmp.path()).unwrap().count();
        assert_eq!(left, 3, "no temp file left");
    }
}
