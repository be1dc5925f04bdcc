//! The sidecar's metric handles (from `metrics_schema::pd_proxy`) and its closed outcome set.

#[cfg(test)]
mod tests;

use metrics_schema::pd_proxy::{self, outcome};
use prometheus::{Counter, Histogram, Registry};

/// How a request ended; each is one `outcome` label value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Success,
    DecodeOnly,
    PrefillError,
    PrefillFallback,
    DecodeError,
    Rejected,
    ClientCancelled,
}

impl Outcome {
    /// Every outcome, in label order.
    pub(crate) const ALL: [Outcome; 7] = [
        Outcome::Success,
        Outcome::DecodeOnly,
        Outcome::PrefillError,
        Outcome::PrefillFallback,
        Outcome::DecodeError,
        Outcome::Rejected,
        Outcome::ClientCancelled,
    ];

    /// The `outcome` label value from the schema.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => outcome::SUCCESS,
            Outcome::DecodeOnly => outcome::DECODE_ONLY,
            Outcome::PrefillError => outcome::PREFILL_ERROR,
            Outcome::PrefillFallback => outcome::PREFILL_FALLBACK,
            Outcome::DecodeError => outcome::DECODE_ERROR,
            Outcome::Rejected => outcome::REJECTED,
            Outcome::ClientCancelled => outcome::CLIENT_CANCELLED,
        }
    }
}

/// The families of one sidecar, bound to its connector.
pub(crate) struct Metrics {
    pub registry: Registry,
    requests: [Counter; 7],
    pub true_ttft: Histogram,
    pub coordinator_overhead: Histogram,
    pub prefill_duration: Histogram,
    pub decode_duration: Histogram,
    pub total_duration: Histogram,
    pub tls_handshake_failures: Counter,
}

impl Metrics {
    /// Registers every family in a fresh registry; every outcome series exists from start-up.
    pub(crate) fn new(connector: &str) -> prometheus::Result<Metrics> {
        let registry = Registry::new();
        let requests_family = pd_proxy::REQUESTS_TOTAL.register_counter(&registry)?;
        let requests = Outcome::ALL.map(|outcome| {
            requests_family.with_label_values(&label_values(
                &pd_proxy::REQUESTS_TOTAL,
                &[("connector", connector), ("outcome", outcome.as_str())],
            ))
        });
        let histogram = |def: &metrics_schema::MetricDef| -> prometheus::Result<Histogram> {
            Ok(def
                .register_histogram(&registry, 0)?
                .with_label_values(&label_values(def, &[("connector", connector)])))
        };
        Ok(Metrics {
            requests,
            true_ttft: histogram(&pd_proxy::TRUE_TTFT_SECONDS)?,
            coordinator_overhead: histogram(&pd_proxy::COORDINATOR_OVERHEAD_SECONDS)?,
            prefill_duration: histogram(&pd_proxy::PREFILL_DURATION_SECONDS)?,
            decode_duration: histogram(&pd_proxy::DECODE_DURATION_SECONDS)?,
            total_duration: histogram(&pd_proxy::TOTAL_DURATION_SECONDS)?,
            tls_handshake_failures: pd_proxy::TLS_HANDSHAKE_FAILURES_TOTAL
                .register_counter(&registry)?
                .with_label_values(&label_values(
                    &pd_proxy::TLS_HANDSHAKE_FAILURES_TOTAL,
                    &[("connector", connector)],
                )),
            registry,
        })
    }

    /// `llm_d_inference_scheduler_pd_proxy_requests_total{outcome}`.
    pub(crate) fn request(&self, outcome: Outcome) -> &Counter {
        let index = Outcome::ALL
            .iter()
            .position(|o| *o == outcome)
            .unwrap_or_default();
        &self.requests[index]
    }
}

/// Label values of `def` in its declared order; a label missing from `pairs` is a bug the
/// tests catch (it would be exported empty).
pub(crate) fn label_values<'a>(
    def: &metrics_schema::MetricDef,
    pairs: &[(&str, &'a str)],
) -> Vec<&'a str> {
    def.labels
        .iter()
        .map(|label| {
            let value = pairs.iter().find(|(name, _)| *name == label.name);
            debug_assert!(value.is_some(), "{} needs label {}", def.name, label.name);
            value.map_or("", |(_, value)| *value)
        })
        .collect()
}
