//! The allow list, as direnv keeps one: `~/.elhaz/allowed/` (0700) holds one file
//! (0600, written atomically) per allowed pin, named by the SHA-256 of the pin's
//! resolved path, holding that path and the SHA-256 of the path and the content. A pin
//! is obeyed only while both match: a new pin, or one changed since it was allowed,
//! is not.

use std::fs;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::Pin;
use crate::config::trust::{Subject, check_dir_as, check_private_file};
use crate::error::{Error, Kind, Result, display_path};

const ALLOWED: Subject = Subject {
    dir: "the allow list's directory",
    above: "a directory above the allow list",
    file: "an allow list entry",
    why: "elhaz will not trust an allow list another user could have written",
};

/// Whether a pin is trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Trust {
    Allowed,
    /// Never allowed (or denied since).
    New,
    /// Allowed once, changed since.
    Changed,
}

impl Trust {
    /// The reason, in words, for a pin that is not obeyed.
    pub(crate) fn reason(self) -> &'static str {
        match self {
            Trust::Allowed => "allowed",
            Trust::New => "new",
            Trust::Changed => "changed since allowed",
        }
    }
}

/// The allow list's directory: `~/.elhaz/allowed`.
pub(crate) fn dir() -> Result<PathBuf> {
    Ok(crate::fsutil::home_dir()?.join(".elhaz").join("allowed"))
}

fn hex_sha256(parts: &[&[u8]]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    hex::encode(h.finalize())
}

fn entry_path(dir: &Path, real: &Path) -> PathBuf {
    dir.join(hex_sha256(&[real.as_os_str().as_encoded_bytes()]))
}

/// What an entry holds for `pin`: its resolved path and the hash of path and content.
fn entry_text(pin: &Pin) -> String {
    let path = pin.real.as_os_str().as_encoded_bytes();
    format!(
        "{}\n{}\n",
        pin.real.display(),
        hex_sha256(&[path, b"\n", &pin.bytes])
    )
}

/// Whether `pin`, as read now, is allowed in the list at `dir`.
pub(crate) fn trust_in(dir: &Path, pin: &Pin) -> Result<Trust> {
    let entry = entry_path(dir, &pin.real);
    if fs::symlink_metadata(&entry).is_err() {
        return Ok(Trust::New);
    }
    check_dir_as(dir, &ALLOWED)?;
    let (bytes, _) =
        crate::fsutil::read_regular(&entry, 4096, |m| check_private_file(&entry, m, &ALLOWED))
            .map_err(|e| match e {
                crate::fsutil::Unread::Refused(e) => e,
                _ => Error::config(format!(
                    "{}: cannot read this allow list entry",
                    display_path(&entry)
                ))
                .with_hint(format!("remove it: rm {}", entry.display())),
            })?;
    Ok(if bytes == entry_text(pin).as_bytes() {
        Trust::Allowed
    } else {
        Trust::Changed
    })
}

/// Whether `pin` is allowed, in the user's list.
pub(crate) fn trust(pin: &Pin) -> Result<Trust> {
    trust_in(&dir()?, pin)
}

/// Records `pin`, as read now, as allowed in the list at `dir`.
pub(crate) fn allow_in(dir: &Path, pin: &Pin) -> Result<()> {
    crate::fsutil::ensure_private_dir(dir, Kind::Config)?;
    check_dir_as(dir, &ALLOWED)?;
    crate::config::trust::remove_stale_temps(dir);
    crate::fsutil::write_atomic(
        &entry_path(dir, &pin.real),
        entry_text(pin).as_bytes(),
        Kind::Config,
    )
}

pub(crate) fn allow(pin: &Pin) -> Result<()> {
    allow_in(&dir()?, pin)
}

/// Forgets the pin at resolved path `real` in the list at `dir`; whether it was there.
pub(crate) fn deny_in(dir: &Path, real: &Path) -> Result<bool> {
    let entry = entry_path(dir, real);
    match fs::remove_file(&entry) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(Error::io(Kind::Config, "cannot remove", &entry, &e)),
    }
}

pub(crate) fn deny(real: &Path) -> Result<bool> {
    deny_in(&dir()?, real)
}
