//! When credentials are refreshed (the refresh rules of the spec). Every window is
//! scaled to the lifetime L of the current credentials, so 15-minute credentials are not
//! refreshed in a loop and 12-hour ones are not refreshed hours early.
//!
//! | rule | value |
//! | --- | --- |
//! | background refresh when remaining ≤ A | A = min(15 min, L/2), up to 10 % earlier (jitter) |
//! | never served when remaining ≤ M | M = min(10 min, L/4) |
//! | a request asking R | R' = min(R, L/2); refresh first when remaining ≤ R' |
//! | after a failed refresh | at most one attempt per 30 s |
//! | the hook refreshes at ELHAZ_REFRESH_AT | expiry − W, W = min(ELHAZ_REFRESH_WINDOW or 10 min, L/4) |
//!
//! Owns the numbers only: applying them to a request is credentials::gate's. Knows
//! nothing of sessions, sockets or the clock.

use crate::duration::Seconds;
use crate::error::Result;

/// The caps of the windows, in seconds. Defaults: A 15 min, M 10 min, W 10 min.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub advisory_cap: i64,
    pub mandatory_cap: i64,
    pub hook_cap: i64,
}

/// At most one refresh attempt per session in this many seconds after a failure.
pub(crate) const FAILURE_BACKOFF_SECS: i64 = 30;
/// What `exec`, `credential-process` and the container endpoint ask for.
pub(crate) const DEFAULT_MIN_REMAINING_SECS: i64 = 15 * 60;

impl Default for Policy {
    fn default() -> Self {
        Policy {
            advisory_cap: 15 * 60,
            mandatory_cap: 10 * 60,
            hook_cap: 10 * 60,
        }
    }
}

impl Policy {
    /// The defaults, with ELHAZ_ADVISORY_WINDOW, ELHAZ_MANDATORY_WINDOW and
    /// ELHAZ_REFRESH_WINDOW (the hook's) applied.
    pub fn from_env() -> Result<Policy> {
        let mut p = Policy::default();
        if let Some(Seconds(s)) = Seconds::from_env("ELHAZ_ADVISORY_WINDOW")? {
            p.advisory_cap = s as i64;
        }
        if let Some(Seconds(s)) = Seconds::from_env("ELHAZ_MANDATORY_WINDOW")? {
            p.mandatory_cap = s as i64;
        }
        if let Some(Seconds(s)) = Seconds::from_env("ELHAZ_REFRESH_WINDOW")? {
            p.hook_cap = s as i64;
        }
        Ok(p)
    }

    /// A: the daemon starts a background refresh when this much (or less) remains.
    pub fn advisory(&self, lifetime: i64) -> i64 {
        self.advisory_cap.min(lifetime / 2)
    }

    /// A with jitter: up to 10 % of A earlier. `unit` is a random number in [0, 1).
    pub fn advisory_jittered(&self, lifetime: i64, unit: f64) -> i64 {
        let a = self.advisory(lifetime);
        a + ((a as f64) * 0.1 * unit.clamp(0.0, 1.0)) as i64
    }

    /// M: credentials with this much (or less) left are never served.
    pub fn mandatory(&self, lifetime: i64) -> i64 {
        self.mandatory_cap.min(lifetime / 4)
    }

    /// R': what a request asking for `requested` seconds really gets.
    pub fn effective_min_remaining(&self, requested: i64, lifetime: i64) -> i64 {
        requested.max(0).min(lifetime / 2)
    }

    /// Whether credentials with `remaining` of `lifetime` left must be refreshed before
    /// being served to a request asking for `requested` seconds (0: no ask).
    pub fn must_refresh(&self, remaining: i64, lifetime: i64, requested: i64) -> bool {
        remaining <= self.mandatory(lifetime)
            || (requested > 0 && remaining <= self.effective_min_remaining(requested, lifetime))
    }

    /// W: how long before expiry the prompt hook refreshes.
    pub fn hook_window(&self, lifetime: i64) -> i64 {
        self.hook_cap.min(lifetime / 4)
    }

    /// ELHAZ_REFRESH_AT for credentials expiring at `expires_unix`.
    pub fn refresh_at(&self, expires_unix: i64, lifetime: i64) -> i64 {
        expires_unix - self.hook_window(lifetime)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: i64 = 3600;

    #[test]
    fn windows_scale_with_lifetime() {
        let p = Policy::default();
        // One hour: the fixed caps apply.
        assert_eq!(p.advisory(HOUR), 900);
        assert_eq!(p.mandatory(HOUR), 600);
        assert_eq!(p.hook_window(HOUR), 600);
        // 15 minutes (role chaining): halves and quarters, never the whole lifetime.
        assert_eq!(p.advisory(900), 450);
        assert_eq!(p.mandatory(900), 225);
        assert_eq!(p.hook_window(900), 225);
        assert_eq!(p.effective_min_remaining(900, 900), 450);
    }

    #[test]
    fn fresh_15_minute_credentials_are_served_not_refreshed() {
        // The loop the spec forbids: a 15-minute window on 15-minute credentials.
        let p = Policy::default();
        assert!(!p.must_refresh(899, 900, DEFAULT_MIN_REMAINING_SECS));
        assert!(p.must_refresh(449, 900, DEFAULT_MIN_REMAINING_SECS));
        assert!(p.must_refresh(225, 900, 0));
        assert!(!p.must_refresh(226, 900, 0));
    }

    #[test]
    fn jitter_is_at_most_ten_percent_earlier() {
        let p = Policy::default();
        assert_eq!(p.advisory_jittered(HOUR, 0.0), 900);
        assert_eq!(p.advisory_jittered(HOUR, 0.999), 989);
        assert!(p.advisory_jittered(HOUR, 1.0) <= 990);
    }

    #[test]
    fn refresh_at_uses_the_hook_window() {
        let p = Policy {
            hook_cap: 30,
            ..Policy::default()
        };
        assert_eq!(p.refresh_at(1_000, 40), 990);
        assert_eq!(p.refresh_at(1_000, 3600), 970);
    }
}
