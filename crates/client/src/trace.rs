//! Continuing a producer's trace in the worker. A job enqueued with a W3C `traceparent` comes
//! back with it on fetch; the worker runs the handler inside a `job` span that records the
//! trace id and its parent, and while the handler runs, jobs it enqueues carry the trace
//! onward (the same trace id, this span as their parent) unless they set their own.
//!
//! With the `otlp` feature the span is also made a child of the remote context through
//! `tracing-opentelemetry`, so an OpenTelemetry layer exports it inside the producer's trace.

use buzzer_types::{JobId, TraceParent};
use tracing::{Span, field::Empty};

tokio::task_local! {
    /// The trace context of the job whose handler runs on this task.
    static CURRENT: Option<TraceParent>;
}

/// One handled job's span and the context it hands on.
pub(crate) struct JobTrace {
    pub span: Span,
    /// The job's trace with this span as the parent: what goes onward.
    pub onward: Option<TraceParent>,
}

/// The span for one attempt of a job; `traceparent` is the job's stored context, if any. A
/// value that does not parse (it was validated on enqueue, so only a foreign producer writing
/// to the database directly could store one) starts no trace.
pub(crate) fn job_span(
    id: JobId,
    queue: &str,
    attempt: i32,
    traceparent: Option<&str>,
) -> JobTrace {
    let span = tracing::info_span!(
        "job",
        job.id = %id,
        queue,
        attempt,
        trace_id = Empty,
        parent_span_id = Empty,
        span_id = Empty,
    );
    let Some(parent) = traceparent.and_then(|t| t.parse::<TraceParent>().ok()) else {
        return JobTrace { span, onward: None };
    };
    let onward = parent.child(rand::random());
    span.record("trace_id", parent.trace_id());
    span.record("parent_span_id", parent.parent_id());
    span.record("span_id", onward.parent_id());
    #[cfg(feature = "otlp")]
    otel::link(&span, &parent);
    JobTrace {
        span,
        onward: Some(onward),
    }
}

/// Runs `fut` (a handler) with `onward` as the context its enqueues inherit.
pub(crate) async fn with_context<F: std::future::Future>(
    onward: Option<TraceParent>,
    fut: F,
) -> F::Output {
    CURRENT.scope(onward, fut).await
}

/// The context of the job whose handler is running on this task, as a `traceparent` value.
pub(crate) fn current() -> Option<String> {
    CURRENT
        .try_with(|c| c.as_ref().map(ToString::to_string))
        .ok()
        .flatten()
}

#[cfg(feature = "otlp")]
mod otel {
    use buzzer_types::TraceParent;
    use opentelemetry::{
        Context,
        trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState},
    };
    use tracing_opentelemetry::OpenTelemetrySpanExt;

    /// Makes `span` a child of the producer's remote span. Without an OpenTelemetry layer
    /// installed there is nothing to link, which is fine: the ids are on the span's fields.
    pub(super) fn link(span: &tracing::Span, parent: &TraceParent) {
        let (Ok(trace_id), Ok(span_id)) = (
            TraceId::from_hex(parent.trace_id()),
            SpanId::from_hex(parent.parent_id()),
        ) else {
            return;
        };
        let remote = SpanContext::new(
            trace_id,
            span_id,
            TraceFlags::new(parent.flags()),
            true,
            TraceState::default(),
        );
        let _ = span.set_parent(Context::new().with_remote_span_context(remote));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TP: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[tokio::test]
    async fn a_traced_job_hands_its_trace_onward_only_inside_the_handler() {
        let trace = job_span(JobId(7), "q", 1, Some(TP));
        let onward = trace.onward.clone().unwrap();
        assert_eq!(onward.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_ne!(onward.parent_id(), "00f067aa0ba902b7", "a span of its own");
        let seen = with_context(trace.onward, async { current() }).await;
        assert_eq!(seen, Some(onward.to_string()));
        assert_eq!(current(), None, "outside a handler there is none");
    }

    #[tokio::test]
    async fn an_untraced_or_unreadable_context_starts_nothing() {
        assert!(job_span(JobId(1), "q", 1, None).onward.is_none());
        assert!(job_span(JobId(1), "q", 1, Some("garbage")).onward.is_none());
        let seen = with_context(None, async { current() }).await;
        assert_eq!(seen, None);
    }
}
