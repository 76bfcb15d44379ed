//! Durations as users write them: plain seconds (`900`) or with units (`15m`, `50s`,
//! `1h`, `1h30m`). Used by flags and by `ELHAZ_*` variables alike. It knows only the
//! error type.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// A whole number of seconds, parsed from `900`, `15m`, `1h30m`, `2d`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Seconds(pub u64);

impl Seconds {
    pub(crate) fn duration(self) -> Duration {
        Duration::from_secs(self.0)
    }

    /// Reads an `ELHAZ_*` variable; an unset or empty variable gives `None`, a bad one
    /// gives an error naming the variable.
    pub(crate) fn from_env(var: &str) -> crate::error::Result<Option<Seconds>> {
        match std::env::var(var) {
            Ok(v) if !v.trim().is_empty() => v.parse().map(Some).map_err(|e| {
                crate::error::Error::usage(format!("{var}={v:?}: {e}")).with_hint(format!(
                    "set {var} to seconds (900) or a duration (15m, 1h)"
                ))
            }),
            _ => Ok(None),
        }
    }
}

impl FromStr for Seconds {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.is_empty() {
            return Err("empty duration".into());
        }
        if let Ok(n) = s.parse::<u64>() {
            return Ok(Seconds(n));
        }
        let mut total: u64 = 0;
        let mut digits = String::new();
        for c in s.chars() {
            if c.is_ascii_digit() {
                digits.push(c);
                continue;
            }
            let unit = match c {
                's' => 1,
                'm' => 60,
                'h' => 3600,
                'd' => 86400,
                _ => {
                    return Err(format!(
                        "invalid duration {s:?}: unknown unit {c:?} (use s, m, h or d)"
                    ));
                }
            };
            if digits.is_empty() {
                return Err(format!(
                    "invalid duration {s:?}: a unit needs a number before it"
                ));
            }
            let n: u64 = digits
                .parse()
                .map_err(|_| format!("invalid duration {s:?}: number too large"))?;
            total = n
                .checked_mul(unit)
                .and_then(|v| total.checked_add(v))
                .ok_or_else(|| format!("invalid duration {s:?}: too large"))?;
            digits.clear();
        }
        if !digits.is_empty() {
            return Err(format!(
                "invalid duration {s:?}: trailing number without a unit"
            ));
        }
        Ok(Seconds(total))
    }
}

impl fmt::Display for Seconds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// `42m`, `1h5m`, `30s`: a short human form of a remaining time.
pub(crate) fn human(secs: i64) -> String {
    if secs <= 0 {
        return "expired".into();
    }
    let (h, m, s) = (secs / 3600, (secs % 3600) / 60, secs % 60);
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, m) => format!("{m}m"),
        (h, 0) => format!("{h}h"),
        (h, m) => format!("{h}h{m}m"),
    }
}

/// Now, in UTC: the one clock every credential and token time is compared with.
/// In the unit tests it follows tokio's clock, so a test on paused time moves the
/// refresh windows, the back-off and the background refresher together
/// (`tokio::time::advance`) instead of waiting for credentials to expire.
pub(crate) fn now() -> time::OffsetDateTime {
    #[cfg(test)]
    return test_clock::now();
    #[cfg(not(test))]
    time::OffsetDateTime::now_utc()
}

#[cfg(test)]
mod test_clock {
    use std::sync::OnceLock;

    /// The wall clock and tokio's clock, read together once.
    static BASE: OnceLock<(time::OffsetDateTime, std::time::Instant)> = OnceLock::new();

    /// The wall clock moved by as much as tokio's clock (paused or not) has since.
    pub(super) fn now() -> time::OffsetDateTime {
        let (wall, at) =
            BASE.get_or_init(|| (time::OffsetDateTime::now_utc(), std::time::Instant::now()));
        let since = tokio::time::Instant::now()
            .into_std()
            .saturating_duration_since(*at);
        *wall + since
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_plain_and_units() {
        assert_eq!("900".parse::<Seconds>().unwrap(), Seconds(900));
        assert_eq!("15m".parse::<Seconds>().unwrap(), Seconds(900));
        assert_eq!("50s".parse::<Seconds>().unwrap(), Seconds(50));
        assert_eq!("1h".parse::<Seconds>().unwrap(), Seconds(3600));
        assert_eq!("1h30m".parse::<Seconds>().unwrap(), Seconds(5400));
    }

    #[test]
    fn rejects_garbage() {
        for bad in ["", "m", "15x", "1h30", "-5", "1.5h"] {
            assert!(bad.parse::<Seconds>().is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn human_forms() {
        assert_eq!(human(42 * 60 + 5), "42m");
        assert_eq!(human(3600 + 300), "1h5m");
        assert_eq!(human(30), "30s");
        assert_eq!(human(-1), "expired");
    }
}
