//! Private files: directories created 0700, files written 0600 and atomically (temp
//! file, fsync, rename); small files read without ever blocking or reading without end;
//! and where the home directory is. It knows nothing of what the files hold.

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
