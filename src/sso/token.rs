//! A valid access token for a session, the way a user lives with it: the cached one
//! while it has time left; near its expiry, renewed silently with the refresh token
//! (CreateToken, grant `refresh_token`) under a lock shared by every process, so N
//! concurrent requests renew once; otherwise the typed "log in again" error, which the
//! command layer turns into one login for all the processes waiting.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use super::SsoSession;
use super::cache::{self, CachedToken, LockKind, Registration};
use super::oidc::{self, Grant, TokenError};
use crate::error::{Error, Kind, Result};

/// A token with less than this left is renewed when it can be (botocore's window).
const RENEW_BEFORE_SECS: i64 = 15 * 60;
/// A token that cannot be renewed is used while it has this much left.
const MIN_LEFT_SECS: i64 = 30;
/// How long a process waits for another one's renewal.
const RENEW_WAIT: Duration = Duration::from_secs(45);

/// The error that says the user must log in again: exit 5, and the command that does
/// it. One wording whether the token expired or was revoked: the fix is the same, and
/// scripts match one line (a session never logged in is [`not_logged_in`]).
pub(crate) fn login_required(session: &SsoSession) -> Error {
    needs_login(session, &session.described(), "has expired")
}

/// [`login_required`] for a session with no token in the cache: never logged in, or
/// logged out.
pub(crate) fn not_logged_in(session: &SsoSession) -> Error {
    needs_login(session, &session.described(), "is not logged in")
}

fn needs_login(session: &SsoSession, what: &str, state: &str) -> Error {
    Error::new(
        Kind::SsoLoginRequired,
        format!("{what} {state}; run: {}", session.login_command()),
    )
    .with_detail(crate::error::Detail::SsoLoginRequired {
        session: session.label().to_string(),
    })
}

/// The session label a [`login_required`] error names (also after the daemon's wire).
pub(crate) fn login_label(err: &Error) -> Option<&str> {
    match &err.detail {
        Some(crate::error::Detail::SsoLoginRequired { session })
            if err.kind == Kind::SsoLoginRequired =>
        {
            Some(session)
        }
        _ => None,
    }
}

/// A valid access token for the session: renewed silently when it can be; otherwise
/// Err with exit 5 and the hint `elhaz sso login LABEL` (the terminal layer offers login).
pub(crate) async fn access_token(session: &SsoSession) -> Result<SecretString> {
    let now = crate::duration::now();
    let Some(tok) = cache::read(session)? else {
        return Err(not_logged_in(session));
    };
    let left = tok.remaining_secs(now);
    if left > RENEW_BEFORE_SECS {
        return Ok(tok.access_token);
    }
    if session.name.is_some() && tok.renewable(now) {
        match renew(session).await {
            Ok(t) => return Ok(t),
            Err(e) if e.kind == Kind::SsoLoginRequired || left <= MIN_LEFT_SECS => {
                return Err(e);
            }
            Err(e) => {
                tracing::warn!(session = session.label(), error = %e.message, "SSO token renewal failed; using the current token");
                return Ok(tok.access_token);
            }
        }
    }
    if left > MIN_LEFT_SECS {
        return Ok(tok.access_token);
    }
    Err(login_required(session))
}

/// `call` with a valid access token for the session. When the portal refuses a token
/// that still looked valid (it answers 401: revoked, or signed out elsewhere) and the
/// session has a refresh token, the token is renewed once and `call` asked again; only
/// then is it a login to make again.
pub(crate) async fn with_token<T, F, Fut>(session: &SsoSession, mut call: F) -> Result<T>
where
    F: FnMut(SecretString) -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let token = access_token(session).await?;
    match call(token.clone()).await {
        Err(e) if e.kind == Kind::SsoLoginRequired => {
            tracing::info!(
                session = session.label(),
                "the portal refused the SSO token; renewing it once"
            );
            let renewed = renew_refused(session, &token).await?;
            call(renewed).await
        }
        answer => answer,
    }
}

/// Renews the token with its refresh token, once for every process: under the
/// session's renew lock, and only if nobody renewed it meanwhile.
async fn renew(session: &SsoSession) -> Result<SecretString> {
    let _held = renew_lock(session).await?;
    let now = crate::duration::now();
    let Some(tok) = cache::read(session)? else {
        return Err(not_logged_in(session));
    };
    if tok.remaining_secs(now) > RENEW_BEFORE_SECS {
        return Ok(tok.access_token);
    }
    refresh(session, tok).await
}

/// Renews the token the portal refused (`refused`), whatever time it has left: under
/// the renew lock, unless another process already replaced it.
async fn renew_refused(session: &SsoSession, refused: &SecretString) -> Result<SecretString> {
    let _held = renew_lock(session).await?;
    let Some(tok) = cache::read(session)? else {
        return Err(not_logged_in(session));
    };
    if tok.access_token.expose_secret() != refused.expose_secret() {
        return Ok(tok.access_token);
    }
    if session.name.is_none() {
        return Err(login_required(session));
    }
    refresh(session, tok).await
}

/// The session's renew lock, or the error that another renewal holds it too long.
async fn renew_lock(session: &SsoSession) -> Result<cache::Held> {
    cache::lock(session, LockKind::Renew, RENEW_WAIT)
        .await?
        .ok_or_else(|| {
            Error::auth(format!(
                "{} is being renewed by another process that has not finished in {}s",
                session.described(),
                RENEW_WAIT.as_secs()
            ))
            .with_hint(
                "try again; if it persists, log in again: ".to_string() + &session.login_command(),
            )
        })
}

/// CreateToken with `tok`'s refresh token; the new token is written to the cache.
async fn refresh(session: &SsoSession, tok: CachedToken) -> Result<SecretString> {
    let now = crate::duration::now();
    if !tok.renewable(now) {
        return Err(login_required(session));
    }
    let (Some(id), Some(secret), Some(refresh)) =
        (&tok.client_id, &tok.client_secret, &tok.refresh_token)
    else {
        return Err(login_required(session));
    };
    let reg = Registration {
        client_id: id.clone(),
        client_secret: secret.clone(),
        expires_at: tok.registration_expires_at.unwrap_or(now),
    };
    let issued = match oidc::create_token(session, &reg, Grant::Refresh(refresh)).await {
        Ok(t) => t,
        Err(TokenError::Failed(e)) => {
            // A refresh token that is expired or revoked, or a client that is gone:
            // only a new login helps.
            let refused = [
                "InvalidGrantException",
                "ExpiredTokenException",
                "InvalidClientException",
                "UnauthorizedClientException",
                "AccessDeniedException",
            ]
            .iter()
            .any(|c| matches!(&e.detail, Some(crate::error::Detail::Aws { code }) if code == c));
            tracing::warn!(session = session.label(), error = %e.message, "SSO token renewal refused");
            return Err(if refused { login_required(session) } else { e });
        }
        Err(TokenError::Pending | TokenError::SlowDown) => {
            return Err(Error::auth(format!(
                "SSO OIDC at {} asked to wait while renewing {}",
                oidc::endpoint(session),
                session.described()
            )));
        }
    };
    let access = issued.access_token.clone();
    let renewed = CachedToken {
        access_token: issued.access_token,
        expires_at: issued.expires_at,
        // The rotated refresh token, else the one we had.
        refresh_token: issued.refresh_token.or_else(|| tok.refresh_token.clone()),
        ..tok
    };
    cache::write(session, &renewed)?;
    tracing::info!(
        session = session.label(),
        expires = %crate::times::zulu(renewed.expires_at),
        "renewed the SSO token"
    );
    Ok(access)
}

/// Stores a token a login produced: the cache file the AWS CLI and botocore read.
pub(crate) fn store_login(
    session: &SsoSession,
    reg: &Registration,
    token: oidc::Token,
) -> Result<CachedToken> {
    // Keys a previous entry had that we do not know stay.
    let other = cache::read(session)
        .ok()
        .flatten()
        .map(|t| t.other)
        .unwrap_or_default();
    let entry = CachedToken {
        start_url: session.start_url.clone(),
        region: session.region.clone(),
        access_token: token.access_token,
        expires_at: token.expires_at,
        client_id: Some(reg.client_id.clone()),
        client_secret: Some(reg.client_secret.clone()),
        registration_expires_at: Some(reg.expires_at),
        refresh_token: token.refresh_token,
        other,
    };
    cache::write(session, &entry)?;
    Ok(entry)
}

/// Whether the cached token is good for another minute without a renewal (what a
/// process that waited for another's login checks).
pub(crate) fn is_fresh(session: &SsoSession) -> bool {
    cache::read(session).ok().flatten().is_some_and(|t| {
        t.remaining_secs(crate::duration::now()) > 60 && !t.access_token.expose_secret().is_empty()
    })
}

/// Whether the session's cache file was written at or after `t`.
pub(crate) fn written_since(session: &SsoSession, t: std::time::SystemTime) -> bool {
    cache::path(session)
        .ok()
        .and_then(|p| std::fs::metadata(p).ok())
        .and_then(|m| m.modified().ok())
        .is_some_and(|m| m >= t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_login_error_names_the_command_and_survives_the_wire() {
        let s = SsoSession::named("corp", "https://c/start", "us-east-1", vec![]);
        let e = login_required(&s);
        assert_eq!(e.exit_code(), 5);
        assert_eq!(
            e.message,
            "SSO session 'corp' has expired; run: elhaz sso login corp"
        );
        // Through the daemon's extended error: the session travels as data.
        let wire = crate::daemon::protocol::Response::from_error("r", true, 500, &e);
        let back = wire.error();
        assert_eq!(login_label(&back), Some("corp"));
        // Never read out of a message: the same words without the detail name none.
        let words = Error::new(Kind::parse(e.kind.as_str()), e.message.clone());
        assert_eq!(login_label(&words), None);
        let legacy = SsoSession::legacy("old", "https://o/start", "us-east-1");
        assert_eq!(
            login_required(&legacy).message,
            "profile 'old' (SSO start URL https://o/start) has expired; run: elhaz sso login old"
        );
        let never = not_logged_in(&s);
        assert_eq!(
            never.message,
            "SSO session 'corp' is not logged in; run: elhaz sso login corp"
        );
        assert_eq!((never.exit_code(), login_label(&never)), (5, Some("corp")));
        assert_eq!(
            not_logged_in(&legacy).message,
            "profile 'old' (SSO start URL https://o/start) is not logged in; run: elhaz sso login old"
        );
        assert_eq!(
            login_label(&Error::auth("x; run: elhaz sso login corp")),
            None
        );
    }
}
