//! The daemon's sessions: an LRU of sessions keyed by (name, what decides its
//! identity), each refreshed single-flight (one STS call however many ask) and in the
//! background ahead of expiry, following the refresh policy. What decides the identity
//! is the engine's ([`Engine::identity`]): the config or profile as the files hold it
//! now and the sources the caller's context resolves to, so callers whose sources are
//! the same share one session (and one MFA prompt), and an edited config or profile
//! gets a new one at the next request. The key holds a keyed hash, never a secret; the
//! session keeps the first caller's context (in memory, wiped on drop) to refresh from
//! the same sources. Whether to serve, refresh or back off is the refresh
//! gate's (credentials::gate); the cache knows nothing of sockets or of the wire.

use crate::duration::now;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

use lru::LruCache;
use serde_json::{Value, json};
use time::OffsetDateTime;
use tokio::task::AbortHandle;

use crate::context::SourceContext;
mod fetcher;
pub(crate) use fetcher::Fetcher;

use crate::credentials::gate::{self, Gate};
use crate::credentials::policy::{FAILURE_BACKOFF_SECS, Policy};

use crate::credentials::{Engine, Fetched, Identity};
use crate::error::{Error, Kind, Result};
use crate::sensitive::Sensitive;
use crate::times::with_offset;

/// What a caller needs of a session's credentials.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Need {
    /// At least this many seconds left (0: only the mandatory window applies).
    Remaining(i64),
    /// The background refresher's own threshold (already jittered).
    Advisory(i64),
    /// Refresh now, whatever is left (`refresh` action, `add` with an MFA code).
    Force,
}

/// A session's place in the cache: its name and the keyed hash of its identity.
type Key = (String, [u8; 32]);

pub(crate) struct Session {
    name: String,
    /// The caller context it was made for: every refresh uses these sources.
    context: SourceContext,
    /// The keyed hash of its identity (its key).
    hash: [u8; 32],
    /// The keyed hash of `context` (for `ELHAZ_CONTEXT_REF`).
    context_hash: [u8; 32],
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
    fn new(name: &str, context: &SourceContext, hash: [u8; 32]) -> Arc<Session> {
        Arc::new(Session {
            name: name.to_string(),
            context: context.clone(),
            hash,
            context_hash: context.keyed_hash(),
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

pub(crate) struct Cache<E: Fetcher = Engine> {
    engine: E,
    policy: Policy,
    sessions: Mutex<LruCache<Key, Arc<Session>>>,
}

impl<E: Fetcher> Cache<E> {
    /// The config directory this daemon reads.
    pub(crate) fn config_dir(&self) -> &Path {
        self.engine.config_dir()
    }

    pub(crate) fn new(engine: E, policy: Policy, capacity: usize) -> Arc<Cache<E>> {
        let cap = std::num::NonZeroUsize::new(capacity.max(1)).expect("capacity is at least 1");
        Arc::new(Cache {
            engine,
            policy,
            sessions: Mutex::new(LruCache::new(cap)),
        })
    }

    fn sessions(&self) -> std::sync::MutexGuard<'_, LruCache<Key, Arc<Session>>> {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The key of NAME for this caller: the keyed hash of what decides its identity
    /// now (an unknown NAME, or a config or profile that cannot be read, is an error).
    async fn key(&self, name: &str, ctx: &SourceContext) -> Result<Key> {
        let mut bytes = Box::pin(self.engine.identity(name, ctx)).await?;
        let hash = crate::context::keyed(&bytes);
        zeroize::Zeroize::zeroize(&mut bytes);
        Ok((name.to_string(), hash))
    }

    /// The session (NAME, identity), marked as most recently used. A NAME that does
    /// not resolve now has no session (the protocol's "not cached").
    async fn get(&self, name: &str, ctx: &SourceContext) -> Result<Option<Arc<Session>>> {
        let Ok(key) = self.key(name, ctx).await else {
            return Ok(None);
        };
        Ok(self.sessions().get(&key).cloned())
    }

    /// The session (NAME, identity), created (empty) when missing. The bool says
    /// whether it is new. A new one replaces the sessions of NAME that this same
    /// caller context made before its config or profile changed.
    async fn get_or_insert(&self, name: &str, ctx: &SourceContext) -> Result<(Arc<Session>, bool)> {
        let key = self.key(name, ctx).await?;
        let mut sessions = self.sessions();
        if let Some(s) = sessions.get(&key) {
            return Ok((s.clone(), false));
        }
        let s = Session::new(name, ctx, key.1);
        let stale: Vec<Key> = sessions
            .iter()
            .filter(|(k, old)| k.0 == name && old.context_hash == s.context_hash)
            .map(|(k, _)| k.clone())
            .collect();
        for k in stale {
            if let Some(old) = sessions.pop(&k) {
                tracing::info!(session = %name, "the config or profile changed: a new session replaces the old one");
                old.stop();
            }
        }
        if let Some((evicted_key, evicted)) = sessions.push(key.clone(), s.clone())
            && evicted_key != key
        {
            tracing::info!(session = %evicted_key.0, "session evicted (cache full)");
            evicted.stop();
        }
        Ok((s, true))
    }

    /// Drops `session` from the cache.
    fn drop_session(&self, session: &Arc<Session>) {
        let mut sessions = self.sessions();
        let key = (session.name.clone(), session.hash);
        if sessions.peek(&key).is_some_and(|s| Arc::ptr_eq(s, session)) {
            sessions.pop(&key);
        }
        drop(sessions);
        session.stop();
    }

    /// Drops an entry that never got credentials (a failed add).
    fn forget_if_empty(&self, session: &Arc<Session>) {
        if session.state().current.is_some() {
            return;
        }
        let mut sessions = self.sessions();
        let key = (session.name.clone(), session.hash);
        if sessions.peek(&key).is_some_and(|s| Arc::ptr_eq(s, session)) {
            sessions.pop(&key);
        }
    }

    /// `add`: fetches NAME now. An existing session is a conflict, unless an MFA code
    /// is given (then it is refreshed with it).
    pub(crate) async fn add(
        self: &Arc<Self>,
        name: &str,
        token: Option<Sensitive>,
        ctx: &SourceContext,
    ) -> Result<()> {
        let (session, new) = self.get_or_insert(name, ctx).await?;
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
    pub(crate) async fn credentials(
        self: &Arc<Self>,
        name: &str,
        min_remaining: i64,
        autoadd: bool,
        ctx: &SourceContext,
    ) -> Result<Option<Fetched>> {
        let session = if autoadd {
            self.get_or_insert(name, ctx).await?.0
        } else {
            match self.get(name, ctx).await? {
                Some(s) => s,
                None => return Ok(None),
            }
        };
        self.ensure(&session, Need::Remaining(min_remaining), None)
            .await
            .map(Some)
    }

    /// `refresh`: forces a refresh of a cached session.
    pub(crate) async fn refresh(
        self: &Arc<Self>,
        name: &str,
        ctx: &SourceContext,
    ) -> Result<Option<Fetched>> {
        let Some(session) = self.get(name, ctx).await? else {
            return Ok(None);
        };
        self.ensure(&session, Need::Force, None).await.map(Some)
    }

    /// `remove`: forgets NAME, in every caller context it was fetched for (forgetting
    /// is never a different answer: the next request fetches anew).
    pub(crate) fn remove(&self, name: &str) -> bool {
        let mut sessions = self.sessions();
        let keys: Vec<Key> = sessions
            .iter()
            .filter(|(k, _)| k.0 == name)
            .map(|(k, _)| k.clone())
            .collect();
        for k in &keys {
            if let Some(s) = sessions.pop(k) {
                s.stop();
            }
        }
        !keys.is_empty()
    }

    /// Forgets every session whose credentials came from the SSO login at `start_url`
    /// (from any SSO login when None); how many went.
    pub(crate) fn forget_sso(&self, start_url: Option<&str>) -> usize {
        let mut sessions = self.sessions();
        let keys: Vec<Key> = sessions
            .iter()
            .filter(|(_, s)| {
                let st = s.state();
                let sso = st.current.as_ref().and_then(|f| f.sso.as_deref());
                sso.is_some() && (start_url.is_none() || sso == start_url)
            })
            .map(|(k, _)| k.clone())
            .collect();
        for k in &keys {
            if let Some(s) = sessions.pop(k) {
                tracing::info!(session = %s.name, "forgotten: its SSO session was logged out");
                s.stop();
            }
        }
        keys.len()
    }

    /// Names, least to most recently used (as the original lists them), each once
    /// however many caller contexts hold it.
    pub(crate) fn list(&self) -> Vec<String> {
        let sessions = self.sessions();
        let mut names: Vec<String> = Vec::new();
        // Most recently used first: a name takes the place of its freshest session.
        for (k, s) in sessions.iter() {
            if s.state().current.is_some() && !names.contains(&k.0) {
                names.push(k.0.clone());
            }
        }
        names.reverse();
        names
    }

    /// `whoami`: GetCallerIdentity with the cached session of (NAME, context).
    pub(crate) async fn whoami(
        self: &Arc<Self>,
        name: &str,
        ctx: &SourceContext,
    ) -> Result<Option<Identity>> {
        let Some(fetched) = self.credentials(name, 0, false, ctx).await? else {
            return Ok(None);
        };
        Box::pin(self.engine.whoami(&fetched.credentials, &fetched.sts, ctx))
            .await
            .map(Some)
    }

    /// Per-session details for `status` and `daemon list`, least to most recently used.
    pub(crate) fn describe(&self) -> Vec<Value> {
        let sessions = self.sessions();
        let t = now();
        let mut out: Vec<Value> = sessions
            .iter()
            .filter_map(|((name, hash), s)| {
                let st = s.state();
                let current = st.current.as_ref()?;
                let c = &current.credentials;
                let mut entry = json!({
                    "name": name,
                    "context": context_id(hash),
                    "source": current.source,
                    "expiry_time": with_offset(c.expiration),
                    "remaining_seconds": c.remaining_secs(t),
                    "lifetime_seconds": c.lifetime_secs(),
                    "refresh_count": st.refresh_count,
                });
                // Absent fields are omitted, never null (protocol v1).
                if let Some(at) = st.last_refresh {
                    entry["last_refresh"] = json!(with_offset(at));
                }
                if let Some(e) = &st.last_error {
                    entry["last_error"] = json!(e.message);
                }
                // The non-secret selector, to tell a name's contexts apart.
                if let Some(p) = s
                    .context
                    .get("AWS_PROFILE")
                    .or_else(|| s.context.get("AWS_DEFAULT_PROFILE"))
                {
                    entry["aws_profile"] = json!(p);
                }
                Some(entry)
            })
            .collect();
        out.reverse();
        out
    }

    /// The context of the cached session whose keyed hash is `hex` (see
    /// [`context::REF_VAR`](crate::context::REF_VAR)).
    pub(crate) fn context_by_ref(&self, hex: &str) -> Option<SourceContext> {
        let sessions = self.sessions();
        sessions
            .iter()
            .find(|(_, s)| crate::context::hex(&s.context_hash) == hex)
            .map(|(_, s)| s.context.clone())
    }

    /// Whether `fetched` satisfies `need` now.
    fn satisfies(&self, fetched: &Fetched, need: Need) -> bool {
        let c = &fetched.credentials;
        let remaining = c.remaining_secs(now());
        match need {
            Need::Force => false,
            Need::Advisory(a) => remaining > a,
            Need::Remaining(r) => gate::fresh(&self.policy, c, r),
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
        let current = {
            let st = session.state();
            let failure = gate::recent(st.failed_at, st.last_error.as_ref()).cloned();
            let may_back_off = token.is_none() && !matches!(need, Need::Force);
            match gate::decide(
                st.current.as_ref(),
                |f| self.satisfies(f, need),
                failure.as_ref(),
                may_back_off,
            ) {
                Gate::Serve(f) => return Ok(f),
                Gate::BackOff(r) => return r,
                Gate::Refresh => st.current.clone(),
            }
        };

        tracing::info!(session = %session.name, "refreshing");
        let reuse = current.as_ref().map(|f| f.hops.clone()).unwrap_or_default();
        // Boxed: the SDK's futures are large, and inline they would make every
        // request's future (moved at each spawn) as large, cached answers included.
        let fetch = self
            .engine
            .fetch(&session.name, token.as_ref(), &session.context, &reuse);
        let notes = std::cell::RefCell::new(Vec::new());
        let result = Box::pin(crate::credentials::external::NOTES.scope(notes, async {
            let r = fetch.await;
            let said = crate::credentials::external::NOTES.with(|n| n.take());
            (r, said)
        }))
        .await;
        match with_notes(result) {
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
                    expires = %with_offset(fetched.credentials.expiration),
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
                gate::serve_stale(current, err)
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
                // A config or profile that changed (or went) since: this session is
                // no longer what its NAME means, and is dropped instead of refreshed.
                let now_key = cache.key(&session.name, &session.context).await;
                if now_key.as_ref().ok().map(|k| k.1) != Some(session.hash) {
                    tracing::info!(session = %session.name, "the config or profile changed: session dropped");
                    cache.drop_session(&session);
                    return;
                }
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

/// What helpers said on stderr during a fetch, put where the caller sees it: on the
/// credentials (relayed to the client), or in the error.
fn with_notes((result, notes): (Result<Fetched>, Vec<String>)) -> Result<Fetched> {
    match result {
        Ok(mut f) => {
            f.notes = notes;
            Ok(f)
        }
        Err(e) => Err(e),
    }
}

/// A short, stable id of a caller context for `status`: the first 8 hex digits of its
/// keyed hash (meaningless outside this daemon).
fn context_id(hash: &[u8; 32]) -> String {
    hash[..4].iter().map(|b| format!("{b:02x}")).collect()
}

/// A random number in [0, 1), for the refresh jitter.
fn jitter() -> f64 {
    let mut b = [0u8; 4];
    if getrandom::fill(&mut b).is_err() {
        return 0.0;
    }
    f64::from(u32::from_le_bytes(b)) / (f64::from(u32::MAX) + 1.0)
}

#[cfg(test)]
mod tests;
