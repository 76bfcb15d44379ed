//! What elhaz trusts on disk, as OpenSSH's StrictModes does for `~/.ssh`: a config runs
//! commands (`MFA.command`) and names the roles to assume, so a config file, its
//! directory and the directories above it (up to the home directory) must belong to
//! the user or root and be writable by no one else. Config files are read without ever
//! blocking or reading without end: regular files only, at most 1 MiB. It must not
//! know what a config holds.

use std::fs::{self, Metadata};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use super::schema::Config;
use crate::error::{Error, Result, display_path};

/// The largest config file elhaz reads.
pub(crate) const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// Temp files of an interrupted write older than this are removed on the next write.
pub(crate) const STALE_TEMP_AGE: Duration = Duration::from_secs(60);

fn euid() -> u32 {
    nix::unistd::geteuid().as_raw()
}

/// Whether `uid` may own what elhaz trusts: the user, or root.
fn trusted_owner(uid: u32) -> bool {
    uid == euid() || uid == 0
}

/// What a checked tree holds, for its messages.
pub(crate) struct Subject {
    pub(crate) dir: &'static str,
    pub(crate) above: &'static str,
    pub(crate) file: &'static str,
    /// Why it is refused: "elhaz will not use a config another user could have written".
    pub(crate) why: &'static str,
}

/// The config directory and its files.
pub(crate) const CONFIGS: Subject = Subject {
    dir: "the config directory",
    above: "a directory above the config directory",
    file: "the config file",
    why: "elhaz will not use a config another user could have written",
};

/// The IAM Identity Center token cache (`~/.aws/sso/cache`) and its files.
pub(crate) const SSO_CACHE: Subject = Subject {
    dir: "the SSO token cache",
    above: "a directory above the SSO token cache",
    file: "the SSO token file",
    why: "elhaz will not use a token another user could have written or swapped",
};

fn owner_error(path: &Path, meta: &Metadata, what: &str) -> Error {
    owner_error_as(path, meta, what, CONFIGS.why)
}

fn owner_error_as(path: &Path, meta: &Metadata, what: &str, why: &str) -> Error {
    let hint = if meta.is_dir() {
        format!(
            "if it is yours, take it back: sudo chown \"$USER\" {}",
            path.display()
        )
    } else {
        format!(
            "remove it if you did not write it: sudo rm {0}; if it is yours: sudo chown \"$USER\" {0}",
            path.display()
        )
    };
    Error::config(format!(
        "{}: {what} is owned by uid {}, not by you (uid {}): {why}",
        display_path(path),
        meta.uid(),
        euid()
    ))
    .with_hint(hint)
}

fn writable_error(path: &Path, meta: &Metadata, what: &str) -> Error {
    writable_error_as(path, meta, what, CONFIGS.why)
}

fn writable_error_as(path: &Path, meta: &Metadata, what: &str, why: &str) -> Error {
    Error::config(format!(
        "{}: {what} is writable by other users (mode {:04o}): {why}",
        display_path(path),
        meta.mode() & 0o7777
    ))
    .with_hint(format!("fix it: chmod go-w {}", path.display()))
}

/// Checks the config directory and each directory above it, up to and including the
/// home directory (or `/` for a directory outside it): each must belong to the user or
/// root and must not be writable by group or others. Above the config directory a
/// sticky directory owned by root or the user (such as /tmp) is accepted, since no one
/// else can rename or replace what is in it. A directory that cannot be examined is
/// left for the caller's own open or read to report.
pub(crate) fn check_dir(dir: &Path) -> Result<()> {
    check_dir_as(dir, &CONFIGS)
}

/// The same checks for the tree of `subject`.
pub(crate) fn check_dir_as(dir: &Path, subject: &Subject) -> Result<()> {
    let Ok(real) = fs::canonicalize(dir) else {
        return Ok(());
    };
    let home = crate::fsutil::home_dir()
        .ok()
        .and_then(|h| fs::canonicalize(h).ok());
    let mut current: &Path = &real;
    let mut first = true;
    loop {
        let Ok(meta) = fs::metadata(current) else {
            return Ok(());
        };
        let what = if first { subject.dir } else { subject.above };
        // Name the directory as the user wrote it where that is the same one.
        let shown: &Path = if first { dir } else { current };
        if !trusted_owner(meta.uid()) {
            return Err(owner_error_as(shown, &meta, what, subject.why));
        }
        let writable = meta.mode() & 0o022 != 0;
        let sticky = meta.mode() & 0o1000 != 0;
        if writable && (first || !sticky) {
            return Err(writable_error_as(shown, &meta, what, subject.why));
        }
        if home.as_deref() == Some(current) {
            return Ok(());
        }
        match current.parent() {
            Some(p) => current = p,
            None => return Ok(()),
        }
        first = false;
    }
}

/// Why a file of `subject`'s tree is refused, looked at through its opened descriptor:
/// not a regular file, another user's, or writable by others.
pub(crate) fn check_private_file(path: &Path, meta: &Metadata, subject: &Subject) -> Result<()> {
    if !meta.is_file() {
        return Err(Error::config(format!(
            "{}: {} is {}, not a regular file",
            display_path(path),
            subject.file,
            crate::fsutil::file_kind(meta)
        ))
        .with_hint(format!("move it away: mv {0} {0}.bak", path.display())));
    }
    if !trusted_owner(meta.uid()) {
        return Err(owner_error_as(path, meta, subject.file, subject.why));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(writable_error_as(path, meta, subject.file, subject.why));
    }
    Ok(())
}

/// Why a config file is refused, before anything is read from it.
fn check_file_meta(path: &Path, meta: &Metadata) -> Result<()> {
    if !meta.is_file() {
        return Err(not_regular(path, crate::fsutil::file_kind(meta)));
    }
    check_owner_mode(path, meta)?;
    if meta.len() > MAX_CONFIG_BYTES {
        return Err(too_large(path));
    }
    Ok(())
}

/// Refuses a config file another user owns or could write.
fn check_owner_mode(path: &Path, meta: &Metadata) -> Result<()> {
    if !trusted_owner(meta.uid()) {
        return Err(owner_error(path, meta, "the config file"));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(writable_error(path, meta, "the config file"));
    }
    Ok(())
}

fn not_regular(path: &Path, kind: &str) -> Error {
    Error::config(format!(
        "{}: is {kind}, not a regular file: elhaz reads configs from regular files only",
        display_path(path)
    ))
    .with_hint(move_away(path))
}

fn too_large(path: &Path) -> Error {
    Error::config(format!(
        "{}: larger than 1 MiB, which no config is",
        display_path(path)
    ))
    .with_hint(move_away(path))
}

/// "move it away …, then: elhaz config add NAME", with the config's own name.
fn move_away(path: &Path) -> String {
    let name = path.file_stem().and_then(|s| s.to_str()).unwrap_or("NAME");
    format!(
        "move it away (mv {0} {0}.bak), then: elhaz config add {name}",
        path.display()
    )
}

/// A config file read with all the checks: what it holds, and its mode bits.
pub(crate) struct ConfigBytes {
    pub bytes: Vec<u8>,
    pub mode: u32,
}

/// Reads `path` as [`crate::fsutil::read_regular`] does (never blocking, at most 1 MiB),
/// with the ownership and mode checks. The outer error is the open's own (not found,
/// permission denied, is a directory); the inner one is a refusal.
pub(crate) fn read_config(path: &Path) -> std::io::Result<Result<ConfigBytes>> {
    use crate::fsutil::Unread;
    match crate::fsutil::read_regular(path, MAX_CONFIG_BYTES, |m| check_owner_mode(path, m)) {
        Ok((bytes, meta)) => Ok(Ok(ConfigBytes {
            bytes,
            mode: meta.mode(),
        })),
        Err(Unread::Io(e)) => Err(e),
        Err(Unread::NotRegular { is_dir: true, .. }) => {
            Err(std::io::Error::from(std::io::ErrorKind::IsADirectory))
        }
        Err(Unread::NotRegular { kind, .. }) => Ok(Err(not_regular(path, kind))),
        Err(Unread::TooLarge) => Ok(Err(too_large(path))),
        Err(Unread::Refused(e)) => Ok(Err(e)),
    }
}

/// The refusal for config file `path`, if any, without reading it (for listings).
pub(crate) fn refusal(path: &Path) -> Option<Error> {
    match read_meta(path) {
        Ok(meta) if meta.is_dir() => None,
        Ok(meta) => check_file_meta(path, &meta).err(),
        Err(_) => None,
    }
}

fn read_meta(path: &Path) -> std::io::Result<Metadata> {
    let meta = fs::metadata(path)?;
    if !meta.is_file() {
        return Ok(meta);
    }
    crate::fsutil::open_nonblocking(path)?.metadata()
}

static WARNED_READABLE: AtomicBool = AtomicBool::new(false);

/// Warns, once per process, when a config holding a static secret key can be read by
/// group or others.
pub(crate) fn warn_readable_secrets(path: &Path, mode: u32, config: &Config) {
    let holds_key = config
        .sts
        .as_ref()
        .is_some_and(|s| s.aws_secret_access_key.is_some())
        || config
            .session
            .as_ref()
            .is_some_and(|s| s.aws_secret_access_key.is_some());
    if !holds_key || mode & 0o044 == 0 {
        return;
    }
    if WARNED_READABLE.swap(true, Ordering::SeqCst) {
        return;
    }
    tracing::warn!(path = %display_path(path), "a config holding a secret key is readable by other users");
    eprintln!(
        "elhaz: warning: {} holds a secret access key and is readable by other users (mode {:04o})\nhint: chmod 600 {}",
        display_path(path),
        mode & 0o7777,
        path.display()
    );
}

/// Whether a directory entry is a temp file of elhaz's atomic writes.
pub(crate) fn is_temp_name(name: &str) -> bool {
    name.starts_with(".elhaz-") && name.ends_with(".tmp")
}

/// Removes the temp files an interrupted write (a writer killed with SIGKILL) left in
/// `dir`: the user's own regular files older than a minute. A younger one may be a
/// write in progress elsewhere.
pub(crate) fn remove_stale_temps(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let now = SystemTime::now();
    for entry in entries.filter_map(|e| e.ok()) {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if !is_temp_name(name) {
            continue;
        }
        let Ok(meta) = entry.metadata() else { continue };
        let old = meta
            .modified()
            .ok()
            .and_then(|m| now.duration_since(m).ok())
            .is_some_and(|age| age > STALE_TEMP_AGE);
        if meta.is_file() && meta.uid() == euid() && old {
            let _ = fs::remove_file(entry.path());
        }
    }
}
