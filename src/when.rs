//! Points in time as a person types them on the command line, in the config or in the
//! admin page's filters: an RFC 3339 timestamp (`2026-11-01T09:30:00Z`) or a plain date
//! (`2026-11-01`, UTC). One parser for every place a time is taken, so `depfw log export
//! --since 2026-11-01` works wherever the README or the admin page suggest a date.

use chrono::{DateTime, Duration, NaiveDate, Utc};

/// What a plain date stands for: its first instant (`--since`, an expiry) or its last
/// (`--until 2026-11-30` includes that whole day).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DateMeans {
    StartOfDay,
    EndOfDay,
}

/// Parses `text` as an RFC 3339 timestamp or a `YYYY-MM-DD` date (UTC).
pub(crate) fn parse_instant(text: &str, date: DateMeans) -> Result<DateTime<Utc>, String> {
    let text = text.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc));
    }
    let day = NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
        .ok_or_else(|| {
            format!(
                "`{text}` is not a date (2026-01-31) or an RFC 3339 time (2026-01-31T09:30:00Z)"
            )
        })?;
    Ok(match date {
        DateMeans::StartOfDay => day,
        DateMeans::EndOfDay => day + Duration::days(1) - Duration::nanoseconds(1),
    })
}

/// The start of a time range (`--since`), or an expiry: a date is its first instant.
pub(crate) fn parse_since(text: &str) -> Result<DateTime<Utc>, String> {
    parse_instant(text, DateMeans::StartOfDay)
}

/// The end of a time range (`--until`): a date is its last instant.
pub(crate) fn parse_until(text: &str) -> Result<DateTime<Utc>, String> {
    parse_instant(text, DateMeans::EndOfDay)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn dates_and_timestamps() {
        let day = Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap();
        assert_eq!(parse_since("2026-11-01"), Ok(day));
        assert_eq!(parse_since(" 2026-11-01 "), Ok(day));
        assert_eq!(
            parse_until("2026-11-01"),
            Ok(day + Duration::days(1) - Duration::nanoseconds(1))
        );
        assert_eq!(parse_since("2026-11-01T02:00:00+02:00"), Ok(day));
        assert_eq!(parse_until("2026-11-01T00:00:00Z"), Ok(day));
        for bad in [
            "",
            "yesterday",
            "2026-13-01",
            "2026-11-01T25:00:00Z",
            "01/11/2026",
        ] {
            let err = parse_since(bad).unwrap_err();
            assert!(err.contains("is not a date"), "{bad}: {err}");
        }
    }
}
