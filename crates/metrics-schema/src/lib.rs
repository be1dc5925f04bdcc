//! The naming crate: every metric, label, span and span attribute of the stack, ours and the
//! upstream `vllm:*` names we reproduce.
//!
//! Data only. Binaries register metrics and open spans through these constants, and `xtask`
//! renders dashboards, Helm values and `docs/generated/` from them, so a name cannot drift
//! between code, dashboards and deployment.

pub mod epp;
pub mod kv_index;
pub mod labels;
pub mod load_gen;
pub mod pd_proxy;
pub mod pool;
pub mod sim;
pub mod spans;
pub mod vllm;

#[cfg(feature = "prometheus")]
mod register;
#[cfg(test)]
mod tests;

/// Every component module with its metrics, in reading order; dashboards put one row per entry.
pub const MODULES: &[(&str, &[&MetricDef])] = &[
    ("vllm", vllm::ALL),
    ("epp", epp::ALL),
    ("pd_proxy", pd_proxy::ALL),
    ("kv_index", kv_index::ALL),
    ("pool", pool::ALL),
    ("load_gen", load_gen::ALL),
    ("sim", sim::ALL),
];

/// Every metric of every module, sorted by name.
pub fn all() -> Vec<&'static MetricDef> {
    let mut metrics: Vec<&'static MetricDef> = MODULES
        .iter()
        .flat_map(|(_, metrics)| metrics.iter().copied())
        .collect();
    metrics.sort_by_key(|metric| metric.name);
    metrics
}

/// What kind of Prometheus family a metric is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// The base unit of a metric's value; checked against the name's suffix by the naming tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Seconds,
    Bytes,
    Tokens,
    Requests,
    Blocks,
    Events,
    Ratio,
    /// An `_info` gauge whose labels carry the information (value 1 or a timestamp).
    Info,
    /// A dimensionless count that is none of the above.
    Count,
}

/// Where a name comes from. Upstream names are reproduced exactly and exempt from our
/// naming rules; `source` names the upstream file or document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Ours,
    Upstream { source: &'static str },
}

/// How settled a name is; renames of stable names keep a `deprecated_alias`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stability {
    Stable,
    Beta,
    Alpha,
}

/// Histogram bucket bounds (upper bounds, without `+Inf`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Buckets {
    /// Not a histogram.
    None,
    Explicit(&'static [f64]),
    /// vLLM's 1-2-5 series (1, 2, 5, 10, 20, 50, ...) up to and including a runtime bound such
    /// as `max_model_len`; see [`one_two_five_up_to`].
    OneTwoFiveUpTo,
}

/// A label name with what its values mean.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Label {
    pub name: &'static str,
    pub help: &'static str,
}

/// One metric family.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MetricDef {
    /// The exposed family name; counters include `_total`.
    pub name: &'static str,
    pub kind: Kind,
    pub unit: Unit,
    /// A full sentence.
    pub help: &'static str,
    /// Label names in the order code passes values.
    pub labels: &'static [Label],
    pub buckets: Buckets,
    pub origin: Origin,
    pub stability: Stability,
    /// The old name, still emitted beside this one for a stated number of releases.
    pub deprecated_alias: Option<&'static str>,
}

impl MetricDef {
    /// Label names only, in declaration order.
    pub fn label_names(&self) -> Vec<&'static str> {
        self.labels.iter().map(|label| label.name).collect()
    }

    /// Bucket bounds; `runtime_bound` resolves [`Buckets::OneTwoFiveUpTo`].
    pub fn bucket_bounds(&self, runtime_bound: u64) -> Vec<f64> {
        match self.buckets {
            Buckets::None => Vec::new(),
            Buckets::Explicit(bounds) => bounds.to_vec(),
            Buckets::OneTwoFiveUpTo => one_two_five_up_to(runtime_bound),
        }
    }
}

/// vLLM's `build_1_2_5_buckets(max_value)`: 1, 2, 5, 10, 20, 50, ... while `<= max_value`.
pub fn one_two_five_up_to(max_value: u64) -> Vec<f64> {
    let mut bounds = Vec::new();
    let mut exponent: u32 = 0;
    loop {
        let Some(scale) = 10u64.checked_pow(exponent) else {
            return bounds;
        };
        for mantissa in [1u64, 2, 5] {
            let Some(value) = mantissa.checked_mul(scale) else {
                return bounds;
            };
            if value > max_value {
                return bounds;
            }
            bounds.push(value as f64);
        }
        exponent += 1;
    }
}

/// The kind of an OpenTelemetry span.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpanKind {
    Server,
    Client,
    Internal,
}

/// The value type of a span attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttrType {
    String,
    Int,
    Float,
    Bool,
}

/// A span attribute key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttrDef {
    pub key: &'static str,
    pub ty: AttrType,
    pub help: &'static str,
    pub origin: Origin,
}

/// A span name with its kind and the attributes it carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpanDef {
    pub name: &'static str,
    pub kind: SpanKind,
    pub help: &'static str,
    pub attributes: &'static [&'static AttrDef],
    pub origin: Origin,
}
