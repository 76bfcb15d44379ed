//! Which tests may run side by side. The integration tests are one binary, and a test
//! of one file may be timed or counted against what the tests of another file start
//! (shells under strace, daemons on a slow STS): as when each file was its own binary,
//! tests of different files never overlap. Each `TestEnv` holds its file's turn, taken
//! when it is made and given back when it is dropped; tests of the same file share it.

use std::panic::Location;
use std::sync::{Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

struct State {
    group: Option<&'static str>,
    holders: usize,
}

static STATE: Mutex<State> = Mutex::new(State {
    group: None,
    holders: 0,
});
static FREED: Condvar = Condvar::new();

/// Turns longer than this are not waited for: a test that somehow waits on a turn it
/// holds itself runs late rather than hang the suite.
const MAX_WAIT: Duration = Duration::from_secs(600);

/// A held turn; dropping it gives it back.
pub struct Turn(());

impl Turn {
    /// Waits until no test of another file holds a turn, then takes one for the
    /// caller's file.
    #[track_caller]
    pub fn take() -> Turn {
        Turn::for_group(Location::caller().file())
    }

    pub fn for_group(group: &'static str) -> Turn {
        let deadline = Instant::now() + MAX_WAIT;
        let mut s = STATE.lock().unwrap_or_else(PoisonError::into_inner);
        while s.group.is_some_and(|g| g != group) && Instant::now() < deadline {
            s = FREED
                .wait_timeout(s, Duration::from_millis(500))
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        if s.holders == 0 {
            s.group = Some(group);
        }
        s.holders += 1;
        Turn(())
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        let mut s = STATE.lock().unwrap_or_else(PoisonError::into_inner);
        s.holders -= 1;
        if s.holders == 0 {
            s.group = None;
            FREED.notify_all();
        }
    }
}
