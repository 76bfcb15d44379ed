//! The AWS CLI's SSO token cache, exactly as the AWS CLI v2 and botocore read and
//! write it: `~/.aws/sso/cache/<sha1 hex of the session name, or of the start URL for
//! a legacy profile>.json`, keys `startUrl`, `region`, `accessToken`, `expiresAt`
//! (`%Y-%m-%dT%H:%M:%SZ`), and for sessions `clientId`, `clientSecret`,
//! `registrationExpiresAt`, `refreshToken`. Written 0600 in a 0700 directory,
//! atomically; keys this module does not know are kept. Also elhaz's own client
//! registrations (one file per flow), reused until they expire, and the lock files
//! that make renewals and logins happen once across processes.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::times::{self, zulu};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value};
use sha1::Digest;
use time::OffsetDateTime;

use super::SsoSession;
use crate::error::{Error, Kind, Result, display_path};

/// The cache directory: `~/.aws/sso/cache`.
pub(crate) fn dir() -> Result<PathBuf> {
    Ok(crate::fsutil::home_dir()?.join(".aws/sso/cache"))
}

/// sha1 hex of `key`, the way the AWS CLI names its cache files.
pub(crate) fn sha1_hex(key: &str) -> String {
    hex::encode(sha1::Sha1::digest(key.as_bytes()))
}

/// The token cache file of a session.
pub(crate) fn path(session: &SsoSession) -> Result<PathBuf> {
    Ok(dir()?.join(format!("{}.json", sha1_hex(session.cache_key()))))
}

/// One cached token. Debug shows no secret.
#[derive(Clone)]
pub(crate) struct CachedToken {
    pub(crate) start_url: String,
    pub(crate) region: String,
    pub(crate) access_token: SecretString,
    pub(crate) expires_at: OffsetDateTime,
    pub(crate) client_id: Option<String>,
    pub(crate) client_secret: Option<SecretString>,
    pub(crate) registration_expires_at: Option<OffsetDateTime>,
    pub(crate) refresh_token: Option<SecretString>,
    /// Every other key of the file, written back as it was.
    pub(crate) other: Map<String, Value>,
}

impl fmt::Debug for CachedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CachedToken")
            .field("start_url", &self.start_url)
            .field("region", &self.region)
            .field("access_token", &"***")
            .field("expires_at", &zulu(self.expires_at))
            .field("client_id", &self.client_id)
            .field("has_client_secret", &self.client_secret.is_some())
            .field("has_refresh_token", &self.refresh_token.is_some())
            .finish()
    }
}

impl CachedToken {
    /// Seconds the access token has left at `now` (negative once expired).
    pub(crate) fn remaining_secs(&self, now: OffsetDateTime) -> i64 {
        (self.expires_at - now).whole_seconds()
    }

    /// The client registration and refresh token, when both are there and the
    /// registration has not expired: what a silent renewal needs.
    pub(crate) fn renewable(&self, now: OffsetDateTime) -> bool {
        self.refresh_token.is_some()
            && self.client_id.is_some()
            && self.client_secret.is_some()
            && self.registration_expires_at.is_none_or(|t| t > now)
    }

    fn from_json(v: Value) -> Option<CachedToken> {
        let Value::Object(mut m) = v else { return None };
        let mut take = |k: &str| match m.remove(k) {
            Some(Value::String(s)) => Some(s),
            _ => None,
        };
        let start_url = take("startUrl")?;
        let region = take("region").unwrap_or_default();
        let access_token = SecretString::from(take("accessToken")?);
        let expires_at = times::parse(&take("expiresAt")?)?;
        let client_id = take("clientId");
        let client_secret = take("clientSecret").map(SecretString::from);
        let registration_expires_at = take("registrationExpiresAt").and_then(|s| times::parse(&s));
        let refresh_token = take("refreshToken").map(SecretString::from);
        Some(CachedToken {
            start_url,
            region,
            access_token,
            expires_at,
            client_id,
            client_secret,
            registration_expires_at,
            refresh_token,
            other: m,
        })
    }

    fn to_json(&self) -> Value {
        let mut m = self.other.clone();
        let mut put = |k: &str, v: Option<String>| match v {
            Some(v) => {
                m.insert(k.to_string(), Value::String(v));
            }
            None => {
                m.remove(k);
            }
        };
        put("startUrl", Some(self.start_url.clone()));
        put("region", Some(self.region.clone()));
        put(
            "accessToken",
            Some(self.access_token.expose_secret().to_string()),
        );
        put("expiresAt", Some(zulu(self.expires_at)));
        put("clientId", self.client_id.clone());
        put(
            "clientSecret",
            self.client_secret
                .as_ref()
                .map(|s| s.expose_secret().to_string()),
        );
        put(
            "registrationExpiresAt",
            self.registration_expires_at.map(zulu),
        );
        put(
            "refreshToken",
            self.refresh_token
                .as_ref()
                .map(|s| s.expose_secret().to_string()),
        );
        Value::Object(m)
    }
}

/// Reads the session's cached token: None when there is none (no file, or a file
/// without a token).
pub(crate) fn read(session: &SsoSession) -> Result<Option<CachedToken>> {
    read_path(&path(session)?)
}

/// The largest token file read (the AWS CLI's are under 4 KiB).
const MAX_TOKEN_FILE: u64 = 1 << 20;

/// Checks the token cache directory (and those above it, up to the home directory) as
/// elhaz checks its configs: yours or root's, writable by no one else.
fn check_dir_of(path: &Path) -> Result<()> {
    match path.parent() {
        Some(dir) => crate::config::trust::check_dir_as(dir, &crate::config::trust::SSO_CACHE),
        None => Ok(()),
    }
}

pub(crate) fn read_path(path: &Path) -> Result<Option<CachedToken>> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    check_dir_of(path)?;
    // Never blocking (a FIFO), never through a symbolic link, checked on the descriptor.
    let file = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW | libc::O_NOCTTY)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(Kind::Auth, "cannot read", path, &e)),
    };
    let meta = file
        .metadata()
        .map_err(|e| Error::io(Kind::Auth, "cannot read", path, &e))?;
    crate::config::trust::check_private_file(path, &meta, &crate::config::trust::SSO_CACHE)?;
    let mut text = Vec::new();
    (&file)
        .take(MAX_TOKEN_FILE)
        .read_to_end(&mut text)
        .map_err(|e| Error::io(Kind::Auth, "cannot read", path, &e))?;
    let text = zeroize::Zeroizing::new(text);
    Ok(parse(&text))
}

/// The token a cache file's bytes hold, if they hold one.
fn parse(bytes: &[u8]) -> Option<CachedToken> {
    CachedToken::from_json(serde_json::from_slice::<Value>(bytes).ok()?)
}

/// What this module makes of a cache file's bytes: the JSON it would write back and
/// the token's Debug form (for the fuzz target, which checks both).
#[doc(hidden)]
pub fn reread(bytes: &[u8]) -> Option<(Value, String)> {
    let token = parse(bytes)?;
    Some((token.to_json(), format!("{token:?}")))
}

/// Writes the session's token: 0600, in a 0700 directory, atomically.
pub(crate) fn write(session: &SsoSession, token: &CachedToken) -> Result<()> {
    let path = path(session)?;
    let mut v = token.to_json();
    // A legacy profile's entry has the four keys the AWS CLI writes for it.
    if session.name.is_none()
        && let Value::Object(m) = &mut v
    {
        for k in [
            "clientId",
            "clientSecret",
            "registrationExpiresAt",
            "refreshToken",
        ] {
            m.remove(k);
        }
    }
    check_dir_of(&path)?;
    let mut bytes = serde_json::to_vec(&v).map_err(|e| Error::other(e.to_string()))?;
    let out = crate::fsutil::write_atomic(&path, &bytes, Kind::Auth);
    zeroize::Zeroize::zeroize(&mut bytes);
    out
}

/// Removes the session's cache file; false when there was none.
pub(crate) fn remove(path: &Path) -> Result<bool> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(Error::io(Kind::Auth, "cannot remove", path, &e)),
    }
}

/// An OIDC client registration of elhaz's, for one flow of one session.
#[derive(Clone)]
pub(crate) struct Registration {
    pub(crate) client_id: String,
    pub(crate) client_secret: SecretString,
    pub(crate) expires_at: OffsetDateTime,
}

impl fmt::Debug for Registration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registration")
            .field("client_id", &self.client_id)
            .field("client_secret", &"***")
            .field("expires_at", &zulu(self.expires_at))
            .finish()
    }
}

/// Where a session's registration for `flow` is kept: its own file beside the tokens
/// (a device-code client cannot do PKCE, and the reverse).
fn registration_path(session: &SsoSession, flow: &str) -> Result<PathBuf> {
    let key = serde_json::json!({
        "tool": "elhaz",
        "flow": flow,
        "startUrl": session.start_url,
        "region": session.region,
        "scopes": session.scopes,
        "session": session.name,
    });
    Ok(dir()?.join(format!("elhaz-client-{}.json", sha1_hex(&key.to_string()))))
}

/// The session's registration for `flow`, if one is kept and valid for another hour.
pub(crate) fn registration(session: &SsoSession, flow: &str) -> Option<Registration> {
    let path = registration_path(session, flow).ok()?;
    let v: Value = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
    let reg = Registration {
        client_id: v.get("clientId")?.as_str()?.to_string(),
        client_secret: SecretString::from(v.get("clientSecret")?.as_str()?.to_string()),
        expires_at: times::parse(v.get("expiresAt")?.as_str()?)?,
    };
    (reg.expires_at > crate::duration::now() + Duration::from_secs(3600)).then_some(reg)
}

/// Keeps a registration for reuse.
pub(crate) fn save_registration(
    session: &SsoSession,
    flow: &str,
    reg: &Registration,
) -> Result<()> {
    let v = serde_json::json!({
        "clientId": reg.client_id,
        "clientSecret": reg.client_secret.expose_secret(),
        "expiresAt": zulu(reg.expires_at),
    });
    let mut bytes = serde_json::to_vec(&v).map_err(|e| Error::other(e.to_string()))?;
    let out = crate::fsutil::write_atomic(&registration_path(session, flow)?, &bytes, Kind::Auth);
    zeroize::Zeroize::zeroize(&mut bytes);
    out
}

/// What a lock file is for.
#[derive(Clone, Copy)]
pub(crate) enum LockKind {
    /// Held while a token is renewed with its refresh token.
    Renew,
    /// Held for the whole of an interactive login.
    Login,
}

/// A lock file of the session, beside its cache file (hidden, 0600).
pub(crate) fn lock_path(session: &SsoSession, kind: LockKind) -> Result<PathBuf> {
    let what = match kind {
        LockKind::Renew => "renew",
        LockKind::Login => "login",
    };
    Ok(dir()?.join(format!(
        ".elhaz-{}.{what}.lock",
        sha1_hex(session.cache_key())
    )))
}

/// A held lock file; dropping it releases the lock.
pub(crate) struct Held {
    _flock: nix::fcntl::Flock<std::fs::File>,
}

/// Takes `kind`'s lock without waiting: None when another process holds it.
pub(crate) fn try_lock(session: &SsoSession, kind: LockKind) -> Result<Option<Held>> {
    use nix::fcntl::{Flock, FlockArg};
    let path = lock_path(session, kind)?;
    let parent = path.parent().unwrap_or(Path::new("/"));
    crate::fsutil::ensure_private_dir(parent, Kind::Auth)?;
    check_dir_of(&path)?;
    let file = crate::fsutil::open_private_nofollow(&path)
        .map_err(|e| Error::io(Kind::Auth, "cannot open the lock file", &path, &e))?;
    match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(f) => Ok(Some(Held { _flock: f })),
        Err((_, nix::errno::Errno::EWOULDBLOCK)) => Ok(None),
        Err((_, e)) => Err(Error::auth(format!(
            "cannot lock {}: {}",
            display_path(&path),
            e.desc()
        ))),
    }
}

/// Takes `kind`'s lock, waiting at most `limit` for another process to let it go;
/// Ok(None) when it did not in time.
pub(crate) async fn lock(
    session: &SsoSession,
    kind: LockKind,
    limit: Duration,
) -> Result<Option<Held>> {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(h) = try_lock(session, kind)? {
            return Ok(Some(h));
        }
        if tokio::time::Instant::now() >= deadline {
            return Ok(None);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token() -> CachedToken {
        let v = serde_json::json!({
            "startUrl": "https://corp.awsapps.com/start",
            "region": "eu-west-1",
            "accessToken": "at-secret",
            "expiresAt": "2026-11-29T18:00:00Z",
            "clientId": "cid",
            "clientSecret": "cs-secret",
            "registrationExpiresAt": "2027-02-27T18:00:00UTC",
            "refreshToken": "rt-secret",
            "someFutureKey": {"x": 1},
        });
        CachedToken::from_json(v).unwrap()
    }

    #[test]
    fn the_aws_cli_keys_round_trip_and_unknown_keys_stay() {
        let t = token();
        assert_eq!(zulu(t.expires_at), "2026-11-29T18:00:00Z");
        assert_eq!(
            zulu(t.registration_expires_at.unwrap()),
            "2027-02-27T18:00:00Z"
        );
        let v = t.to_json();
        assert_eq!(v["accessToken"], "at-secret");
        assert_eq!(v["refreshToken"], "rt-secret");
        assert_eq!(v["clientSecret"], "cs-secret");
        assert_eq!(v["expiresAt"], "2026-11-29T18:00:00Z");
        assert_eq!(v["someFutureKey"]["x"], 1);
        assert_eq!(v.as_object().unwrap().len(), 9);
    }

    #[test]
    fn debug_shows_no_secret() {
        let d = format!("{:?}", token());
        for s in ["at-secret", "cs-secret", "rt-secret"] {
            assert!(!d.contains(s), "{d}");
        }
    }

    #[test]
    fn file_names_are_the_sha1_hex_of_the_key() {
        assert_eq!(sha1_hex("abc"), "a9993e364706816aba3e25717850c26c9cd0d89d");
    }
}
