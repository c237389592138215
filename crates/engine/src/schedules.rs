//! Cron schedules: validation, the API view with next fire times, and firing one tick.
//!
//! A schedule fires at most one job per tick across every node: the job of tick `T` carries
//! the idempotency key `schedule:<name>:<T>`, and `last_tick` moves to `T` by a
//! compare-and-set only after the job exists. Two nodes that both think they lead make one
//! job and one claim; a leader that dies between the enqueue and the claim leaves a job the
//! next leader's enqueue finds instead of duplicating. After downtime only the latest missed
//! tick fires: a schedule catches up once, it does not replay every tick it missed.

use buzzer_store::{ScheduleClaimTick, SchedulePut, Upserted};
use buzzer_types::{Invalid, Schedule, ScheduleInfo, ScheduleRequest, validate_name};
use croner::{
    Cron,
    parser::{CronParser, Seconds, Year},
};
use jiff::{Timestamp, Zoned, tz::TimeZone};

use crate::{Engine, EngineError};

/// Fire times `GET /v1/schedules/{name}` shows.
const NEXT_FIRE_TIMES: usize = 5;

/// A parsed schedule: its cron expression in its zone.
#[derive(Debug, Clone)]
pub(crate) struct Clock {
    cron: Cron,
    zone: TimeZone,
}

impl Clock {
    /// 5 fields (minute first) or 6 (seconds first), in an IANA zone (`UTC` when absent).
    pub(crate) fn parse(cron: &str, timezone: &str) -> Result<Clock, Invalid> {
        let fields = cron.split_whitespace().count();
        if !(5..=6).contains(&fields) {
            return Err(Invalid::new(
                "cron",
                format!("must have 5 fields (minute first) or 6 (second first), not {fields}"),
            ));
        }
        let cron = CronParser::builder()
            .seconds(Seconds::Optional)
            .year(Year::Disallowed)
            .build()
            .parse(cron)
            .map_err(|e| Invalid::new("cron", e.to_string()))?;
        let zone = TimeZone::get(timezone)
            .map_err(|e| Invalid::new("timezone", format!("not a known IANA time zone: {e}")))?;
        Ok(Clock { cron, zone })
    }

    /// The latest tick at or before `now`.
    fn latest(&self, now: Timestamp) -> Option<Timestamp> {
        let now = now.to_zoned(self.zone.clone());
        self.cron
            .find_previous_occurrence(&now, true)
            .ok()
            .map(|z| z.timestamp())
    }

    /// The next `n` ticks after `now`.
    fn next(&self, now: Timestamp, n: usize) -> Vec<Timestamp> {
        let now: Zoned = now.to_zoned(self.zone.clone());
        self.cron
            .clone()
            .iter_after(now)
            .take(n)
            .map(|z| z.timestamp())
            .collect()
    }
}

fn check_name(name: &str) -> Result<(), EngineError> {
    validate_name(name).map_err(|m| Invalid::new("name", m).into())
}

fn info(s: &Schedule, now: Timestamp) -> ScheduleInfo {
    let next = Clock::parse(&s.cron, &s.timezone)
        .map(|c| c.next(now, NEXT_FIRE_TIMES))
        .unwrap_or_default();
    ScheduleInfo::of(s, next)
}

impl Engine {
    /// Creates or replaces a schedule. A replaced schedule keeps its last tick, so changing
    /// it never fires a tick twice.
    pub async fn schedule_put(
        &self,
        name: &str,
        req: ScheduleRequest,
    ) -> Result<Upserted<ScheduleInfo>, EngineError> {
        check_name(name)?;
        let timezone = req.timezone.clone().unwrap_or_else(|| "UTC".to_owned());
        Clock::parse(&req.cron, &timezone)?;
        req.validate()?;
        let put = SchedulePut {
            name: name.to_owned(),
            cron: req.cron.trim().to_owned(),
            timezone,
            queue: req.queue.clone(),
            options: req.options(),
            payload: req.payload,
        };
        let upserted = self.inner.store.schedule_put(put).await?;
        self.inner.cron_nudge.notify_one();
        let now = self.inner.store.now().await?;
        Ok(Upserted {
            value: info(&upserted.value, now),
            created: upserted.created,
        })
    }

    pub async fn schedule(&self, name: &str) -> Result<ScheduleInfo, EngineError> {
        check_name(name)?;
        let s = self
            .inner
            .store
            .schedule_get(name)
            .await?
            .ok_or_else(|| EngineError::NotFound(format!("schedule {name}")))?;
        Ok(info(&s, self.inner.store.now().await?))
    }

    /// Every schedule by name, with its next fire times.
    pub async fn schedules(&self) -> Result<Vec<ScheduleInfo>, EngineError> {
        let all = self.inner.store.schedule_list().await?;
        let now = self.inner.store.now().await?;
        Ok(all.iter().map(|s| info(s, now)).collect())
    }

    pub async fn schedule_delete(&self, name: &str) -> Result<(), EngineError> {
        check_name(name)?;
        if self.inner.store.schedule_delete(name).await? {
            Ok(())
        } else {
            Err(EngineError::NotFound(format!("schedule {name}")))
        }
    }

    /// Fires every schedule whose latest tick has not fired yet (one job each, however many
    /// ticks were missed) and returns how many fired and when the next tick is due. The cron
    /// service calls this on the leader; tests call it directly.
    pub async fn cron_fire_due(&self) -> Result<(usize, Option<Timestamp>), EngineError> {
        let store = &self.inner.store;
        let now = store.now().await?;
        let mut fired = 0;
        let mut next_due: Option<Timestamp> = None;
        for s in store.schedule_list().await? {
            let clock = match Clock::parse(&s.cron, &s.timezone) {
                Ok(c) => c,
                Err(e) => {
                    // Stored schedules were checked on the way in; a zone database that lost
                    // a zone must not stop the others.
                    tracing::warn!(schedule = %s.name, error = %e, "schedule cannot be evaluated");
                    continue;
                }
            };
            let since = s.last_tick.unwrap_or(s.created_at);
            if let Some(tick) = clock.latest(now).filter(|t| *t > since) {
                match self.fire(&s, tick).await {
                    Ok(true) => fired += 1,
                    Ok(false) => {}
                    // The store is away: every schedule would fail the same way.
                    Err(e @ (EngineError::Unavailable(_) | EngineError::Internal(_))) => {
                        return Err(e);
                    }
                    // One schedule's job refused (e.g. options a newer rule rejects) must not
                    // hold the others back; its tick stays unclaimed and is tried again.
                    Err(e) => {
                        tracing::warn!(schedule = %s.name, error = %e, "schedule could not fire");
                    }
                }
            }
            if let Some(next) = clock.next(now, 1).first().copied() {
                next_due = Some(next_due.map_or(next, |d| d.min(next)));
            }
        }
        Ok((fired, next_due))
    }

    /// Enqueues the job of `tick` (or finds it, if another node got there first), then claims
    /// the tick. `true` when this call made the claim.
    async fn fire(&self, s: &Schedule, tick: Timestamp) -> Result<bool, EngineError> {
        let mut req = s.options.to_enqueue(s.payload.clone());
        req.idempotency_key = Some(format!("schedule:{}:{tick}", s.name));
        let mut metadata = req.metadata.take().unwrap_or_default();
        metadata.insert("schedule".into(), s.name.clone().into());
        metadata.insert("tick".into(), tick.to_string().into());
        req.metadata = Some(metadata);
        self.enqueue(&s.queue, req).await?;
        let claimed = self
            .inner
            .store
            .schedule_claim_tick(ScheduleClaimTick {
                name: s.name.clone(),
                tick,
            })
            .await?;
        Ok(claimed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_and_six_fields_in_a_zone() {
        let five = Clock::parse("0 9 * * *", "Europe/Amsterdam").unwrap();
        let now: Timestamp = "2026-03-28T12:00:00Z".parse().unwrap();
        // The clocks go forward on 29 March: 9:00 local is 08:00Z before, 07:00Z after.
        let next = five.next(now, 2);
        assert_eq!(next[0].to_string(), "2026-03-29T07:00:00Z");
        assert_eq!(next[1].to_string(), "2026-03-30T07:00:00Z");
        let six = Clock::parse("*/10 * * * * *", "UTC").unwrap();
        assert_eq!(six.latest(now), Some(now));
        let t: Timestamp = "2026-03-28T12:00:07Z".parse().unwrap();
        assert_eq!(six.latest(t), Some(now));
    }

    #[test]
    fn bad_expressions_and_zones_name_the_field() {
        for (cron, tz, field) in [
            ("* * * *", "UTC", "cron"),
            ("* * * * * * *", "UTC", "cron"),
            ("61 * * * *", "UTC", "cron"),
            ("* * * * *", "Mars/Olympus", "timezone"),
        ] {
            assert_eq!(
                Clock::parse(cron, tz).unwrap_err().field,
                field,
                "{cron} {tz}"
            );
        }
    }
}
