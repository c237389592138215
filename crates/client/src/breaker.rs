//! The per-queue circuit breaker of the hybrid call.
//!
//! A queue whose recent calls keep missing their deadline is slow: waiting on it only holds the
//! caller's threads and connections. While the breaker is open, [`Buzzer::call`] still
//! enqueues but answers [`Answer::Later`] at once.
//!
//! The state machine takes the time as an argument, so its tests run on a made-up clock.
//!
//! [`Buzzer::call`]: crate::Buzzer::call
//! [`Answer::Later`]: crate::Answer::Later

use std::{
    collections::{HashMap, VecDeque},
    sync::{Mutex, PoisonError},
    time::{Duration, Instant},
};

/// When the breaker of a queue opens, and for how long.
///
/// ```
/// use std::time::Duration;
/// use buzzer::BreakerConfig;
///
/// let strict = BreakerConfig {
///     window: 50,
///     threshold: 0.2,
///     cooldown: Duration::from_secs(30),
///     ..BreakerConfig::default()
/// };
/// # let _ = strict;
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct BreakerConfig {
    /// How many of a queue's most recent waited calls count (20).
    pub window: usize,
    /// The fewest calls in the window before the breaker may open (5).
    pub min_calls: usize,
    /// The share of calls in the window that missed their deadline at which the breaker opens
    /// (0.5).
    pub threshold: f64,
    /// How long an open breaker answers `Later` without waiting before it lets one call try
    /// again (5 s).
    pub cooldown: Duration,
    /// `false` turns the breaker off: every call waits (true).
    pub enabled: bool,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            window: 20,
            min_calls: 5,
            threshold: 0.5,
            cooldown: Duration::from_secs(5),
            enabled: true,
        }
    }
}

impl BreakerConfig {
    /// A breaker that never opens.
    pub fn disabled() -> Self {
        BreakerConfig {
            enabled: false,
            ..BreakerConfig::default()
        }
    }
}

/// Where a queue's breaker is, as [`Buzzer::breaker_state`](crate::Buzzer::breaker_state)
/// reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    /// Calls wait for their answer.
    Closed,
    /// Too many recent calls missed their deadline: calls answer `Later` at once.
    Open,
    /// The cooldown is over: the next call waits, and its result closes or reopens the breaker.
    HalfOpen,
}

/// What a call may do: wait (holding a ticket to report back with), or answer `Later` at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admit {
    Wait(Ticket),
    Skip,
}

/// Ties a result to the state it was admitted in, so a slow call admitted before the breaker
/// changed cannot move the new state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ticket {
    generation: u64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum State {
    Closed,
    Open {
        until: Instant,
    },
    /// `probing`: a call is out testing the queue; others skip until it reports.
    HalfOpen {
        probing: bool,
    },
}

#[derive(Debug)]
struct Breaker {
    state: State,
    /// `true` for each call in the window that missed its deadline, oldest first.
    window: VecDeque<bool>,
    generation: u64,
}

impl Breaker {
    fn new() -> Self {
        Breaker {
            state: State::Closed,
            window: VecDeque::new(),
            generation: 0,
        }
    }

    fn enter(&mut self, state: State) {
        self.state = state;
        self.window.clear();
        self.generation += 1;
    }

    fn ticket(&self) -> Admit {
        Admit::Wait(Ticket {
            generation: self.generation,
        })
    }

    fn admit(&mut self, now: Instant) -> Admit {
        match self.state {
            State::Closed => self.ticket(),
            State::Open { until } if now < until => Admit::Skip,
            State::Open { .. } | State::HalfOpen { probing: false } => {
                self.enter(State::HalfOpen { probing: true });
                self.ticket()
            }
            State::HalfOpen { probing: true } => Admit::Skip,
        }
    }

    fn record(&mut self, config: &BreakerConfig, ticket: Ticket, now: Instant, missed: bool) {
        if ticket.generation != self.generation {
            return;
        }
        let open = State::Open {
            until: now + config.cooldown,
        };
        match self.state {
            State::HalfOpen { .. } if missed => self.enter(open),
            State::HalfOpen { .. } => self.enter(State::Closed),
            State::Closed => {
                self.window.push_back(missed);
                while self.window.len() > config.window.max(1) {
                    self.window.pop_front();
                }
                let calls = self.window.len();
                let misses = self.window.iter().filter(|m| **m).count();
                if calls >= config.min_calls && misses as f64 >= config.threshold * calls as f64 {
                    self.enter(open);
                }
            }
            // An Open breaker hands out no tickets of its own generation.
            State::Open { .. } => {}
        }
    }

    /// A probe that ended without a result (an error, or its caller gave up): let the next
    /// call probe instead.
    fn abandon(&mut self, ticket: Ticket) {
        if ticket.generation == self.generation && self.state == (State::HalfOpen { probing: true })
        {
            self.state = State::HalfOpen { probing: false };
        }
    }

    fn state(&self, now: Instant) -> BreakerState {
        match self.state {
            State::Closed => BreakerState::Closed,
            State::Open { until } if now < until => BreakerState::Open,
            State::Open { .. } | State::HalfOpen { .. } => BreakerState::HalfOpen,
        }
    }
}

/// Every queue's breaker, behind one lock held only for a few comparisons.
#[derive(Debug, Default)]
pub(crate) struct Breakers {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    config: BreakerConfig,
    queues: HashMap<String, Breaker>,
}

impl Breakers {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Replaces the configuration; every breaker starts over closed.
    pub(crate) fn configure(&self, config: BreakerConfig) {
        let mut inner = self.lock();
        inner.config = config;
        inner.queues.clear();
    }

    pub(crate) fn admit(&self, queue: &str, now: Instant) -> Admit {
        let mut inner = self.lock();
        if !inner.config.enabled {
            return Admit::Wait(Ticket { generation: 0 });
        }
        if let Some(b) = inner.queues.get_mut(queue) {
            return b.admit(now);
        }
        let breaker = inner
            .queues
            .entry(queue.to_owned())
            .or_insert_with(Breaker::new);
        breaker.admit(now)
    }

    pub(crate) fn record(&self, queue: &str, ticket: Ticket, now: Instant, missed: bool) {
        let mut inner = self.lock();
        let Inner { config, queues } = &mut *inner;
        if let Some(b) = queues.get_mut(queue).filter(|_| config.enabled) {
            b.record(config, ticket, now, missed);
        }
    }

    pub(crate) fn abandon(&self, queue: &str, ticket: Ticket) {
        if let Some(b) = self.lock().queues.get_mut(queue) {
            b.abandon(ticket);
        }
    }

    pub(crate) fn state(&self, queue: &str, now: Instant) -> BreakerState {
        self.lock()
            .queues
            .get(queue)
            .map_or(BreakerState::Closed, |b| b.state(now))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// A made-up clock: tests move it by hand, nothing sleeps.
    struct Clock(Instant);

    impl Clock {
        fn now(&self) -> Instant {
            self.0
        }
        fn advance(&mut self, ms: u64) {
            self.0 += Duration::from_millis(ms);
        }
    }

    fn config() -> BreakerConfig {
        BreakerConfig {
            window: 10,
            min_calls: 4,
            threshold: 0.5,
            cooldown: Duration::from_secs(5),
            enabled: true,
        }
    }

    fn ticket(b: &Breakers, now: Instant) -> Ticket {
        match b.admit("q", now) {
            Admit::Wait(t) => t,
            Admit::Skip => panic!("the call was not let through"),
        }
    }

    /// One call that waits and reports whether it missed its deadline.
    fn call(b: &Breakers, clock: &Clock, missed: bool) {
        let t = ticket(b, clock.now());
        b.record("q", t, clock.now(), missed);
    }

    fn breakers() -> Breakers {
        let b = Breakers::default();
        b.configure(config());
        b
    }

    #[test]
    fn stays_closed_below_min_calls_and_below_the_threshold() {
        let b = breakers();
        let clock = Clock(Instant::now());
        for _ in 0..3 {
            call(&b, &clock, true);
        }
        assert_eq!(
            b.state("q", clock.now()),
            BreakerState::Closed,
            "3 < min_calls"
        );
        let b = breakers();
        // 4 misses in 10 calls: 40% < 50%.
        for i in 0..10 {
            call(&b, &clock, i % 5 >= 3);
        }
        assert_eq!(b.state("q", clock.now()), BreakerState::Closed);
    }

    #[test]
    fn opens_at_the_threshold_then_half_opens_after_the_cooldown() {
        let b = breakers();
        let mut clock = Clock(Instant::now());
        call(&b, &clock, false);
        call(&b, &clock, false);
        call(&b, &clock, true);
        assert_eq!(b.state("q", clock.now()), BreakerState::Closed);
        call(&b, &clock, true); // 2 of 4 missed: 50%
        assert_eq!(b.state("q", clock.now()), BreakerState::Open);
        assert_eq!(b.admit("q", clock.now()), Admit::Skip);
        clock.advance(4_999);
        assert_eq!(b.admit("q", clock.now()), Admit::Skip);
        clock.advance(1);
        assert_eq!(b.state("q", clock.now()), BreakerState::HalfOpen);
        let probe = ticket(&b, clock.now());
        // While the probe is out, other calls do not wait.
        assert_eq!(b.admit("q", clock.now()), Admit::Skip);
        assert_eq!(b.state("q", clock.now()), BreakerState::HalfOpen);
        b.record("q", probe, clock.now(), false);
        assert_eq!(b.state("q", clock.now()), BreakerState::Closed);
        // Closed again with an empty window: one miss does not reopen it.
        call(&b, &clock, true);
        assert_eq!(b.state("q", clock.now()), BreakerState::Closed);
    }

    #[test]
    fn a_probe_that_misses_reopens_for_another_cooldown() {
        let b = breakers();
        let mut clock = Clock(Instant::now());
        for _ in 0..4 {
            call(&b, &clock, true);
        }
        clock.advance(5_000);
        let probe = ticket(&b, clock.now());
        clock.advance(300);
        b.record("q", probe, clock.now(), true);
        assert_eq!(b.state("q", clock.now()), BreakerState::Open);
        clock.advance(4_999);
        assert_eq!(b.admit("q", clock.now()), Admit::Skip);
        clock.advance(1);
        call(&b, &clock, false);
        assert_eq!(b.state("q", clock.now()), BreakerState::Closed);
    }

    #[test]
    fn an_abandoned_probe_lets_the_next_call_probe() {
        let b = breakers();
        let mut clock = Clock(Instant::now());
        for _ in 0..4 {
            call(&b, &clock, true);
        }
        clock.advance(5_000);
        let probe = ticket(&b, clock.now());
        b.abandon("q", probe);
        let next = ticket(&b, clock.now());
        b.record("q", next, clock.now(), false);
        assert_eq!(b.state("q", clock.now()), BreakerState::Closed);
    }

    #[test]
    fn results_from_before_a_change_do_not_move_the_new_state() {
        let b = breakers();
        let mut clock = Clock(Instant::now());
        let slow = ticket(&b, clock.now());
        for _ in 0..4 {
            call(&b, &clock, true);
        }
        clock.advance(5_000);
        let probe = ticket(&b, clock.now());
        // The slow call from the closed days reports a success now: it must not close the
        // breaker in place of the probe.
        b.record("q", slow, clock.now(), false);
        assert_eq!(
            b.admit("q", clock.now()),
            Admit::Skip,
            "the probe is still out"
        );
        b.record("q", probe, clock.now(), true);
        assert_eq!(b.state("q", clock.now()), BreakerState::Open);
    }

    #[test]
    fn the_window_slides() {
        let b = breakers();
        let clock = Clock(Instant::now());
        // Hits drop out of the window of 10 as misses come in.
        for _ in 0..12 {
            call(&b, &clock, false);
        }
        for _ in 0..4 {
            call(&b, &clock, true);
        }
        assert_eq!(b.state("q", clock.now()), BreakerState::Closed, "4 of 10");
        call(&b, &clock, true);
        assert_eq!(b.state("q", clock.now()), BreakerState::Open, "5 of 10");
    }

    #[test]
    fn queues_are_separate_and_disabled_never_opens() {
        let b = breakers();
        let clock = Clock(Instant::now());
        for _ in 0..4 {
            call(&b, &clock, true);
        }
        assert_eq!(b.state("q", clock.now()), BreakerState::Open);
        assert_eq!(b.state("other", clock.now()), BreakerState::Closed);
        assert!(matches!(b.admit("other", clock.now()), Admit::Wait(_)));

        b.configure(BreakerConfig::disabled());
        for _ in 0..50 {
            call(&b, &clock, true);
        }
        assert_eq!(b.state("q", clock.now()), BreakerState::Closed);
    }
}
