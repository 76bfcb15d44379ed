//! The refresh gate: one answer, for the daemon's cache and for the container
//! endpoint alike, to "serve what we hold, refresh it, or (a refresh having failed in
//! the last 30 s) serve the old credentials while they are still valid". Knows the
//! refresh policy and the clock; knows nothing of sessions, sockets or HTTP.

use crate::duration::now;
use std::time::Duration;
// tokio's clock: the real one, paused and advanced by hand in unit tests.
use tokio::time::Instant;

use super::engine::Fetched;
use super::policy::{FAILURE_BACKOFF_SECS, Policy};
use super::{Credentials, Served};
use crate::error::{Error, Result};

/// Something that holds credentials (what the cache and the endpoint keep).
pub(crate) trait Holds {
    fn held(&self) -> &Credentials;
}

impl Holds for Fetched {
    fn held(&self) -> &Credentials {
        &self.credentials
    }
}

impl Holds for Served {
    fn held(&self) -> &Credentials {
        &self.credentials
    }
}

/// What to do with a request.
#[derive(Debug)]
pub(crate) enum Gate<T> {
    /// What is held satisfies it.
    Serve(T),
    /// A refresh failed less than 30 s ago: no new attempt; the old credentials while
    /// valid, else that failure.
    BackOff(Result<T>),
    /// Fetch anew.
    Refresh,
}

/// Whether `c` may be served, as it is, to a request asking for `requested` seconds
/// (0: only the mandatory window applies).
pub(crate) fn fresh(policy: &Policy, c: &Credentials, requested: i64) -> bool {
    !policy.must_refresh(c.remaining_secs(now()), c.lifetime_secs(), requested)
}

/// The failure, if it happened at `at` less than the back-off ago.
/// An SSO session that needs a login is never backed off: the check is local (the
/// token cache), and the user's login must take effect at the next request.
pub(crate) fn recent(at: Option<Instant>, error: Option<&Error>) -> Option<&Error> {
    at.filter(|t| t.elapsed() < Duration::from_secs(FAILURE_BACKOFF_SECS as u64))
        .and(error)
        .filter(|e| e.kind != crate::error::Kind::SsoLoginRequired)
}

/// The decision for a request: `satisfied` says whether what is held will do;
/// `failure` is the last refresh failure if recent (see [`recent`]); `may_back_off`
/// is false for a request that must refresh whatever happened before (a forced one).
pub(crate) fn decide<T: Holds + Clone>(
    held: Option<&T>,
    satisfied: impl Fn(&T) -> bool,
    failure: Option<&Error>,
    may_back_off: bool,
) -> Gate<T> {
    if let Some(h) = held
        && satisfied(h)
    {
        return Gate::Serve(h.clone());
    }
    match failure {
        Some(err) if may_back_off => Gate::BackOff(serve_stale(held.cloned(), err.clone())),
        _ => Gate::Refresh,
    }
}

/// After a failed refresh: the old credentials while they are still valid, else the
/// failure.
pub(crate) fn serve_stale<T: Holds>(held: Option<T>, err: Error) -> Result<T> {
    match held {
        Some(h) if h.held().remaining_secs(now()) > 0 => Ok(h),
        _ => Err(err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn served(remaining: i64, lifetime: i64) -> Served {
        let t = now();
        Served {
            notes: Vec::new(),
            context_ref: None,
            credentials: Credentials::new(
                "AKIA",
                "secret",
                "token",
                t + time::Duration::seconds(remaining),
                t + time::Duration::seconds(remaining - lifetime),
            ),
            region: None,
        }
    }

    #[test]
    fn serves_fresh_refreshes_stale_and_backs_off_after_a_failure() {
        let p = Policy::default();
        let ok = served(3000, 3600);
        let fresh_enough = |s: &Served| fresh(&p, &s.credentials, 0);
        assert!(matches!(
            decide(Some(&ok), fresh_enough, None, true),
            Gate::Serve(_)
        ));
        let old = served(60, 3600);
        assert!(matches!(
            decide(Some(&old), fresh_enough, None, true),
            Gate::Refresh
        ));
        let err = Error::auth("sts is down");
        assert!(matches!(
            decide(Some(&old), fresh_enough, Some(&err), true),
            Gate::BackOff(Ok(_))
        ));
        assert!(matches!(
            decide(Some(&old), fresh_enough, Some(&err), false),
            Gate::Refresh
        ));
        let expired = served(-1, 3600);
        assert!(matches!(
            decide(Some(&expired), fresh_enough, Some(&err), true),
            Gate::BackOff(Err(_))
        ));
        assert!(recent(Some(Instant::now()), Some(&err)).is_some());
        assert!(recent(None, Some(&err)).is_none());
    }
}
