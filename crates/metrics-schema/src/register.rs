//! Registration helpers for the `prometheus` crate, the only way binaries create metrics.

#[cfg(test)]
mod tests;

use prometheus::{CounterVec, GaugeVec, HistogramOpts, HistogramVec, Opts, Registry};

use crate::{Kind, MetricDef};

// The one place allowed to call the constructors clippy.toml bans elsewhere.
#[allow(clippy::disallowed_methods)]
impl MetricDef {
    /// Registers this counter family in `registry`.
    pub fn register_counter(&self, registry: &Registry) -> prometheus::Result<CounterVec> {
        debug_assert_eq!(self.kind, Kind::Counter, "{} is not a counter", self.name);
        let family = CounterVec::new(Opts::new(self.name, self.help), &self.label_names())?;
        registry.register(Box::new(family.clone()))?;
        Ok(family)
    }

    /// Registers this gauge family in `registry`.
    pub fn register_gauge(&self, registry: &Registry) -> prometheus::Result<GaugeVec> {
        debug_assert_eq!(self.kind, Kind::Gauge, "{} is not a gauge", self.name);
        let family = GaugeVec::new(Opts::new(self.name, self.help), &self.label_names())?;
        registry.register(Box::new(family.clone()))?;
        Ok(family)
    }

    /// Registers this histogram family in `registry`; `runtime_bound` resolves
    /// [`crate::Buckets::OneTwoFiveUpTo`] (for vLLM, `max_model_len`).
    pub fn register_histogram(
        &self,
        registry: &Registry,
        runtime_bound: u64,
    ) -> prometheus::Result<HistogramVec> {
        debug_assert_eq!(
            self.kind,
            Kind::Histogram,
            "{} is not a histogram",
            self.name
        );
        let opts =
            HistogramOpts::new(self.name, self.help).buckets(self.bucket_bounds(runtime_bound));
        let family = HistogramVec::new(opts, &self.label_names())?;
        registry.register(Box::new(family.clone()))?;
        Ok(family)
    }
}
