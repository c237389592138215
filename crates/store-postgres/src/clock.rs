//! Time is the database's clock: `now()`, the start of the current transaction, so one
//! statement (and one transaction) sees one instant on every node.

use jiff::Timestamp;

/// The store's clock in SQL: the transaction's `now()` truncated to whole milliseconds, so
/// every stored time compares and serialises exactly like the SQLite store's integer ms (and
/// `scheduled_at - created_at` is exactly the `delay_ms` asked for).
macro_rules! now {
    () => {
        "date_trunc('milliseconds', now())"
    };
}
pub(crate) use now;

/// `now` as the RFC 3339 text jiff writes for a whole-millisecond UTC time, for the `at` of an
/// error entry built in SQL.
macro_rules! now_rfc3339 {
    () => {
        concat!(
            "to_char(",
            crate::clock::now!(),
            " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"
        )
    };
}
pub(crate) use now_rfc3339;

/// Durations beyond this are clamped: 200 years is "never" for a job queue, stays inside
/// timestamptz's range, and keeps `ms * interval '1 ms'` exact (below 2^53 microseconds).
const MAX_MS: u64 = 200 * 365 * 86_400_000;

/// A duration in milliseconds as SQL takes it (`$n::int8 * interval '1 millisecond'`).
pub(crate) fn ms(v: u64) -> i64 {
    // Clamped below i64::MAX, so the conversion cannot fail.
    i64::try_from(v.min(MAX_MS)).unwrap_or(i64::MAX)
}

/// The earliest instant stored: jiff reaches back to year -9999, timestamptz only to 4713 BC.
/// A job due that long ago is simply due now.
const EARLIEST_S: i64 = -210_000_000_000;

/// A caller's instant at millisecond precision, like every time the store writes itself, and
/// inside timestamptz's range.
pub(crate) fn whole_ms(at: Timestamp) -> Timestamp {
    let earliest = Timestamp::from_second(EARLIEST_S).unwrap_or(Timestamp::UNIX_EPOCH);
    Timestamp::from_millisecond(at.as_millisecond())
        .unwrap_or(at)
        .max(earliest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_clamp_and_instants_truncate() {
        assert_eq!(ms(1_500), 1_500);
        assert_eq!(ms(u64::MAX), MAX_MS as i64);
        let at: Timestamp = "2025-01-02T03:04:05.678912Z".parse().unwrap();
        assert_eq!(whole_ms(at).to_string(), "2025-01-02T03:04:05.678Z");
        assert_eq!(whole_ms(Timestamp::MIN).as_second(), EARLIEST_S);
    }
}
