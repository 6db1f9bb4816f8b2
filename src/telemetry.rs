//! Logging with tracing: human-readable or JSON lines, every line inside a request carries the
//! request id through its span. Secrets never reach a log field: configuration types redact them.
//! With `log.otlp_endpoint` (and the `otlp` feature), spans are also exported over OTLP/HTTP.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer;
use tracing_subscriber::fmt::format::FmtSpan;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::{LogConfig, LogFormat};

/// Installs the global subscriber once; later calls (tests, demo inside tests) are no-ops.
pub fn init(config: &LogConfig) {
    let filter = EnvFilter::try_new(&config.level).unwrap_or_else(|_| EnvFilter::new("info"));
    let fmt_layer = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_span_events(FmtSpan::NONE)
        .with_target(false);
    let fmt_layer = match config.format {
        LogFormat::Human => fmt_layer.boxed(),
        LogFormat::Json => fmt_layer
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .boxed(),
    };
    let result = tracing_subscriber::registry()
        .with(filter)
        .with(fmt_layer)
        .with(otlp::layer(config))
        .try_init();
    // An already-installed subscriber is fine: the first one wins.
    drop(result);
}

/// Sends the spans still buffered (call before the process exits).
pub fn shutdown() {
    otlp::shutdown();
}

#[cfg(feature = "otlp")]
mod otlp {
    use std::sync::OnceLock;

    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
    use opentelemetry_sdk::trace::SdkTracerProvider;
    use tracing_subscriber::Layer;
    use tracing_subscriber::registry::LookupSpan;

    use crate::config::LogConfig;

    static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();

    pub(super) fn layer<S>(config: &LogConfig) -> Option<Box<dyn Layer<S> + Send + Sync>>
    where
        S: tracing::Subscriber + for<'a> LookupSpan<'a> + Send + Sync,
    {
        let endpoint = config.otlp_endpoint.as_ref()?;
        let exporter = match opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_endpoint(endpoint.clone())
            .with_headers(std::collections::HashMap::new())
            .build()
        {
            Ok(exporter) => exporter,
            Err(error) => {
                eprintln!("warning: OTLP exporter not started: {error}");
                return None;
            }
        };
        let resource = opentelemetry_sdk::Resource::builder()
            .with_service_name(config.otlp_service_name.clone())
            .build();
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(resource)
            .build();
        let tracer = provider.tracer("c4c-scim-bridge");
        if PROVIDER.set(provider).is_err() {
            // A subscriber (and provider) is already installed: keep the first.
            return None;
        }
        Some(tracing_opentelemetry::layer().with_tracer(tracer).boxed())
    }

    pub(super) fn shutdown() {
        if let Some(provider) = PROVIDER.get()
            && let Err(error) = provider.shutdown()
        {
            eprintln!("warning: flushing OTLP traces failed: {error}");
        }
    }
}

#[cfg(not(feature = "otlp"))]
mod otlp {
    use tracing_subscriber::Layer;

    use crate::config::LogConfig;

    // Config validation refuses `otlp_endpoint` in such a build, so there is nothing to export.
    pub(super) fn layer<S>(_config: &LogConfig) -> Option<Box<dyn Layer<S> + Send + Sync>>
    where
        S: tracing::Subscriber,
    {
        None
    }

    pub(super) fn shutdown() {}
}
