use jiff::Timestamp;

/// Stores keep times as integer milliseconds since the Unix epoch.
pub fn ms_to_timestamp(ms: i64) -> Timestamp {
    Timestamp::from_millisecond(ms).unwrap_or(Timestamp::UNIX_EPOCH)
}

pub fn timestamp_to_ms(ts: Timestamp) -> i64 {
    ts.as_millisecond()
}
