//! W3C Trace Context: the `traceparent` a producer may give a job, so the worker that runs it
//! continues the producer's trace (<https://www.w3.org/TR/trace-context/#traceparent-header>).

use std::fmt;

/// A parsed `traceparent`: `{version}-{trace_id}-{parent_id}-{flags}`, lowercase hex.
///
/// ```
/// use buzzer_types::TraceParent;
///
/// let tp: TraceParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".parse().unwrap();
/// assert_eq!(tp.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
/// assert!(tp.sampled());
/// let next = tp.child([1, 2, 3, 4, 5, 6, 7, 8]);
/// assert_eq!(next.to_string(), "00-4bf92f3577b34da6a3ce929d0e0e4736-0102030405060708-01");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceParent {
    trace_id: String,
    parent_id: String,
    flags: u8,
}

/// Why a `traceparent` was refused; the text completes "traceparent …".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadTraceParent(&'static str);

const SHAPE: &str =
    "must be a W3C traceparent: 00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>";

fn lower_hex(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

impl std::str::FromStr for TraceParent {
    type Err = BadTraceParent;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        // Later versions may append fields after a dash; version 00 has exactly four.
        let base = s.get(..55).ok_or(BadTraceParent(SHAPE))?;
        let mut parts = base.split('-');
        let (Some(version), Some(trace_id), Some(parent_id), Some(flags), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(BadTraceParent(SHAPE));
        };
        let sizes_ok =
            version.len() == 2 && trace_id.len() == 32 && parent_id.len() == 16 && flags.len() == 2;
        if !sizes_ok || !lower_hex(version) || !lower_hex(trace_id) || !lower_hex(parent_id) {
            return Err(BadTraceParent(SHAPE));
        }
        if !lower_hex(flags) {
            return Err(BadTraceParent(SHAPE));
        }
        match version {
            "ff" => return Err(BadTraceParent("has the invalid version ff")),
            "00" if s.len() != 55 => {
                return Err(BadTraceParent(
                    "of version 00 must be exactly 55 characters",
                ));
            }
            _ if s.len() > 55 && s.as_bytes()[55] != b'-' => return Err(BadTraceParent(SHAPE)),
            _ => {}
        }
        if trace_id.bytes().all(|b| b == b'0') {
            return Err(BadTraceParent("has an all-zero trace id"));
        }
        if parent_id.bytes().all(|b| b == b'0') {
            return Err(BadTraceParent("has an all-zero parent id"));
        }
        Ok(TraceParent {
            trace_id: trace_id.to_owned(),
            parent_id: parent_id.to_owned(),
            flags: u8::from_str_radix(flags, 16).map_err(|_| BadTraceParent(SHAPE))?,
        })
    }
}

impl TraceParent {
    /// The 32 hex digits every span of the trace shares.
    pub fn trace_id(&self) -> &str {
        &self.trace_id
    }

    /// The 16 hex digits of the span that handed the work on (the caller's span).
    pub fn parent_id(&self) -> &str {
        &self.parent_id
    }

    pub fn flags(&self) -> u8 {
        self.flags
    }

    /// Whether the caller recorded its part of the trace.
    pub fn sampled(&self) -> bool {
        self.flags & 1 == 1
    }

    /// The same trace handed on from a new span: what a worker sends onward.
    pub fn child(&self, span_id: [u8; 8]) -> TraceParent {
        let mut parent_id = String::with_capacity(16);
        for b in span_id {
            parent_id.push_str(&format!("{b:02x}"));
        }
        if parent_id.bytes().all(|b| b == b'0') {
            // An all-zero id is invalid; any fixed non-zero id keeps the trace going.
            parent_id = "0000000000000001".into();
        }
        TraceParent {
            trace_id: self.trace_id.clone(),
            parent_id,
            flags: self.flags,
        }
    }
}

impl fmt::Display for TraceParent {
    /// Always written as version 00, the only version this code understands.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "00-{}-{}-{:02x}",
            self.trace_id, self.parent_id, self.flags
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn accepts_the_spec_example_and_later_versions() {
        let tp: TraceParent = GOOD.parse().unwrap();
        assert_eq!(tp.parent_id(), "00f067aa0ba902b7");
        assert_eq!(tp.to_string(), GOOD);
        let future = "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00-extra";
        let tp: TraceParent = future.parse().unwrap();
        assert!(!tp.sampled());
    }

    #[test]
    fn refuses_what_the_spec_refuses() {
        for bad in [
            "",
            "garbage",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",
            "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",
            "00-4bf92f3577b34da6a3ce929d0e0e473-600f067aa0ba902b7-01",
            "00_4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7_01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g",
        ] {
            assert!(bad.parse::<TraceParent>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_child_keeps_the_trace_and_flags() {
        let tp: TraceParent = GOOD.parse().unwrap();
        let child = tp.child([0xab; 8]);
        assert_eq!(child.trace_id(), tp.trace_id());
        assert_eq!(child.parent_id(), "abababababababab");
        assert_eq!(child.flags(), 1);
        assert_eq!(tp.child([0; 8]).parent_id(), "0000000000000001");
    }
}
