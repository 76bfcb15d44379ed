//! The cache on tokio's paused clock: a fake engine that counts its calls, and the
//! refresh windows of a one-hour session passed with `advance` instead of waited for.

use super::*;
use crate::credentials::chain::Hop;
use crate::credentials::{Credentials, StsTarget};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

const HOUR: i64 = 3600;

/// Issues credentials `lifetime` long, numbered in order; fails while `failing`;
/// NAME's identity is NAME plus `version` (an edited config bumps it).
struct Fake {
    lifetime: i64,
    fetches: AtomicUsize,
    attempts: AtomicUsize,
    failing: AtomicBool,
    version: AtomicUsize,
    /// Each fetch takes this long (virtual), so concurrent callers overlap.
    delay: Duration,
}

impl Fake {
    fn new(lifetime: i64) -> Fake {
        Fake {
            lifetime,
            fetches: AtomicUsize::new(0),
            attempts: AtomicUsize::new(0),
            failing: AtomicBool::new(false),
            version: AtomicUsize::new(0),
            delay: Duration::from_millis(200),
        }
    }
    fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
    fn attempts(&self) -> usize {
        self.attempts.load(Ordering::SeqCst)
    }
}

impl Fetcher for Arc<Fake> {
    fn config_dir(&self) -> &Path {
        Path::new("/nonexistent")
    }
    async fn identity(&self, name: &str, _ctx: &SourceContext) -> Result<Vec<u8>> {
        if name == "unknown" {
            return Err(Error::new(Kind::Config, "no config or profile"));
        }
        Ok(format!("{name}:{}", self.version.load(Ordering::SeqCst)).into_bytes())
    }
    async fn fetch(
        &self,
        _name: &str,
        _token: Option<&Sensitive>,
        _ctx: &SourceContext,
        _reuse: &[Hop],
    ) -> Result<Fetched> {
        self.attempts.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(self.delay).await;
        if self.failing.load(Ordering::SeqCst) {
            return Err(Error::new(Kind::Auth, "STS is down"));
        }
        let n = self.fetches.fetch_add(1, Ordering::SeqCst) + 1;
        let t = now();
        Ok(Fetched {
            credentials: Credentials::new(
                format!("ASIA{n:016}"),
                "secret",
                "token",
                t + time::Duration::seconds(self.lifetime),
                t,
            ),
            region: None,
            source: "config",
            sts: StsTarget::default(),
            hops: Vec::new(),
            notes: Vec::new(),
            sso: None,
        })
    }
    async fn whoami(
        &self,
        _c: &Credentials,
        _sts: &StsTarget,
        _ctx: &SourceContext,
    ) -> Result<Identity> {
        unreachable!("not asked in these tests")
    }
}

fn cache(fake: &Arc<Fake>, capacity: usize) -> Arc<Cache<Arc<Fake>>> {
    Cache::new(fake.clone(), Policy::default(), capacity)
}

fn caller() -> SourceContext {
    SourceContext::from_lookup(false, |_| None)
}

async fn key_of(cache: &Arc<Cache<Arc<Fake>>>, name: &str) -> String {
    let f = cache.credentials(name, 0, true, &caller()).await.unwrap();
    f.unwrap().credentials.access_key_id
}

#[tokio::test(start_paused = true)]
async fn fifty_concurrent_requests_for_a_cold_session_make_one_fetch() {
    let fake = Arc::new(Fake::new(HOUR));
    let cache = cache(&fake, 8);
    let asks: Vec<_> = (0..50)
        .map(|_| {
            let cache = cache.clone();
            tokio::spawn(async move { key_of(&cache, "prod").await })
        })
        .collect();
    for a in asks {
        assert_eq!(a.await.unwrap(), "ASIA0000000000000001");
    }
    assert_eq!(fake.fetches(), 1);
}

#[tokio::test(start_paused = true)]
async fn the_session_is_refreshed_in_the_background_once_the_advisory_window_opens() {
    let fake = Arc::new(Fake::new(HOUR));
    let cache = cache(&fake, 8);
    assert_eq!(key_of(&cache, "prod").await, "ASIA0000000000000001");
    // A = min(15 min, L/2) = 15 min, up to 10 % earlier: nothing before 43.5 min.
    tokio::time::advance(Duration::from_secs(43 * 60)).await;
    tokio::task::yield_now().await;
    assert_eq!(fake.fetches(), 1, "refreshed before the advisory window");
    // By 45 min the refresher has run, with no request asking.
    tokio::time::sleep(Duration::from_secs(2 * 60)).await;
    assert_eq!(fake.fetches(), 2, "no background refresh in the window");
    // A request now is served the refreshed credentials from the cache.
    assert_eq!(key_of(&cache, "prod").await, "ASIA0000000000000002");
    assert_eq!(fake.fetches(), 2);
    // And again one lifetime later, still with nobody asking.
    tokio::time::sleep(Duration::from_secs(HOUR as u64)).await;
    assert_eq!(fake.fetches(), 3);
}

#[tokio::test(start_paused = true)]
async fn a_request_asking_for_more_than_is_left_refreshes_first() {
    let fake = Arc::new(Fake::new(HOUR));
    let cache = cache(&fake, 8);
    key_of(&cache, "prod").await;
    tokio::time::advance(Duration::from_secs(20 * 60)).await;
    // 40 min left; asking for 45 is capped at L/2 = 30 min: served from the cache.
    let f = cache.credentials("prod", 45 * 60, true, &caller()).await;
    assert_eq!(
        f.unwrap().unwrap().credentials.access_key_id,
        "ASIA0000000000000001"
    );
    tokio::time::advance(Duration::from_secs(11 * 60)).await;
    // 29 min left, below R' = 30 min: refreshed before the answer.
    let f = cache.credentials("prod", 45 * 60, true, &caller()).await;
    assert_eq!(
        f.unwrap().unwrap().credentials.access_key_id,
        "ASIA0000000000000002"
    );
}

#[tokio::test(start_paused = true)]
async fn while_sts_fails_the_old_credentials_are_served_until_expiry_and_it_is_asked_once_per_30s()
{
    let fake = Arc::new(Fake::new(HOUR));
    let cache = cache(&fake, 8);
    key_of(&cache, "prod").await;
    fake.failing.store(true, Ordering::SeqCst);
    // Inside the mandatory window (M = 10 min): every request wants a refresh...
    tokio::time::advance(Duration::from_secs(52 * 60)).await;
    let before = fake.attempts();
    for _ in 0..20 {
        // ...and gets the old credentials, still valid, rather than an error.
        assert_eq!(key_of(&cache, "prod").await, "ASIA0000000000000001");
    }
    assert_eq!(
        fake.attempts() - before,
        1,
        "STS asked more than once in 30 s"
    );
    // STS is back: within the back-off nothing asks it; after it, one request does.
    fake.failing.store(false, Ordering::SeqCst);
    assert_eq!(key_of(&cache, "prod").await, "ASIA0000000000000001");
    tokio::time::advance(Duration::from_secs(31)).await;
    assert_eq!(key_of(&cache, "prod").await, "ASIA0000000000000002");
    // Failing past the expiry of what is held: the failure is the answer.
    fake.failing.store(true, Ordering::SeqCst);
    tokio::time::advance(Duration::from_secs(HOUR as u64 + 60)).await;
    let r = cache.credentials("prod", 0, true, &caller()).await;
    assert_eq!(r.unwrap_err().message, "STS is down");
}

#[tokio::test(start_paused = true)]
async fn a_failed_background_refresh_keeps_serving_the_old_credentials() {
    let fake = Arc::new(Fake::new(HOUR));
    let cache = cache(&fake, 8);
    key_of(&cache, "prod").await;
    fake.failing.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(46 * 60)).await;
    // 14 min left, above M: the old ones are still served, without waiting.
    let f = cache.credentials("prod", 0, true, &caller()).await;
    assert_eq!(
        f.unwrap().unwrap().credentials.access_key_id,
        "ASIA0000000000000001"
    );
    // STS back: the refresher's next try (every 30 s) gets new ones.
    fake.failing.store(false, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(35)).await;
    assert_eq!(fake.fetches(), 2);
    assert_eq!(key_of(&cache, "prod").await, "ASIA0000000000000002");
}

#[tokio::test(start_paused = true)]
async fn the_least_recently_used_session_is_evicted_and_its_refresher_stops() {
    let fake = Arc::new(Fake::new(HOUR));
    let cache = cache(&fake, 2);
    key_of(&cache, "a").await;
    key_of(&cache, "b").await;
    key_of(&cache, "a").await; // b is now the least recently used
    key_of(&cache, "c").await;
    assert_eq!(cache.list(), ["a", "c"]);
    assert_eq!(fake.fetches(), 3);
    // Past the advisory window: only the two cached sessions refresh.
    tokio::time::sleep(Duration::from_secs(46 * 60)).await;
    assert_eq!(fake.fetches(), 5);
    // Without autoadd, the evicted one is not cached.
    let b = cache.credentials("b", 0, false, &caller()).await.unwrap();
    assert!(b.is_none());
}

#[tokio::test(start_paused = true)]
async fn an_edited_config_gets_a_new_session_and_the_old_refresher_drops_it() {
    let fake = Arc::new(Fake::new(HOUR));
    let cache = cache(&fake, 8);
    key_of(&cache, "prod").await;
    fake.version.fetch_add(1, Ordering::SeqCst);
    // The next request resolves to another identity: a fresh fetch, one session.
    assert_eq!(key_of(&cache, "prod").await, "ASIA0000000000000002");
    assert_eq!(cache.describe().len(), 1);
    fake.version.fetch_add(1, Ordering::SeqCst);
    // Nobody asks; at the window the refresher sees the change and drops it.
    tokio::time::sleep(Duration::from_secs(46 * 60)).await;
    assert_eq!(
        fake.fetches(),
        2,
        "refreshed a session its NAME no longer means"
    );
    assert!(cache.list().is_empty());
}

#[tokio::test(start_paused = true)]
async fn an_unknown_name_is_an_error_and_leaves_nothing_cached() {
    let fake = Arc::new(Fake::new(HOUR));
    let cache = cache(&fake, 8);
    let r = cache.credentials("unknown", 0, true, &caller()).await;
    assert_eq!(r.unwrap_err().kind, Kind::Config);
    assert!(cache.describe().is_empty());
    assert_eq!(fake.fetches(), 0);
}
