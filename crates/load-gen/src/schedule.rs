//! Open-loop arrival times for a rate profile made of linear stages.
//!
//! The schedule uses time rescaling: with `Λ(t)` the integral of the rate, the k-th arrival
//! is at `Λ(t) = c_k`, where `c_k` grows by exactly 1 per arrival (constant spacing) or by an
//! `Exp(1)` draw (a Poisson process, non-homogeneous during ramps). Within a linear stage
//! `Λ` is quadratic, so every arrival time is solved in closed form; ramps starting at rate 0
//! work without special cases.

#[cfg(test)]
mod tests;

use std::time::Duration;

use rand::{SeedableRng, rngs::StdRng};
use rand_distr::{Distribution as _, Exp1};
use serde::{Deserialize, Serialize};

use crate::config::Stage;

/// How arrivals are spaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Arrival {
    /// Evenly spaced at the current rate.
    Constant,
    /// A Poisson process at the current rate.
    #[default]
    Poisson,
}

/// Iterator of arrival offsets from the start of the run.
#[derive(Debug, Clone)]
pub struct ArrivalSchedule {
    arrival: Arrival,
    /// Stages with absolute start time and cumulative arrivals `Λ` at their start.
    stages: Vec<ResolvedStage>,
    rng: StdRng,
    /// Target cumulative count of the next arrival.
    target: f64,
    /// Index of the stage the last arrival fell in (targets only grow).
    stage_idx: usize,
}

#[derive(Debug, Clone, Copy)]
struct ResolvedStage {
    start_s: f64,
    /// `f64::INFINITY` for an open-ended last stage.
    duration_s: f64,
    rate: f64,
    to_rate: f64,
    lambda_start: f64,
}

impl ResolvedStage {
    fn total(&self) -> f64 {
        if self.duration_s.is_infinite() {
            if self.to_rate > 0.0 || self.rate > 0.0 {
                f64::INFINITY
            } else {
                0.0
            }
        } else {
            (self.rate + self.to_rate) / 2.0 * self.duration_s
        }
    }

    /// Offset within the stage where `Λ` has grown by `delta` (`0 <= delta < total()`).
    fn solve(&self, delta: f64) -> f64 {
        let slope = if self.duration_s.is_infinite() {
            0.0
        } else {
            (self.to_rate - self.rate) / self.duration_s
        };
        let a = slope / 2.0;
        if delta <= 0.0 {
            return 0.0;
        }
        if a.abs() < 1e-12 {
            return delta / self.rate;
        }
        // a s^2 + rate s - delta = 0, the root in [0, duration].
        let disc = (self.rate * self.rate + 4.0 * a * delta).max(0.0);
        // Numerically stable form of (-rate + sqrt(disc)) / (2a).
        2.0 * delta / (self.rate + disc.sqrt())
    }
}

impl ArrivalSchedule {
    /// A schedule for `stages` (validated by [`crate::Config::validate`]), seeded.
    pub fn new(arrival: Arrival, stages: &[Stage], seed: u64) -> ArrivalSchedule {
        let mut resolved = Vec::with_capacity(stages.len());
        let (mut start_s, mut lambda) = (0.0, 0.0);
        for stage in stages {
            let stage = ResolvedStage {
                start_s,
                duration_s: stage.duration_s.unwrap_or(f64::INFINITY),
                rate: stage.rate,
                to_rate: stage.to_rate.unwrap_or(stage.rate),
                lambda_start: lambda,
            };
            start_s += stage.duration_s;
            lambda += stage.total();
            resolved.push(stage);
        }
        // After the last finite stage, its final rate holds.
        if let Some(last) = resolved.last().copied()
            && last.duration_s.is_finite()
        {
            resolved.push(ResolvedStage {
                start_s,
                duration_s: f64::INFINITY,
                rate: last.to_rate,
                to_rate: last.to_rate,
                lambda_start: lambda,
            });
        }
        let mut schedule = ArrivalSchedule {
            arrival,
            stages: resolved,
            rng: StdRng::seed_from_u64(seed),
            target: 0.0,
            stage_idx: 0,
        };
        // The first arrival of a constant process is at time 0.
        if arrival == Arrival::Constant {
            schedule.target = -1.0;
        }
        schedule
    }

    /// The rate in requests per second at offset `t`.
    pub fn rate_at(&self, t: Duration) -> f64 {
        let t = t.as_secs_f64();
        for stage in &self.stages {
            if t < stage.start_s + stage.duration_s {
                if stage.duration_s.is_infinite() {
                    return stage.rate;
                }
                let frac = (t - stage.start_s) / stage.duration_s;
                return stage.rate + (stage.to_rate - stage.rate) * frac;
            }
        }
        0.0
    }
}

impl Iterator for ArrivalSchedule {
    type Item = Duration;

    /// The next arrival offset; `None` once the rate stays 0 forever.
    fn next(&mut self) -> Option<Duration> {
        let step: f64 = match self.arrival {
            Arrival::Constant => 1.0,
            Arrival::Poisson => Exp1.sample(&mut self.rng),
        };
        self.target = (self.target + step).max(0.0);
        while self.stage_idx < self.stages.len() {
            let stage = self.stages[self.stage_idx];
            let delta = self.target - stage.lambda_start;
            if delta < stage.total() {
                let offset_s = stage.start_s + stage.solve(delta);
                return Some(Duration::from_secs_f64(offset_s.max(0.0)));
            }
            self.stage_idx += 1;
        }
        None
    }
}
