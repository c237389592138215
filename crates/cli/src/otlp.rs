//! The optional OTLP trace exporter (cargo feature `otlp`, off by default): every span (the
//! `http` span of each request, the `store` span of each store call) goes to an OpenTelemetry
//! collector over OTLP/HTTP with protobuf bodies.
//!
//! Configured by the standard variables, read by the exporter itself:
//! `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`), `…_HEADERS`,
//! `…_TIMEOUT`, and `OTEL_SERVICE_NAME` (default `buzzer`). Without an endpoint variable
//! nothing is exported, so a build with the feature behaves like one without until it is
//! pointed at a collector. Plain `http://` only: TLS belongs to the local collector or agent.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::{Resource, trace::SdkTracerProvider};
use tracing::Subscriber;
use tracing_subscriber::{Layer, registry::LookupSpan};

const ENDPOINT_VARS: [&str; 2] = [
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
];

/// The running exporter; shut it down to flush the last batch.
#[derive(Debug)]
pub(crate) struct Exporter {
    provider: SdkTracerProvider,
}

impl Exporter {
    /// The tracing layer and its exporter, or `None` when no endpoint is configured.
    pub(crate) fn from_env<S>() -> anyhow::Result<Option<(impl Layer<S>, Exporter)>>
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        if !ENDPOINT_VARS.iter().any(|v| std::env::var_os(v).is_some()) {
            return Ok(None);
        }
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .build()?;
        let mut resource = Resource::builder();
        if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
            resource = resource.with_service_name("buzzer");
        }
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(resource.build())
            .build();
        let layer = tracing_opentelemetry::layer().with_tracer(provider.tracer("buzzer"));
        Ok(Some((layer, Exporter { provider })))
    }

    pub(crate) fn shutdown(self) {
        if let Err(e) = self.provider.shutdown() {
            eprintln!("warning: could not flush traces to the OTLP collector: {e}");
        }
    }
}
