use std::sync::atomic::{AtomicI64, Ordering};

/// The store's clock: this process's system clock in milliseconds since the epoch, held from
/// ever going backwards (an NTP step back would otherwise let a lease expire before it began).
#[derive(Debug, Default)]
pub(crate) struct Clock {
    last: AtomicI64,
}

impl Clock {
    pub(crate) fn now_ms(&self) -> i64 {
        let system = jiff::Timestamp::now().as_millisecond();
        let before = self.last.fetch_max(system, Ordering::Relaxed);
        before.max(system)
    }
}

/// A duration in ms as SQLite stores it, saturating, so an absurd duration means "never"
/// instead of wrapping into the past.
pub(crate) fn ms(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// `now + duration`, saturating.
pub(crate) fn after(now: i64, duration_ms: u64) -> i64 {
    now.saturating_add(ms(duration_ms))
}
