//! What a queue's recent fetches and jobs say about how far ahead it may lease.
//!
//! A fetch takes a round trip (a commit and a sync on the store's side), and a job leased by it
//! can run only once it is back. With quick jobs and a fetch sized to the free slots, the slots
//! stood empty for most of each round trip and fetches came back half full: at 256 slots a
//! worker draining no-op jobs sent three times the fetches (and the store ran three times the
//! commits) that it did at 1,024. So under a backlog a fetch also leases the jobs that the
//! running ones will have made room for by the time it is back — the slots free up at
//! `slots ÷ job time`, for one round trip — and those wait locally for a slot. The wait is
//! planned at about one round trip and never longer than [`MAX_HORIZON`]; a waiting job's
//! heartbeats run all the same, so a wait longer than planned (slow jobs after quick ones)
//! does not cost it its lease. Without a backlog, or before any job of the queue has
//! finished, nothing is leased ahead.

use std::{
    sync::atomic::{AtomicBool, AtomicU64, Ordering},
    time::Duration,
};

/// How many jobs beyond its slots a queue may hold, per slot.
///
/// Seven, not three: draining no-op jobs at 256 slots, seven per slot ran W1 over HTTP at
/// 71,500–74,600 jobs/s against 61,200–71,200 with three (4 alternating pairs), in-process
/// 7% faster; fifteen measured the same as seven.
pub(super) const AHEAD_PER_SLOT: usize = 7;

/// The longest a job leased ahead is planned to wait for its slot, however slow the fetches.
pub(super) const MAX_HORIZON: Duration = Duration::from_millis(50);

/// Shared by a queue's fetch loop, its fetches in flight and its running jobs.
#[derive(Debug, Default)]
pub(super) struct Pace {
    /// The last fetch came back full: more jobs are likely waiting.
    backlog: AtomicBool,
    round_trip_us: AtomicU64,
    /// A moving average of how long a handler runs, in nanoseconds; 0 until one has finished.
    job_ns: AtomicU64,
}

impl Pace {
    pub(super) fn backlog(&self) -> bool {
        self.backlog.load(Ordering::Relaxed)
    }

    pub(super) fn round_trip(&self) -> Duration {
        Duration::from_micros(self.round_trip_us.load(Ordering::Relaxed))
    }

    pub(super) fn record_fetch(&self, full: bool, round_trip: Duration) {
        self.backlog.store(full, Ordering::Relaxed);
        let us = u64::try_from(round_trip.as_micros()).unwrap_or(u64::MAX);
        self.round_trip_us.store(us, Ordering::Relaxed);
    }

    /// Adds one handler's run time to the average (weight 1/8). Racing updates may drop a
    /// sample; an average is all that is asked of it.
    pub(super) fn record_job(&self, ran: Duration) {
        let sample = u64::try_from(ran.as_nanos()).unwrap_or(u64::MAX).max(1);
        let old = self.job_ns.load(Ordering::Relaxed);
        let new = if old == 0 {
            sample
        } else {
            old - old / 8 + sample / 8
        };
        self.job_ns.store(new.max(1), Ordering::Relaxed);
    }

    /// How many jobs beyond `slots` the next fetch may lease.
    pub(super) fn ahead(&self, slots: usize) -> usize {
        if !self.backlog() {
            return 0;
        }
        read_ahead(
            slots,
            self.round_trip(),
            Duration::from_nanos(self.job_ns.load(Ordering::Relaxed)),
        )
    }
}

/// The jobs `slots` running jobs of `job_time` each make room for during one `round_trip`
/// (at most [`MAX_HORIZON`]), capped at [`AHEAD_PER_SLOT`] per slot. An unknown job time
/// (zero) leases nothing ahead.
fn read_ahead(slots: usize, round_trip: Duration, job_time: Duration) -> usize {
    let cap = slots.saturating_mul(AHEAD_PER_SLOT);
    if job_time.is_zero() {
        return 0;
    }
    let horizon = round_trip.min(MAX_HORIZON).as_nanos();
    let freed = (slots as u128).saturating_mul(horizon) / job_time.as_nanos();
    usize::try_from(freed).unwrap_or(usize::MAX).min(cap)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn quick_jobs_lease_up_to_the_cap() {
        assert_eq!(read_ahead(256, 3 * MS, Duration::from_micros(5)), 1792);
    }

    #[test]
    fn slow_jobs_lease_what_frees_up_in_one_round_trip() {
        // 100 slots of 20 ms jobs free 5 slots a millisecond: 20 in a 4 ms round trip.
        assert_eq!(read_ahead(100, 4 * MS, 20 * MS), 20);
        // Jobs longer than `slots` round trips: nothing ahead.
        assert_eq!(read_ahead(10, MS, Duration::from_secs(1)), 0);
    }

    #[test]
    fn a_slow_round_trip_does_not_plan_a_long_wait() {
        // 10 ms jobs: a 2 s round trip plans for 50 ms, five jobs a slot; 5 ms jobs, ten a
        // slot, capped at seven.
        assert_eq!(read_ahead(10, 2000 * MS, 10 * MS), 50);
        assert_eq!(read_ahead(10, 2000 * MS, 5 * MS), 70);
    }

    #[test]
    fn nothing_ahead_without_a_backlog_or_before_a_job_has_finished() {
        let pace = Pace::default();
        pace.record_fetch(true, 3 * MS);
        assert_eq!(pace.ahead(256), 0, "no job time yet");
        pace.record_job(Duration::from_micros(5));
        assert_eq!(pace.ahead(256), 1792);
        pace.record_fetch(false, 3 * MS);
        assert_eq!(pace.ahead(256), 0, "the last fetch was not full");
    }

    #[test]
    fn the_job_time_moves_an_eighth_of_the_way_to_each_sample() {
        let pace = Pace::default();
        pace.record_job(8 * MS);
        pace.record_job(16 * MS);
        assert_eq!(pace.job_ns.load(Ordering::Relaxed), 9_000_000);
        pace.record_job(Duration::ZERO);
        assert!(
            pace.job_ns.load(Ordering::Relaxed) > 0,
            "never back to unknown"
        );
    }
}
