//! The daemon's sessions: an LRU of named sessions, each refreshed single-flight (one
//! STS call however many ask) and in the background ahead of expiry, following the
//! refresh policy.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lru::LruCache;
use serde_json::{Value, json};
use time::OffsetDateTime;
use tokio::task::AbortHandle;

use crate::config::schema::Sensitive;
use crate::credentials::policy::{FAILURE_BACKOFF_SECS, Policy};
use crate::credentials::{Engine, Fetched, Identity, iso8601_offset, now};
use crate::error::{Error, Kind, Result};

/// What a caller needs of a session's credentials.
#[derive(Debug, Clone, Copy)]
pub enum Need {
    /// At least this many seconds left (0: only the mandatory window applies).
    Remaining(i64),
    /// The background refresher's own threshold (already jittered).
    Advisory(i64),
    /// Refresh now, whatever is left (`refresh` action, `add` with an MFA code).
    Force,
}

pub struct Session {
    name: String,
    state: Mutex<State>,
    flight: tokio::sync::Mutex<()>,
    task: Mutex<Option<AbortHandle>>,
}

#[derive(Default)]
struct State {
    current: Option<Fetched>,
    last_refresh: Option<OffsetDateTime>,
    last_error: Option<Error>,
    failed_at: Option<Instant>,
    refresh_count: u64,
}

impl Drop for Session {
    fn drop(&mut self) {
        if let Some(t) = self.task.lock().map(|mut t| t.take()).ok().flatten() {
            t.abort();
        }
    }
}

impl Session {
    fn new(name: &str) -> Arc<Session> {
        Arc::new(Session {
            name: name.to_string(),
            state: Mutex::new(State::default()),
            flight: tokio::sync::Mutex::new(()),
            task: Mutex::new(None),
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn stop(&self) {
        if let Some(t) = self.task.lock().ok().and_then(|mut t| t.take()) {
            t.abort();
        }
    }
}

pub struct Cache {
    engine: Engine,
    policy: Policy,
    sessions: Mutex<LruCache<String, Arc<Session>>>,
}

impl Cache {
    /// The config directory this daemon reads.
    pub fn config_dir(&self) -> &std::path::Path {
        self.engine.store().dir()
    }

    pub fn new(engine: Engine, policy: Policy, capacity: usize) -> Arc<Cache> {
        let cap = std::num::NonZeroUsize::new(capacity.max(1)).expect("capacity is at least 1");
        Arc::new(Cache {
            engine,
            policy,
            sessions: Mutex::new(LruCache::new(cap)),
        })
    }

    fn sessions(&self) -> std::sync::MutexGuard<'_, LruCache<String, Arc<Session>>> {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The session NAME, marked as most recently used.
    fn get(&self, name: &str) -> Option<Arc<Session>> {
        self.sessions().get(name).cloned()
    }

    /// The session NAME, created (empty) when missing. The bool says whether it is new.
    fn get_or_insert(&self, name: &str) -> (Arc<Session>, bool) {
        let mut sessions = self.sessions();
        if let Some(s) = sessions.get(name) {
            return (s.clone(), false);
        }
        let s = Session::new(name);
        if let Some((evicted_name, evicted)) = sessions.push(name.to_string(), s.clone())
            && evicted_name != name
        {
            tracing::info!(session = %evicted_name, "session evicted (cache full)");
            evicted.stop();
        }
        (s, true)
    }

    /// Drops an entry that never got credentials (a failed add).
    fn forget_if_empty(&self, session: &Arc<Session>) {
        if session.state().current.is_some() {
            return;
        }
        let mut sessions = self.sessions();
        if sessions
            .peek(&session.name)
            .is_some_and(|s| Arc::ptr_eq(s, session))
        {
            sessions.pop(&session.name);
        }
    }

    /// `add`: fetches NAME now. An existing session is a conflict, unless an MFA code
    /// is given (then it is refreshed with it).
    pub async fn add(self: &Arc<Self>, name: &str, token: Option<Sensitive>) -> Result<()> {
        let (session, new) = self.get_or_insert(name);
        if !new && token.is_none() && session.state().current.is_some() {
            return Err(Error::new(
                Kind::Usage,
                format!("session {name:?} already exists"),
            ));
        }
        let need = if token.is_some() {
            Need::Force
        } else {
            Need::Remaining(0)
        };
        self.ensure(&session, need, token).await.map(|_| ())
    }

    /// `credentials`: NAME's credentials, refreshed first when the policy says so.
    /// `autoadd` adds a missing session; without it a missing session is `None`.
    pub async fn credentials(
        self: &Arc<Self>,
        name: &str,
        min_remaining: i64,
        autoadd: bool,
    ) -> Result<Option<Fetched>> {
        let session = if autoadd {
            self.get_or_insert(name).0
        } else {
            match self.get(name) {
                Some(s) => s,
                None => return Ok(None),
            }
        };
        self.ensure(&session, Need::Remaining(min_remaining), None)
            .await
            .map(Some)
    }

    /// `refresh`: forces a refresh of a cached session.
    pub async fn refresh(self: &Arc<Self>, name: &str) -> Result<Option<Fetched>> {
        let Some(session) = self.get(name) else {
            return Ok(None);
        };
        self.ensure(&session, Need::Force, None).await.map(Some)
    }

    pub fn remove(&self, name: &str) -> bool {
        match self.sessions().pop(name) {
            Some(s) => {
                s.stop();
                true
            }
            None => false,
        }
    }

    /// Names, least to most recently used (as the original lists them).
    pub fn list(&self) -> Vec<String> {
        let sessions = self.sessions();
        let mut names: Vec<String> = sessions
            .iter()
            .filter(|(_, s)| s.state().current.is_some())
            .map(|(n, _)| n.clone())
            .collect();
        names.reverse();
        names
    }

    /// `whoami`: GetCallerIdentity with a cached session's credentials.
    pub async fn whoami(self: &Arc<Self>, name: &str) -> Result<Option<Identity>> {
        let Some(fetched) = self.credentials(name, 0, false).await? else {
            return Ok(None);
        };
        Box::pin(self.engine.whoami(&fetched.credentials, &fetched.sts))
            .await
            .map(Some)
    }

    /// Per-session details for `status` and `daemon list`, least to most recently used.
    pub fn describe(&self) -> Vec<Value> {
        let sessions = self.sessions();
        let t = now();
        let mut out: Vec<Value> = sessions
            .iter()
            .filter_map(|(name, s)| {
                let st = s.state();
                let current = st.current.as_ref()?;
                let c = &current.credentials;
                let mut entry = json!({
                    "name": name,
                    "source": current.source,
                    "expiry_time": iso8601_offset(c.expiration),
                    "remaining_seconds": c.remaining_secs(t),
                    "lifetime_seconds": c.lifetime_secs(),
                    "refresh_count": st.refresh_count,
                });
                // Absent fields are omitted, never null (protocol v1).
                if let Some(at) = st.last_refresh {
                    entry["last_refresh"] = json!(iso8601_offset(at));
                }
                if let Some(e) = &st.last_error {
                    entry["last_error"] = json!(e.message);
                }
                Some(entry)
            })
            .collect();
        out.reverse();
        out
    }

    pub fn len(&self) -> usize {
        self.sessions().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether `fetched` satisfies `need` now.
    fn satisfies(&self, fetched: &Fetched, need: Need) -> bool {
        let c = &fetched.credentials;
        let remaining = c.remaining_secs(now());
        let lifetime = c.lifetime_secs();
        match need {
            Need::Force => false,
            Need::Advisory(a) => remaining > a,
            Need::Remaining(r) => !self.policy.must_refresh(remaining, lifetime, r),
        }
    }

    /// Makes sure `session` satisfies `need`, refreshing single-flight when it does not.
    /// After a failure, at most one attempt per 30 s; valid old credentials are served
    /// meanwhile.
    async fn ensure(
        self: &Arc<Self>,
        session: &Arc<Session>,
        need: Need,
        token: Option<Sensitive>,
    ) -> Result<Fetched> {
        if !matches!(need, Need::Force)
            && let Some(f) = session.state().current.clone()
            && self.satisfies(&f, need)
        {
            return Ok(f);
        }
        let _flight = session.flight.lock().await;
        // Someone else may have refreshed while we waited.
        let (current, recent_failure) = {
            let st = session.state();
            let recent = st
                .failed_at
                .filter(|t| t.elapsed() < Duration::from_secs(FAILURE_BACKOFF_SECS as u64))
                .and(st.last_error.clone());
            (st.current.clone(), recent)
        };
        if let Some(f) = &current
            && !matches!(need, Need::Force)
            && self.satisfies(f, need)
        {
            return Ok(f.clone());
        }
        if let Some(err) = recent_failure
            && token.is_none()
            && !matches!(need, Need::Force)
        {
            return serve_stale(current, err);
        }

        tracing::info!(session = %session.name, "refreshing");
        // Boxed: the SDK's futures are large, and inline they would make every
        // request's future (moved at each spawn) as large, cached answers included.
        match Box::pin(self.engine.fetch(&session.name, token.as_ref())).await {
            Ok(fetched) => {
                let first = {
                    let mut st = session.state();
                    let first = st.current.is_none();
                    st.current = Some(fetched.clone());
                    st.last_refresh = Some(now());
                    st.last_error = None;
                    st.failed_at = None;
                    st.refresh_count += 1;
                    first
                };
                tracing::info!(
                    session = %session.name,
                    expires = %iso8601_offset(fetched.credentials.expiration),
                    "refreshed"
                );
                if first || session.task.lock().map(|t| t.is_none()).unwrap_or(false) {
                    self.start_refresher(session);
                }
                Ok(fetched)
            }
            Err(err) => {
                tracing::warn!(session = %session.name, error = %err.message, "refresh failed");
                {
                    let mut st = session.state();
                    st.last_error = Some(err.clone());
                    st.failed_at = Some(Instant::now());
                }
                self.forget_if_empty(session);
                // A forced refresh (`refresh`, `add` with an MFA code) reports its own
                // failure; the old credentials stay cached for other requests.
                if matches!(need, Need::Force) {
                    return Err(err);
                }
                serve_stale(current, err)
            }
        }
    }

    /// The background refresher of one session: sleeps until the advisory window
    /// opens (with jitter), refreshes, and after a failure retries every 30 s.
    fn start_refresher(self: &Arc<Self>, session: &Arc<Session>) {
        let cache = Arc::downgrade(self);
        let weak = Arc::downgrade(session);
        let handle = tokio::spawn(async move {
            loop {
                let Some(session) = weak.upgrade() else {
                    return;
                };
                // Sleep until the (jittered) advisory window opens, or until the
                // failure backoff has passed, whichever is later.
                let (wait, threshold) = {
                    let Some(cache) = cache.upgrade() else { return };
                    let st = session.state();
                    let backoff = st
                        .failed_at
                        .map(|t| {
                            Duration::from_secs(FAILURE_BACKOFF_SECS as u64)
                                .saturating_sub(t.elapsed())
                        })
                        .unwrap_or_default();
                    match &st.current {
                        Some(f) => {
                            let c = &f.credentials;
                            let a = cache.policy.advisory_jittered(c.lifetime_secs(), jitter());
                            let until =
                                Duration::from_secs((c.remaining_secs(now()) - a).max(0) as u64);
                            (until.max(backoff), a)
                        }
                        None => (Duration::from_secs(FAILURE_BACKOFF_SECS as u64), i64::MAX),
                    }
                };
                drop(session);
                tokio::time::sleep(wait + Duration::from_millis(10)).await;
                let (Some(cache), Some(session)) = (cache.upgrade(), weak.upgrade()) else {
                    return;
                };
                let _ = cache
                    .ensure(&session, Need::Advisory(threshold), None)
                    .await;
            }
        });
        if let Ok(mut t) = session.task.lock()
            && let Some(old) = t.replace(handle.abort_handle())
        {
            old.abort();
        }
    }
}

/// After a failed refresh: the old credentials while they are valid, else the error.
fn serve_stale(current: Option<Fetched>, err: Error) -> Result<Fetched> {
    match current {
        Some(f) if f.credentials.remaining_secs(now()) > 0 => Ok(f),
        _ => Err(err),
    }
}

/// A random number in [0, 1), for the refresh jitter.
fn jitter() -> f64 {
    let mut b = [0u8; 4];
    if getrandom::fill(&mut b).is_err() {
        return 0.0;
    }
    f64::from(u32::from_le_bytes(b)) / (f64::from(u32::MAX) + 1.0)
}
