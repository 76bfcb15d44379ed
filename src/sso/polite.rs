//! How elhaz asks the IAM Identity Center portal for many things at once: every call
//! of a run waits its turn at one shared rate limit (10 a second, `ELHAZ_SSO_RATE`)
//! and for a place in a window of calls in flight that grows while the portal answers
//! and halves when it throttles; a call the portal throttles (429,
//! TooManyRequestsException) or fails (5xx) is retried after a jittered, doubling
//! pause. Nothing here knows which call it makes.

use std::future::Future;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_sso::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::{Error, Result};

/// Portal calls a second when `ELHAZ_SSO_RATE` is not set.
pub(crate) const DEFAULT_RATE: u32 = 10;
/// Attempts of one call before its failure is the run's.
pub(crate) const ATTEMPTS: u32 = 8;
const FIRST_PAUSE: Duration = Duration::from_millis(50);
const LONGEST_PAUSE: Duration = Duration::from_secs(2);

/// Calls in flight at the start of a run, and at most.
const FIRST_WINDOW: usize = 4;
const LARGEST_WINDOW: usize = 64;

/// The rate limit, the window and the retries every portal call of one run shares.
#[derive(Clone)]
pub(crate) struct Polite {
    limiter: Arc<DefaultDirectRateLimiter>,
    window: Arc<Window>,
}

impl Polite {
    /// At `ELHAZ_SSO_RATE` calls a second, else [`DEFAULT_RATE`].
    pub(crate) fn from_env() -> Result<Polite> {
        let rate = match std::env::var("ELHAZ_SSO_RATE") {
            Ok(v) => parse_rate(&v)?,
            Err(_) => NonZeroU32::new(DEFAULT_RATE).unwrap_or(NonZeroU32::MIN),
        };
        Ok(Polite::new(rate))
    }

    /// At most `per_second` calls a second, spread evenly (no burst).
    pub(crate) fn new(per_second: NonZeroU32) -> Polite {
        let quota = Quota::per_second(per_second).allow_burst(NonZeroU32::MIN);
        Polite {
            limiter: Arc::new(RateLimiter::direct(quota)),
            window: Arc::new(Window::new(FIRST_WINDOW, LARGEST_WINDOW)),
        }
    }

    /// How many calls may be in flight now.
    pub(crate) fn window(&self) -> usize {
        self.window.size()
    }

    /// `call` once its turn comes, again after a pause while the portal throttles or
    /// fails with a 5xx, up to [`ATTEMPTS`] times; any other answer is returned as is.
    pub(crate) async fn call<T, E, F, Fut>(
        &self,
        mut call: F,
    ) -> Result<T, SdkError<E, HttpResponse>>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, SdkError<E, HttpResponse>>>,
        E: ProvideErrorMetadata,
    {
        let mut attempt = 0;
        loop {
            let slot = Window::enter(&self.window).await;
            self.limiter.until_ready().await;
            let answer = call().await;
            let throttled = matches!(&answer, Err(e) if retriable(e));
            slot.leave(!throttled);
            match answer {
                Err(_) if throttled && attempt + 1 < ATTEMPTS => {
                    tokio::time::sleep(pause(attempt)).await;
                    attempt += 1;
                }
                answer => return answer,
            }
        }
    }
}

/// The calls allowed in flight: one more after each window's worth of answers, half
/// as many when the portal throttles (once for the calls that were in flight then).
struct Window {
    places: Arc<Semaphore>,
    state: Mutex<WindowState>,
    largest: usize,
}

struct WindowState {
    size: usize,
    /// Answers since the window last grew.
    answered: usize,
    /// Places still to take away as calls leave (the window shrank below the calls in
    /// flight).
    owed: usize,
    /// Bumped at each halving: a throttle of a call that entered before it does not
    /// halve again.
    era: u64,
}

/// A call's place in the window.
struct Slot {
    window: Arc<Window>,
    permit: OwnedSemaphorePermit,
    era: u64,
}

impl Window {
    fn new(first: usize, largest: usize) -> Window {
        Window {
            places: Arc::new(Semaphore::new(first)),
            state: Mutex::new(WindowState {
                size: first,
                answered: 0,
                owed: 0,
                era: 0,
            }),
            largest,
        }
    }

    fn size(&self) -> usize {
        self.state.lock().map_or(1, |s| s.size)
    }

    async fn enter(window: &Arc<Window>) -> Slot {
        let permit = Arc::clone(&window.places)
            .acquire_owned()
            .await
            .unwrap_or_else(|_| unreachable!("the window's semaphore is never closed"));
        let era = window.state.lock().map_or(0, |s| s.era);
        Slot {
            window: Arc::clone(window),
            permit,
            era,
        }
    }
}

impl Slot {
    /// Leaves the window: `answered` grows it, a throttle halves it.
    fn leave(self, answered: bool) {
        let w = &self.window;
        let Ok(mut s) = w.state.lock() else { return };
        if answered {
            s.answered += 1;
            if s.answered >= s.size && s.size < w.largest {
                s.size += 1;
                s.answered = 0;
                if s.owed > 0 {
                    s.owed -= 1;
                } else {
                    w.places.add_permits(1);
                }
            }
        } else if self.era == s.era && s.size > 1 {
            let cut = s.size - (s.size / 2).max(1);
            s.size -= cut;
            s.answered = 0;
            s.era += 1;
            s.owed += cut - w.places.forget_permits(cut);
        }
        if s.owed > 0 {
            s.owed -= 1;
            self.permit.forget();
        }
    }
}

fn parse_rate(v: &str) -> Result<NonZeroU32> {
    v.trim().parse::<NonZeroU32>().map_err(|_| {
        Error::usage(format!(
            "ELHAZ_SSO_RATE is '{}', not a number of calls a second",
            crate::terminal::escape_controls(v)
        ))
        .with_hint("set ELHAZ_SSO_RATE to a whole number above 0, such as 10, or unset it")
    })
}

/// A throttle or a server failure: worth asking again after a pause.
pub(crate) fn retriable<E: ProvideErrorMetadata>(err: &SdkError<E, HttpResponse>) -> bool {
    if let SdkError::ServiceError(se) = err
        && matches!(
            se.err().code(),
            Some("TooManyRequestsException" | "ThrottlingException")
        )
    {
        return true;
    }
    err.raw_response()
        .map(|r| r.status().as_u16())
        .is_some_and(|s| s == 429 || (500..600).contains(&s))
}

/// The pause before attempt `attempt + 1`: between half and all of a doubling step
/// (50 ms, 100 ms, … up to 2 s), so callers throttled together do not come back together.
fn pause(attempt: u32) -> Duration {
    let step = FIRST_PAUSE
        .saturating_mul(1u32 << attempt.min(16))
        .min(LONGEST_PAUSE);
    let mut b = [0u8; 8];
    let r = if getrandom::fill(&mut b).is_ok() {
        u64::from_le_bytes(b)
    } else {
        u64::from(attempt)
    };
    let half = step / 2;
    let extra = half.as_micros() as u64;
    half + Duration::from_micros(if extra == 0 { 0 } else { r % (extra + 1) })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Enters `n` calls, or as many as the window lets in now.
    async fn enter_all(w: &Arc<Window>, n: usize) -> Vec<Slot> {
        let mut slots = Vec::new();
        for _ in 0..n {
            match tokio::time::timeout(Duration::from_millis(5), Window::enter(w)).await {
                Ok(s) => slots.push(s),
                Err(_) => break,
            }
        }
        slots
    }

    #[tokio::test(start_paused = true)]
    async fn the_window_grows_while_answered_and_halves_once_per_throttle() {
        let w = Arc::new(Window::new(4, 10));
        // Four answers grow it to 5, five more to 6.
        for _ in 0..9 {
            Window::enter(&w).await.leave(true);
        }
        assert_eq!(w.size(), 6);
        assert_eq!(enter_all(&w, 20).await.len(), 6, "six places, no more");
        // Six calls in flight are all throttled: one halving, not six.
        let slots = enter_all(&w, 6).await;
        assert_eq!(slots.len(), 6);
        for s in slots {
            s.leave(false);
        }
        assert_eq!(w.size(), 3);
        assert_eq!(enter_all(&w, 20).await.len(), 3, "the places went with it");
        // A throttle after the halving halves again; never below one.
        for _ in 0..5 {
            Window::enter(&w).await.leave(false);
        }
        assert_eq!(w.size(), 1);
        assert_eq!(enter_all(&w, 20).await.len(), 1);
        // And it grows back, up to the largest.
        for _ in 0..200 {
            Window::enter(&w).await.leave(true);
        }
        assert_eq!(w.size(), 10);
        assert_eq!(enter_all(&w, 20).await.len(), 10);
    }

    #[tokio::test(start_paused = true)]
    async fn a_window_shrunk_below_the_calls_in_flight_lets_none_in_until_they_leave() {
        let w = Arc::new(Window::new(8, 16));
        let mut slots = enter_all(&w, 8).await;
        assert_eq!(slots.len(), 8);
        slots.pop().unwrap().leave(false);
        assert_eq!(w.size(), 4);
        // Seven still in flight, four allowed: three must leave before one enters.
        for _ in 0..3 {
            slots.pop().unwrap().leave(true);
            assert!(enter_all(&w, 1).await.is_empty());
        }
        slots.pop().unwrap().leave(true);
        assert_eq!(enter_all(&w, 1).await.len(), 1);
    }

    #[test]
    fn pauses_double_stay_jittered_and_capped() {
        for attempt in 0..12 {
            let step = (FIRST_PAUSE * (1u32 << attempt)).min(LONGEST_PAUSE);
            let p = pause(attempt);
            assert!(p >= step / 2 && p <= step, "attempt {attempt}: {p:?}");
        }
    }

    #[test]
    fn a_rate_is_a_whole_number_above_zero() {
        assert_eq!(parse_rate(" 25 ").unwrap().get(), 25);
        for bad in ["0", "-3", "ten", "1.5", ""] {
            let e = parse_rate(bad).unwrap_err();
            assert!(e.message.contains("ELHAZ_SSO_RATE"), "{bad}: {}", e.message);
            assert!(e.hint.is_some());
        }
    }
}
