//! Which tests may run side by side. The integration tests are one binary; most of them
//! wait on real time (credential lifetimes, refresh windows, shells under a pty) rather
//! than on the CPU, and every `TestEnv` is a user of its own (HOME, socket, daemon,
//! STS), so they run side by side. A test whose bounds are timings under a load it
//! makes itself (a flood of connections) runs **alone**: it waits until no other test
//! holds a turn, and no test starts while it runs. The other figures tests print are
//! indicative; `cargo bench --bench elhaz` measures.

use std::cell::Cell;
use std::sync::{Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

struct State {
    /// Turns held side by side.
    shared: usize,
    /// A test runs alone (or waits to: no new shared turn starts meanwhile).
    alone: bool,
}

static STATE: Mutex<State> = Mutex::new(State {
    shared: 0,
    alone: false,
});
static FREED: Condvar = Condvar::new();

thread_local! {
    /// This thread runs a test that holds the lone turn: its own users take no turn.
    static ALONE_HERE: Cell<bool> = const { Cell::new(false) };
}

/// Turns longer than this are not waited for: a test that somehow waits on a turn it
/// holds itself runs late rather than hang the suite.
const MAX_WAIT: Duration = Duration::from_secs(600);

fn wait_while(mut blocked: impl FnMut(&State) -> bool) -> std::sync::MutexGuard<'static, State> {
    let deadline = Instant::now() + MAX_WAIT;
    let mut s = STATE.lock().unwrap_or_else(PoisonError::into_inner);
    while blocked(&s) && Instant::now() < deadline {
        s = FREED
            .wait_timeout(s, Duration::from_millis(500))
            .unwrap_or_else(PoisonError::into_inner)
            .0;
    }
    s
}

/// A held turn; dropping it gives it back.
pub struct Turn {
    kind: Kind,
}

enum Kind {
    Shared,
    Alone,
    /// Taken on the thread of a test that runs alone: nothing to give back.
    Nested,
}

impl Turn {
    /// A turn beside the other tests (what every `TestEnv` holds).
    pub fn shared() -> Turn {
        if ALONE_HERE.with(Cell::get) {
            return Turn { kind: Kind::Nested };
        }
        let mut s = wait_while(|s| s.alone);
        s.shared += 1;
        Turn { kind: Kind::Shared }
    }

    /// The lone turn, for a test that measures: taken once the tests running now are
    /// done; none starts until it is given back. Take it before making the test's users.
    pub fn alone() -> Turn {
        let mut s = wait_while(|s| s.alone);
        s.alone = true;
        drop(s);
        let s = wait_while(|s| s.shared > 0);
        drop(s);
        ALONE_HERE.with(|a| a.set(true));
        Turn { kind: Kind::Alone }
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        let mut s = STATE.lock().unwrap_or_else(PoisonError::into_inner);
        match self.kind {
            Kind::Shared => s.shared -= 1,
            Kind::Alone => {
                s.alone = false;
                ALONE_HERE.with(|a| a.set(false));
            }
            Kind::Nested => return,
        }
        FREED.notify_all();
    }
}
