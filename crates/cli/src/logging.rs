//! Logs and traces of `buzzer serve`. Logs go to stderr (stdout carries only the "listening"
//! line) as text or as one JSON object per line (`--log-format json`), filtered by `RUST_LOG`
//! (default `info`). Each line carries the spans it happened in: the `http` span of the request
//! and the `store` span of the call, with the job id and queue where known.
//!
//! Built with the `otlp` feature, spans are also exported over OTLP/HTTP when the standard
//! `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set; see
//! `otlp.rs`.

use std::io::IsTerminal;

use clap::ValueEnum;
use tracing_subscriber::{EnvFilter, Layer, layer::SubscriberExt, util::SubscriberInitExt};

/// How log lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// For people: one line per event, coloured on a terminal.
    #[default]
    Text,
    /// For log pipelines: one JSON object per line, with the current span and its parents.
    Json,
}

/// Held while the server runs; [`Telemetry::shutdown`] flushes exported spans.
#[derive(Debug, Default)]
pub(crate) struct Telemetry {
    #[cfg(feature = "otlp")]
    otlp: Option<crate::otlp::Exporter>,
}

impl Telemetry {
    pub(crate) fn shutdown(self) {
        #[cfg(feature = "otlp")]
        if let Some(exporter) = self.otlp {
            exporter.shutdown();
        }
    }
}

/// Installs the global subscriber. Errors if one is installed already.
pub(crate) fn init(format: LogFormat) -> anyhow::Result<Telemetry> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let fmt = match format {
        LogFormat::Text => fmt.with_ansi(std::io::stderr().is_terminal()).boxed(),
        LogFormat::Json => fmt
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .boxed(),
    };
    let registry = tracing_subscriber::registry().with(filter).with(fmt);
    #[cfg(feature = "otlp")]
    {
        let (layer, otlp) = match crate::otlp::Exporter::from_env()? {
            Some((layer, exporter)) => (Some(layer), Some(exporter)),
            None => (None, None),
        };
        registry.with(layer).try_init()?;
        if otlp.is_some() {
            tracing::info!("exporting traces over OTLP");
        }
        Ok(Telemetry { otlp })
    }
    #[cfg(not(feature = "otlp"))]
    {
        registry.try_init()?;
        Ok(Telemetry::default())
    }
}
