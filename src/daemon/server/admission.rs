//! Who gets a connection slot: a free one, else the oldest idle connection's, and
//! the throttled log of refused peers. Knows nothing of what a request asks.

use super::*;

/// The connections still waiting for their request line, oldest first, each with the
/// sender that closes it.
#[derive(Default)]
pub(super) struct Idle {
    pub(super) next: u64,
    pub(super) waiting: BTreeMap<u64, (Instant, oneshot::Sender<()>)>,
}

/// A connection's place among the idle ones; leaves it when dropped.
pub(super) struct IdleEntry<'a> {
    pub(super) shared: &'a Shared,
    pub(super) id: u64,
}

impl Drop for IdleEntry<'_> {
    fn drop(&mut self) {
        self.shared.idle().waiting.remove(&self.id);
    }
}

impl Shared {
    pub(super) fn idle(&self) -> std::sync::MutexGuard<'_, Idle> {
        self.idle.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers a connection that is about to read its request line.
    pub(super) fn enter_idle(&self) -> (IdleEntry<'_>, oneshot::Receiver<()>) {
        let (tx, rx) = oneshot::channel();
        let mut idle = self.idle();
        let id = idle.next;
        idle.next += 1;
        idle.waiting.insert(id, (Instant::now(), tx));
        (IdleEntry { shared: self, id }, rx)
    }

    /// Closes the oldest connection idle for at least [`IDLE_GRACE`]. Otherwise says
    /// how long until one may be (None: no connection is idle).
    pub(super) fn evict_oldest_idle(&self) -> Result<(), Option<Duration>> {
        let mut idle = self.idle();
        loop {
            let Some(entry) = idle.waiting.first_entry() else {
                return Err(None);
            };
            let age = entry.get().0.elapsed();
            if age < IDLE_GRACE {
                return Err(Some(IDLE_GRACE - age));
            }
            let (_, tx) = entry.remove();
            // A connection that has just read its line is no longer idle: next.
            if tx.send(()).is_ok() {
                return Ok(());
            }
        }
    }
}

/// A slot for a connection just accepted: a free one; else the slot of the oldest
/// idle connection, which is closed; else (every slot busy with a request) the first
/// to be freed. A stalled or slow-loris client thus never locks out a real one.
pub(super) async fn admit(shared: &Shared) -> OwnedSemaphorePermit {
    let mut logged = false;
    loop {
        if let Ok(permit) = shared.permits.clone().try_acquire_owned() {
            return permit;
        }
        let wait = match shared.evict_oldest_idle() {
            Ok(()) => {
                if !logged {
                    tracing::debug!("all connection slots taken: closed the oldest idle one");
                    logged = true;
                }
                // Its slot is freed as soon as its task sees the close.
                IDLE_GRACE
            }
            Err(Some(until)) => until,
            Err(None) => IDLE_GRACE,
        };
        tokio::select! {
            p = shared.permits.clone().acquire_owned() => {
                return p.expect("semaphore is never closed");
            }
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

/// Refusals of another uid are logged once per this interval per uid; the ones in
/// between are counted, and the count is logged when the interval ends. A refused
/// user flooding a socket thus cannot fill the log and rotate the real lines away.
pub(super) const REFUSAL_INTERVAL: Duration = Duration::from_secs(10);

/// Refusals of one uid in the current interval.
pub(super) struct Refusals {
    pub(super) since: Instant,
    pub(super) unlogged: u64,
}

impl Shared {
    /// Logs a refused peer: the first of an interval in full, the others counted.
    pub(super) fn refused(&self, uid: u32, pid: i32) {
        let mut m = self.refusals.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(r) = m.get_mut(&uid) {
            r.unlogged += 1;
            return;
        }
        m.insert(
            uid,
            Refusals {
                since: Instant::now(),
                unlogged: 0,
            },
        );
        drop(m);
        tracing::warn!(
            peer_uid = uid,
            peer_pid = pid,
            "refused connection from another user"
        );
    }

    /// Ends the intervals that are over: one line with the count of the refusals not
    /// logged one by one, if any.
    pub(super) fn flush_refusals(&self) {
        let mut m = self.refusals.lock().unwrap_or_else(|p| p.into_inner());
        m.retain(|&uid, r| {
            if r.since.elapsed() < REFUSAL_INTERVAL {
                return true;
            }
            if r.unlogged == 0 {
                return false;
            }
            tracing::warn!(
                peer_uid = uid,
                count = r.unlogged,
                seconds = r.since.elapsed().as_secs(),
                "refused more connections from another user (counted, not logged one by one)"
            );
            r.since = Instant::now();
            r.unlogged = 0;
            true
        });
    }
}
