//! Metric handles built from `metrics_schema::epp`, the closed error-kind label, and the
//! extension-point names of `llm_d_epp_plugin_duration_seconds`.
//!
//! Families with a `deprecated_alias` are registered twice (new and old name) and every
//! observation goes to both, as llm-d-router dual-emits them; dashboards read the new name.

use prometheus::{CounterVec, GaugeVec, HistogramVec, Registry};

use metrics_schema::{MetricDef, epp as defs};

/// Errors registering metrics.
#[derive(Debug, thiserror::Error)]
#[error("registering metric {name}")]
pub struct Error {
    name: &'static str,
    #[source]
    source: prometheus::Error,
}

/// The closed set of `error_code` label values (never a raw error string).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Body is not a valid OpenAI request (400).
    BadRequest,
    /// Body over the size limit (413).
    PayloadTooLarge,
    /// No endpoint fits (503).
    ServiceUnavailable,
    /// Admission refused (429).
    ResourceExhausted,
    /// The model server answered with a non-2xx status.
    ModelServerError,
    /// An internal failure (500).
    Internal,
}

impl ErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::BadRequest => "BadRequest",
            ErrorKind::PayloadTooLarge => "PayloadTooLarge",
            ErrorKind::ServiceUnavailable => "ServiceUnavailable",
            ErrorKind::ResourceExhausted => "ResourceExhausted",
            ErrorKind::ModelServerError => "ModelServerError",
            ErrorKind::Internal => "Internal",
        }
    }

    /// The HTTP status of the immediate response.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorKind::BadRequest => 400,
            ErrorKind::PayloadTooLarge => 413,
            ErrorKind::ServiceUnavailable => 503,
            ErrorKind::ResourceExhausted => 429,
            ErrorKind::ModelServerError => 502,
            ErrorKind::Internal => 500,
        }
    }
}

/// `extension_point` label values.
pub mod extension_point {
    pub const ADMITTER: &str = "Admitter";
    pub const PROFILE_HANDLER: &str = "ProfileHandler";
    pub const FILTER: &str = "Filter";
    pub const SCORER: &str = "Scorer";
    pub const PICKER: &str = "Picker";
    pub const PRE_REQUEST: &str = "PreRequest";
}

/// A counter family and its deprecated twin.
#[derive(Debug, Clone)]
pub struct Counter(Vec<CounterVec>);

impl Counter {
    pub fn inc(&self, labels: &[&str]) {
        for family in &self.0 {
            family.with_label_values(labels).inc();
        }
    }

    /// The current value under the new name, for tests.
    pub fn get(&self, labels: &[&str]) -> f64 {
        self.0[0].with_label_values(labels).get()
    }
}

/// A histogram family and its deprecated twin.
#[derive(Debug, Clone)]
pub struct Histogram(Vec<HistogramVec>);

impl Histogram {
    pub fn observe(&self, labels: &[&str], value: f64) {
        for family in &self.0 {
            family.with_label_values(labels).observe(value);
        }
    }
}

/// A gauge family and its deprecated twin.
#[derive(Debug, Clone)]
pub struct Gauge(Vec<GaugeVec>);

impl Gauge {
    pub fn set(&self, labels: &[&str], value: f64) {
        for family in &self.0 {
            family.with_label_values(labels).set(value);
        }
    }

    pub fn remove(&self, labels: &[&str]) {
        for family in &self.0 {
            let _ = family.remove_label_values(labels);
        }
    }
}

/// Every EPP metric handle.
#[derive(Debug, Clone)]
pub struct Metrics {
    pub request_total: Counter,
    pub request_error_total: Counter,
    pub request_duration: Histogram,
    pub request_size: Histogram,
    pub response_size: Histogram,
    pub input_tokens: Histogram,
    pub output_tokens: Histogram,
    pub scheduler_e2e: Histogram,
    pub scheduler_attempts: Counter,
    pub plugin_duration: Histogram,
    pub average_kv_cache_utilization: Gauge,
    pub average_queue_size: Gauge,
    pub ready_endpoints: Gauge,
    pub per_endpoint_queue_size: Gauge,
    pub pd_decision: Counter,
    pub prefix_cache_hits: Counter,
    pub prefix_cache_matched_blocks: Histogram,
    pub routing_decision_duration: Histogram,
    pub metrics_auth_denied: Counter,
    pub tls_handshake_failures: Counter,
}

impl Metrics {
    /// Registers every family of `metrics_schema::epp` (and the deprecated twins).
    pub fn register(registry: &Registry) -> Result<Metrics, Error> {
        let names = |def: &'static MetricDef| {
            let mut defs = vec![*def];
            if let Some(alias) = def.deprecated_alias {
                defs.push(MetricDef {
                    name: alias,
                    ..*def
                });
            }
            defs
        };
        let wrap = |def: &MetricDef| {
            let name = def.name;
            move |source| Error { name, source }
        };
        let counter = |def: &'static MetricDef| -> Result<Counter, Error> {
            names(def)
                .iter()
                .map(|d| d.register_counter(registry).map_err(wrap(d)))
                .collect::<Result<_, _>>()
                .map(Counter)
        };
        let histogram = |def: &'static MetricDef| -> Result<Histogram, Error> {
            names(def)
                .iter()
                .map(|d| d.register_histogram(registry, 0).map_err(wrap(d)))
                .collect::<Result<_, _>>()
                .map(Histogram)
        };
        let gauge = |def: &'static MetricDef| -> Result<Gauge, Error> {
            names(def)
                .iter()
                .map(|d| d.register_gauge(registry).map_err(wrap(d)))
                .collect::<Result<_, _>>()
                .map(Gauge)
        };
        let metrics = Metrics {
            request_total: counter(&defs::REQUEST_TOTAL)?,
            request_error_total: counter(&defs::REQUEST_ERROR_TOTAL)?,
            request_duration: histogram(&defs::REQUEST_DURATION_SECONDS)?,
            request_size: histogram(&defs::REQUEST_SIZE_BYTES)?,
            response_size: histogram(&defs::RESPONSE_SIZE_BYTES)?,
            input_tokens: histogram(&defs::REQUEST_INPUT_TOKENS)?,
            output_tokens: histogram(&defs::REQUEST_OUTPUT_TOKENS)?,
            scheduler_e2e: histogram(&defs::SCHEDULER_E2E_DURATION_SECONDS)?,
            scheduler_attempts: counter(&defs::SCHEDULER_ATTEMPTS_TOTAL)?,
            plugin_duration: histogram(&defs::PLUGIN_DURATION_SECONDS)?,
            average_kv_cache_utilization: gauge(&defs::AVERAGE_KV_CACHE_UTILIZATION)?,
            average_queue_size: gauge(&defs::AVERAGE_QUEUE_SIZE)?,
            ready_endpoints: gauge(&defs::READY_ENDPOINTS)?,
            per_endpoint_queue_size: gauge(&defs::PER_ENDPOINT_QUEUE_SIZE)?,
            pd_decision: counter(&defs::PD_DECISION_TOTAL)?,
            prefix_cache_hits: counter(&defs::PREFIX_CACHE_HITS_TOTAL)?,
            prefix_cache_matched_blocks: histogram(&defs::PREFIX_CACHE_SCORER_MATCHED_BLOCKS)?,
            routing_decision_duration: histogram(&defs::ROUTING_DECISION_DURATION_SECONDS)?,
            metrics_auth_denied: counter(&defs::METRICS_AUTH_DENIED_TOTAL)?,
            tls_handshake_failures: counter(&defs::TLS_HANDSHAKE_FAILURES_TOTAL)?,
        };
        let info = gauge(&defs::INFO)?;
        info.set(
            &[
                option_env!("EPP_BUILD_COMMIT").unwrap_or("unknown"),
                env!("CARGO_PKG_VERSION"),
            ],
            1.0,
        );
        Ok(metrics)
    }

    /// Handles on a private registry, for unit tests and benches.
    pub fn unregistered() -> Metrics {
        match Metrics::register(&Registry::new()) {
            Ok(metrics) => metrics,
            // A fresh registry cannot hold duplicates; the schema's names are tested.
            Err(error) => panic!("registering on a fresh registry failed: {error}"),
        }
    }
}
