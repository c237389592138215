//! `Retry-After` (RFC 9110 §10.2.3): delay-seconds or an HTTP-date.

use std::time::Duration;

use jiff::{Timestamp, fmt::rfc2822::DateTimeParser};

static HTTP_DATE: DateTimeParser = DateTimeParser::new();

/// The wait a `Retry-After` value asks for, measured from `now`; `None` when it is unreadable.
/// A date in the past asks for no wait.
pub(crate) fn parse(value: &str, now: Timestamp) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = HTTP_DATE.parse_timestamp(value).ok()?;
    let ms = at.as_millisecond().saturating_sub(now.as_millisecond());
    Some(Duration::from_millis(u64::try_from(ms).unwrap_or(0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_and_dates() {
        let now: Timestamp = "2024-03-01T10:00:00Z".parse().unwrap();
        assert_eq!(parse("120", now), Some(Duration::from_secs(120)));
        assert_eq!(parse(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(
            parse("Fri, 01 Mar 2024 10:00:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse("Fri, 01 Mar 2024 09:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse("-5", now), None);
        assert_eq!(parse("soon", now), None);
    }
}
