//! Private files: directories created 0700, files written 0600 and atomically (temp
//! file, fsync, rename); and where the home directory is. It knows nothing of what the
//! files hold.

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Write};
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
