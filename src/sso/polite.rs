//! How elhaz asks the IAM Identity Center portal for many things at once: every call
//! of a run waits its turn at one shared rate limit (10 a second, `ELHAZ_SSO_RATE`),
//! and a call the portal throttles (429, TooManyRequestsException) or fails (5xx) is
//! retried after a jittered, doubling pause. Nothing here knows which call it makes.

use std::future::Future;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_sso::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

use crate::error::{Error, Result};

/// Portal calls a second when `ELHAZ_SSO_RATE` is not set.
pub(crate) const DEFAULT_RATE: u32 = 10;
/// Attempts of one call before its failure is the run's.
pub(crate) const ATTEMPTS: u32 = 8;
const FIRST_PAUSE: Duration = Duration::from_millis(50);
const LONGEST_PAUSE: Duration = Duration::from_secs(2);

/// The rate limit and retries every portal call of one run shares.
#[derive(Clone)]
pub(crate) struct Polite {
    limiter: Arc<DefaultDirectRateLimiter>,
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
        }
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
            self.limiter.until_ready().await;
            match call().await {
                Err(e) if attempt + 1 < ATTEMPTS && retriable(&e) => {
                    tokio::time::sleep(pause(attempt)).await;
                    attempt += 1;
                }
                answer => return answer,
            }
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
