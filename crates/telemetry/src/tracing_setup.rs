//! Log subscriber and OTLP tracer set-up.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::{
    Resource,
    trace::{Sampler, SdkTracer, SdkTracerProvider},
};
use tracing_subscriber::{EnvFilter, layer::SubscriberExt, util::SubscriberInitExt};

use crate::config::{LogFormat, OtlpProtocol, ParentRoot, Sampling, TelemetryConfig};

/// Errors from building the exporter or installing the subscriber.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("otlp exporter for {endpoint}: cannot be built")]
    Exporter {
        endpoint: String,
        #[source]
        source: opentelemetry_otlp::ExporterBuildError,
    },
    #[error("log filter {filter:?} is invalid")]
    LogFilter {
        filter: String,
        #[source]
        source: tracing_subscriber::filter::ParseError,
    },
    #[error("a global log subscriber is already installed")]
    AlreadyInstalled,
}

/// The tracer of one server. Owned per server (not global) so several servers in one test
/// process export to their own endpoints. Dropping it flushes and shuts the exporter down.
#[derive(Debug)]
pub struct Tracing {
    provider: Option<SdkTracerProvider>,
    tracer: Option<SdkTracer>,
}

impl Tracing {
    /// Builds the exporter described by `config`; with no endpoint, a no-op value.
    /// Must be called inside a tokio runtime when the protocol is gRPC.
    pub fn new(
        config: &TelemetryConfig,
        instrumentation_scope: &'static str,
    ) -> Result<Tracing, Error> {
        let Some(endpoint) = &config.otlp_endpoint else {
            return Ok(Tracing {
                provider: None,
                tracer: None,
            });
        };
        let exporter = match config.otlp_protocol {
            OtlpProtocol::Grpc => opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .with_endpoint(endpoint.clone())
                .build(),
            // The batch processor exports from its own thread with no tokio reactor, hence the
            // blocking HTTP client. reqwest is built without a bundled crypto provider (one TLS
            // provider in the graph, see tooling P1), so install ring's if nobody has.
            OtlpProtocol::HttpProtobuf => {
                let _ = rustls::crypto::ring::default_provider().install_default();
                opentelemetry_otlp::SpanExporter::builder()
                    .with_http()
                    .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
                    .with_endpoint(endpoint.clone())
                    .build()
            }
        }
        .map_err(|source| Error::Exporter {
            endpoint: endpoint.clone(),
            source,
        })?;
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_sampler(sampler(config.sampling))
            .with_resource(
                Resource::builder()
                    .with_service_name(config.service_name.clone())
                    .build(),
            )
            .build();
        let tracer = provider.tracer(instrumentation_scope);
        Ok(Tracing {
            provider: Some(provider),
            tracer: Some(tracer),
        })
    }

    /// A value that never traces.
    pub fn disabled() -> Tracing {
        Tracing {
            provider: None,
            tracer: None,
        }
    }

    /// The tracer, or `None` when tracing is off; callers skip span work entirely then.
    pub fn tracer(&self) -> Option<&SdkTracer> {
        self.tracer.as_ref()
    }

    /// Exports every finished span now.
    pub fn flush(&self) {
        if let Some(provider) = &self.provider
            && let Err(error) = provider.force_flush()
        {
            tracing::warn!(%error, "Flushing spans failed.");
        }
    }
}

impl Drop for Tracing {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take()
            && let Err(error) = provider.shutdown()
        {
            tracing::warn!(%error, "Shutting the span exporter down failed.");
        }
    }
}

fn sampler(sampling: Sampling) -> Sampler {
    match sampling {
        Sampling::AlwaysOn => Sampler::AlwaysOn,
        Sampling::AlwaysOff => Sampler::AlwaysOff,
        Sampling::Ratio(ratio) => Sampler::TraceIdRatioBased(ratio),
        Sampling::ParentBased(root) => Sampler::ParentBased(Box::new(match root {
            ParentRoot::AlwaysOn => Sampler::AlwaysOn,
            ParentRoot::AlwaysOff => Sampler::AlwaysOff,
            ParentRoot::Ratio(ratio) => Sampler::TraceIdRatioBased(ratio),
        })),
    }
}

/// Installs the process-wide log subscriber (binaries only; tests do not call it).
/// Logs go to stderr so that stdout stays free for a command's output.
pub fn init_logging(config: &TelemetryConfig) -> Result<(), Error> {
    let filter = EnvFilter::try_new(&config.log_filter).map_err(|source| Error::LogFilter {
        filter: config.log_filter.clone(),
        source,
    })?;
    let registry = tracing_subscriber::registry().with(filter);
    let result = match config.log_format {
        LogFormat::Text => registry
            .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
            .try_init(),
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_writer(std::io::stderr),
            )
            .try_init(),
    };
    result.map_err(|_| Error::AlreadyInstalled)
}
