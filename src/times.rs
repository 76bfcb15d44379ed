//! Times as text: the two shapes elhaz writes and the one reader. Every time is
//! written in UTC to the second; `format_description!` checks the shapes at build time.

use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{OffsetDateTime, UtcOffset};

/// `2026-11-24T07:12:14Z`: AWS_CREDENTIAL_EXPIRATION, credential_process's
/// `Expiration`, the AWS CLI's SSO cache (botocore's `%Y-%m-%dT%H:%M:%SZ`).
pub(crate) fn zulu(t: OffsetDateTime) -> String {
    let f = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    t.to_offset(UtcOffset::UTC).format(&f).unwrap_or_default()
}

/// `2026-11-24T07:12:14+00:00`: the original's `expiry_time`.
pub(crate) fn with_offset(t: OffsetDateTime) -> String {
    let f = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]+00:00");
    t.to_offset(UtcOffset::UTC).format(&f).unwrap_or_default()
}

/// An RFC 3339 / ISO 8601 time as STS, helpers, the original and the AWS CLI versions
/// write it: `…Z`, `…+00:00` or another offset, fractions, or the old `…UTC` suffix;
/// in UTC. None for what is not a time, or one [`zulu`] could not write back (its UTC
/// year outside 0000–9999).
pub(crate) fn parse(s: &str) -> Option<OffsetDateTime> {
    let s = s.trim();
    let fixed = match s.strip_suffix("UTC") {
        Some(rest) => format!("{rest}Z"),
        None => s.to_string(),
    };
    OffsetDateTime::parse(&fixed, &Rfc3339)
        .ok()?
        .checked_to_offset(UtcOffset::UTC)
        .filter(|t| (0..=9999).contains(&t.year()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn both_shapes_in_utc_to_the_second() {
        let t = datetime!(2026-11-24 09:12:14.75 +02:00);
        assert_eq!(zulu(t), "2026-11-24T07:12:14Z");
        assert_eq!(with_offset(t), "2026-11-24T07:12:14+00:00");
    }

    #[test]
    fn what_is_written_reads_back() {
        let t = datetime!(2026-11-24 07:12:14 UTC);
        assert_eq!(parse(&zulu(t)), Some(t));
        assert_eq!(parse(&with_offset(t)), Some(t));
        for s in [
            "2026-11-24T07:12:14UTC",
            "2026-11-24T08:12:14+01:00",
            "2026-11-24T07:12:14.000Z",
        ] {
            assert_eq!(
                parse(s).map(zulu).as_deref(),
                Some("2026-11-24T07:12:14Z"),
                "{s}"
            );
        }
        assert!(parse("tomorrow").is_none());
        assert!(parse("9999-12-31T23:59:59-01:00").is_none());
        assert!(parse("0000-01-01T00:00:00+01:00").is_none());
    }
}
