//! The scheduler: runs profiles (filters → weighted scorers → picker) as the profile handler
//! directs, timing every extension point.

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use crate::framework::{
    CycleState, Endpoint, InferenceRequest, Plugin, ProfileResult, SchedulingError,
    SchedulingResult, ScoredEndpoint,
};
use crate::telemetry::{Metrics, extension_point};

/// One scheduling profile: filters, then scorers summed by weight, then the picker.
#[derive(Debug, Clone)]
pub struct Profile {
    pub name: String,
    pub filters: Vec<Arc<dyn Plugin>>,
    pub scorers: Vec<(Arc<dyn Plugin>, f64)>,
    pub picker: Arc<dyn Plugin>,
}

/// The profiles and the handler that drives them.
#[derive(Debug, Clone)]
pub struct Scheduler {
    profiles: BTreeMap<String, Profile>,
    names: Vec<String>,
    handler: Arc<dyn Plugin>,
    metrics: Arc<Metrics>,
}

impl Scheduler {
    /// `handler` must implement the profile-handler role (checked by the config loader).
    pub fn new(
        profiles: Vec<Profile>,
        handler: Arc<dyn Plugin>,
        metrics: Arc<Metrics>,
    ) -> Scheduler {
        let names = profiles.iter().map(|p| p.name.clone()).collect();
        Scheduler {
            profiles: profiles.into_iter().map(|p| (p.name.clone(), p)).collect(),
            names,
            handler,
            metrics,
        }
    }

    pub fn profiles(&self) -> impl Iterator<Item = &Profile> {
        self.names.iter().filter_map(|name| self.profiles.get(name))
    }

    /// Schedules `request` on `candidates`.
    pub fn schedule(
        &self,
        cycle: &mut CycleState,
        request: &InferenceRequest,
        candidates: &[Arc<Endpoint>],
    ) -> Result<SchedulingResult, SchedulingError> {
        let started = Instant::now();
        let result = self.run(cycle, request, candidates);
        let picked = result
            .as_ref()
            .ok()
            .and_then(|r| r.primary_targets().first())
            .map(|e| e.address.clone());
        cycle.finish_deferred(picked.as_deref());
        self.metrics
            .scheduler_e2e
            .observe(&[], started.elapsed().as_secs_f64());
        result
    }

    fn run(
        &self,
        cycle: &mut CycleState,
        request: &InferenceRequest,
        candidates: &[Arc<Endpoint>],
    ) -> Result<SchedulingResult, SchedulingError> {
        if candidates.is_empty() {
            return Err(SchedulingError::NoCandidates);
        }
        let Some(handler) = self.handler.as_profile_handler() else {
            return Err(SchedulingError::Handler {
                handler: self.handler.typed_name().to_string(),
                reason: "not a profile handler".to_owned(),
            });
        };
        let mut results: BTreeMap<String, Option<ProfileResult>> = BTreeMap::new();
        // Each round runs at least one new profile, so this bounds the loop.
        for _ in 0..=self.names.len() {
            let started = Instant::now();
            let next = handler.pick(cycle, request, &self.names, &results);
            self.time(extension_point::PROFILE_HANDLER, &self.handler, started);
            let next: Vec<String> = next
                .into_iter()
                .filter(|name| !results.contains_key(name))
                .collect();
            if next.is_empty() {
                break;
            }
            for name in next {
                let result = match self.profiles.get(&name) {
                    Some(profile) => self.run_profile(profile, cycle, request, candidates),
                    None => {
                        tracing::error!(profile = %name, "The profile handler picked an unknown profile.");
                        None
                    }
                };
                results.insert(name, result);
            }
        }
        let started = Instant::now();
        let result = handler.process_results(cycle, request, results);
        self.time(extension_point::PROFILE_HANDLER, &self.handler, started);
        result
    }

    fn run_profile(
        &self,
        profile: &Profile,
        cycle: &mut CycleState,
        request: &InferenceRequest,
        candidates: &[Arc<Endpoint>],
    ) -> Option<ProfileResult> {
        let mut endpoints = candidates.to_vec();
        for plugin in &profile.filters {
            let Some(filter) = plugin.as_filter() else {
                continue;
            };
            let started = Instant::now();
            endpoints = filter.filter(cycle, request, endpoints);
            self.time(extension_point::FILTER, plugin, started);
            if endpoints.is_empty() {
                return None;
            }
        }
        let mut totals = vec![0.0; endpoints.len()];
        for (plugin, weight) in &profile.scorers {
            let Some(scorer) = plugin.as_scorer() else {
                continue;
            };
            let started = Instant::now();
            let scores = scorer.score(cycle, request, &endpoints);
            self.time(extension_point::SCORER, plugin, started);
            debug_assert_eq!(
                scores.len(),
                endpoints.len(),
                "{} scored a different number of endpoints",
                plugin.typed_name()
            );
            for (total, score) in totals.iter_mut().zip(scores) {
                let score = if score.is_nan() {
                    0.0
                } else {
                    score.clamp(0.0, 1.0)
                };
                *total += score * weight;
            }
        }
        let scored = endpoints
            .into_iter()
            .zip(totals)
            .map(|(endpoint, score)| ScoredEndpoint { endpoint, score })
            .collect();
        let picker = profile.picker.as_picker()?;
        let started = Instant::now();
        let result = picker.pick(cycle, request, scored);
        self.time(extension_point::PICKER, &profile.picker, started);
        (!result.targets.is_empty()).then_some(result)
    }

    fn time(&self, point: &str, plugin: &Arc<dyn Plugin>, started: Instant) {
        let name = plugin.typed_name();
        self.metrics.plugin_duration.observe(
            &[point, name.plugin_type, &name.name],
            started.elapsed().as_secs_f64(),
        );
    }
}
