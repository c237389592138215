//! Input rules, checked before anything reaches a store so a bad request changes nothing.

use crate::{
    BackoffSpec, EnqueueRequest, FetchRequest, HeartbeatRequest, TraceParent, validate_name,
};

/// A request field that breaks a rule; the server renders it as a 422 problem naming `field`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct Invalid {
    pub field: String,
    pub message: String,
}

impl Invalid {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Invalid {
            field: field.into(),
            message: message.into(),
        }
    }

    /// The same problem one level down, e.g. `priority` → `jobs[3].priority`.
    pub fn within(self, prefix: &str) -> Self {
        Invalid {
            field: format!("{prefix}.{}", self.field),
            message: self.message,
        }
    }
}

/// The bounds every request is held to.
#[derive(Debug, Clone, Copy)]
pub struct Limits;

impl Limits {
    pub const PRIORITY: std::ops::RangeInclusive<i32> = -100..=100;
    pub const MAX_ATTEMPTS: std::ops::RangeInclusive<i32> = 1..=1_000;
    pub const KEY_MAX_LEN: usize = 255;
    pub const TAG_MAX_LEN: usize = 128;
    pub const TAGS_MAX: usize = 32;
    pub const WORKER_ID_MAX_LEN: usize = 255;
    pub const MAX_JOBS_PER_FETCH: u32 = 10_000;
    pub const MAX_JOBS_PER_BATCH: usize = 100_000;
    pub const LEASE_MS: std::ops::RangeInclusive<u64> = 10..=86_400_000;
    pub const MAX_WAIT_MS: u64 = 300_000;
    /// Delays and timeouts beyond a century are certainly mistakes.
    pub const MAX_DELAY_MS: u64 = 100 * 365 * 86_400_000;
}

fn check_key(field: &str, key: &Option<String>) -> Result<(), Invalid> {
    if let Some(k) = key
        && (k.is_empty() || k.len() > Limits::KEY_MAX_LEN)
    {
        return Err(Invalid::new(
            field,
            format!("must be 1 to {} bytes long", Limits::KEY_MAX_LEN),
        ));
    }
    Ok(())
}

impl BackoffSpec {
    pub fn validate(&self) -> Result<(), Invalid> {
        if self.initial_ms == Some(0) {
            return Err(Invalid::new("backoff.initial_ms", "must be at least 1"));
        }
        if let Some(f) = self.factor
            && !(f.is_finite() && (1.0..=100.0).contains(&f))
        {
            return Err(Invalid::new("backoff.factor", "must be between 1 and 100"));
        }
        if let (Some(i), Some(m)) = (self.initial_ms, self.max_ms)
            && m < i
        {
            return Err(Invalid::new(
                "backoff.max_ms",
                "must be at least backoff.initial_ms",
            ));
        }
        Ok(())
    }
}

impl EnqueueRequest {
    pub fn validate(&self) -> Result<(), Invalid> {
        if let Some(p) = self.priority
            && !Limits::PRIORITY.contains(&p)
        {
            return Err(Invalid::new("priority", "must be between -100 and 100"));
        }
        if let Some(m) = self.max_attempts
            && !Limits::MAX_ATTEMPTS.contains(&m)
        {
            return Err(Invalid::new("max_attempts", "must be between 1 and 1000"));
        }
        if self.run_at.is_some() && self.delay_ms.is_some() {
            return Err(Invalid::new(
                "delay_ms",
                "give either run_at or delay_ms, not both",
            ));
        }
        if self.delay_ms.is_some_and(|d| d > Limits::MAX_DELAY_MS) {
            return Err(Invalid::new("delay_ms", "must be at most 100 years"));
        }
        if let Some(t) = self.timeout_ms
            && (t == 0 || t > Limits::MAX_DELAY_MS)
        {
            return Err(Invalid::new("timeout_ms", "must be at least 1"));
        }
        if let Some(b) = &self.backoff {
            b.validate()?;
        }
        check_key("idempotency_key", &self.idempotency_key)?;
        check_key("ordering_key", &self.ordering_key)?;
        if let Some(tags) = &self.tags {
            if tags.len() > Limits::TAGS_MAX {
                return Err(Invalid::new(
                    "tags",
                    format!("at most {} tags", Limits::TAGS_MAX),
                ));
            }
            for (i, t) in tags.iter().enumerate() {
                if t.is_empty() || t.len() > Limits::TAG_MAX_LEN {
                    return Err(Invalid::new(
                        format!("tags[{i}]"),
                        format!("must be 1 to {} bytes long", Limits::TAG_MAX_LEN),
                    ));
                }
            }
        }
        if let Some(tp) = &self.traceparent {
            tp.parse::<TraceParent>()
                .map_err(|e| Invalid::new("traceparent", e.to_string()))?;
        }
        Ok(())
    }
}

impl FetchRequest {
    pub fn validate(&self) -> Result<(), Invalid> {
        if self.queues.is_empty() {
            return Err(Invalid::new("queues", "name at least one queue"));
        }
        for (i, q) in self.queues.iter().enumerate() {
            validate_name(q).map_err(|m| Invalid::new(format!("queues[{i}]"), m))?;
        }
        if self.worker_id.is_empty() || self.worker_id.len() > Limits::WORKER_ID_MAX_LEN {
            return Err(Invalid::new(
                "worker_id",
                format!("must be 1 to {} bytes long", Limits::WORKER_ID_MAX_LEN),
            ));
        }
        if let Some(m) = self.max_jobs
            && !(1..=Limits::MAX_JOBS_PER_FETCH).contains(&m)
        {
            return Err(Invalid::new(
                "max_jobs",
                format!("must be between 1 and {}", Limits::MAX_JOBS_PER_FETCH),
            ));
        }
        check_lease("lease_ms", self.lease_ms)?;
        if self.wait_ms.is_some_and(|w| w > Limits::MAX_WAIT_MS) {
            return Err(Invalid::new(
                "wait_ms",
                format!("must be at most {}", Limits::MAX_WAIT_MS),
            ));
        }
        Ok(())
    }
}

impl HeartbeatRequest {
    pub fn validate(&self) -> Result<(), Invalid> {
        check_lease("lease_ms", self.lease_ms)
    }
}

fn check_lease(field: &str, lease: Option<u64>) -> Result<(), Invalid> {
    if let Some(l) = lease
        && !Limits::LEASE_MS.contains(&l)
    {
        return Err(Invalid::new(
            field,
            format!(
                "must be between {} and {}",
                Limits::LEASE_MS.start(),
                Limits::LEASE_MS.end()
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::value::RawValue;

    fn req() -> EnqueueRequest {
        EnqueueRequest::new(RawValue::from_string("{}".into()).unwrap())
    }

    #[test]
    fn enqueue_rules_name_the_field() {
        let mut r = req();
        r.priority = Some(101);
        assert_eq!(r.validate().unwrap_err().field, "priority");
        let mut r = req();
        r.delay_ms = Some(1);
        r.run_at = Some(jiff::Timestamp::UNIX_EPOCH);
        assert_eq!(r.validate().unwrap_err().field, "delay_ms");
        let mut r = req();
        r.tags = Some(vec!["ok".into(), String::new()]);
        assert_eq!(r.validate().unwrap_err().field, "tags[1]");
        let mut r = req();
        r.backoff = Some(BackoffSpec {
            factor: Some(0.5),
            ..Default::default()
        });
        assert_eq!(r.validate().unwrap_err().field, "backoff.factor");
        assert!(req().validate().is_ok());
    }
}
