//! The account/role list of an SSO session, kept so the next `sso roles` or `sso sync`
//! need not ask the portal again: `~/.elhaz/cache/sso/<session>.json` (0600 in 0700,
//! written atomically), with the start URL it is for and when it was listed. It holds
//! names and ids only, never a token or credentials.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::accounts::AccountRole;
use super::session::SsoSession;
use crate::error::{Kind, Result};

#[derive(Serialize, Deserialize)]
struct Listing {
    start_url: String,
    /// Unix seconds.
    listed_at: i64,
    roles: Vec<AccountRole>,
}

/// `~/.elhaz/cache/sso`.
fn dir() -> Result<PathBuf> {
    Ok(crate::fsutil::home_dir()?.join(".elhaz/cache/sso"))
}

/// The session's file: its name when that is a plain file name, else the sha1 hex of
/// its name or start URL (a legacy profile's session has only the URL).
pub(crate) fn path(session: &SsoSession) -> Result<PathBuf> {
    let plain = |n: &str| {
        !n.is_empty()
            && !n.starts_with('.')
            && n.len() <= 100
            && n.chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
    };
    let file = match session.name.as_deref() {
        Some(n) if plain(n) => n.to_string(),
        _ => super::cache::sha1_hex(session.cache_key()),
    };
    Ok(dir()?.join(format!("{file}.json")))
}

/// The session's list when it was made for the same start URL less than `max_age`
/// seconds ago; a missing, unreadable or older file is no list.
pub(crate) fn read(session: &SsoSession, max_age: u64) -> Option<Vec<AccountRole>> {
    let text = std::fs::read(path(session).ok()?).ok()?;
    let l: Listing = serde_json::from_slice(&text).ok()?;
    let age = crate::duration::now().unix_timestamp() - l.listed_at;
    (l.start_url == session.start_url && (0..max_age as i64).contains(&age)).then_some(l.roles)
}

/// Keeps `roles` as the session's list, listed now.
pub(crate) fn write(session: &SsoSession, roles: &[AccountRole]) -> Result<()> {
    let l = Listing {
        start_url: session.start_url.clone(),
        listed_at: crate::duration::now().unix_timestamp(),
        roles: roles.to_vec(),
    };
    let data = serde_json::to_vec(&l).unwrap_or_default();
    crate::fsutil::write_atomic(&path(session)?, &data, Kind::Other)
}

/// Forgets the session's list (at logout); a missing file is fine.
pub(crate) fn remove(session: &SsoSession) -> Result<()> {
    let p = path(session)?;
    match std::fs::remove_file(&p) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(crate::error::Error::io(
            Kind::Other,
            "cannot remove",
            &p,
            &e,
        )),
        _ => Ok(()),
    }
}

/// Forgets every session's list (`sso logout --all`).
pub(crate) fn remove_all() -> Result<()> {
    let d = dir()?;
    let Ok(entries) = std::fs::read_dir(&d) else {
        return Ok(());
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.extension().is_some_and(|x| x == "json") {
            std::fs::remove_file(&p)
                .map_err(|err| crate::error::Error::io(Kind::Other, "cannot remove", &p, &err))?;
        }
    }
    Ok(())
}
