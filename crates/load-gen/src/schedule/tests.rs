//! Unit tests of `schedule`: spacing, rates and ramps of the arrival process.

use std::time::Duration;

use super::{Arrival, ArrivalSchedule};
use crate::config::Stage;

fn constant(rate: f64) -> Vec<Stage> {
    vec![Stage {
        duration_s: None,
        rate,
        to_rate: None,
    }]
}

#[test]
fn constant_arrivals_are_evenly_spaced_from_zero() {
    let offsets: Vec<Duration> = ArrivalSchedule::new(Arrival::Constant, &constant(4.0), 0)
        .take(5)
        .collect();
    let expected: Vec<Duration> = (0..5).map(|k| Duration::from_millis(250 * k)).collect();
    for (got, want) in offsets.iter().zip(&expected) {
        assert!(
            got.abs_diff(*want) < Duration::from_micros(1),
            "{got:?} vs {want:?}"
        );
    }
}

#[test]
fn poisson_arrivals_have_the_configured_mean_rate() {
    let offsets: Vec<Duration> = ArrivalSchedule::new(Arrival::Poisson, &constant(2000.0), 7)
        .take(20_000)
        .collect();
    let span = offsets.last().copied().unwrap_or_default().as_secs_f64();
    let rate = offsets.len() as f64 / span;
    assert!((rate - 2000.0).abs() < 2000.0 * 0.03, "rate {rate}");
    assert!(offsets.windows(2).all(|w| w[0] <= w[1]), "non-decreasing");
    // Exponential gaps: about 1/e of them exceed the mean gap.
    let mean_gap = span / offsets.len() as f64;
    let long = offsets
        .windows(2)
        .filter(|w| (w[1] - w[0]).as_secs_f64() > mean_gap)
        .count() as f64
        / offsets.len() as f64;
    assert!(
        (long - (-1.0f64).exp()).abs() < 0.02,
        "share of long gaps {long}"
    );
}

#[test]
fn seeded_schedules_repeat() {
    let a: Vec<_> = ArrivalSchedule::new(Arrival::Poisson, &constant(100.0), 3)
        .take(100)
        .collect();
    let b: Vec<_> = ArrivalSchedule::new(Arrival::Poisson, &constant(100.0), 3)
        .take(100)
        .collect();
    let c: Vec<_> = ArrivalSchedule::new(Arrival::Poisson, &constant(100.0), 4)
        .take(100)
        .collect();
    assert_eq!(a, b);
    assert_ne!(a, c);
}

#[test]
fn a_ramp_from_zero_has_the_integral_of_its_rate() {
    // 0 -> 100 req/s over 10 s: 500 arrivals in the ramp, then 100 req/s.
    let stages = [Stage {
        duration_s: Some(10.0),
        rate: 0.0,
        to_rate: Some(100.0),
    }];
    let offsets: Vec<Duration> = ArrivalSchedule::new(Arrival::Constant, &stages, 0)
        .take_while(|t| *t < Duration::from_secs(12))
        .collect();
    let in_ramp = offsets
        .iter()
        .filter(|t| **t < Duration::from_secs(10))
        .count();
    assert_eq!(in_ramp, 500);
    assert_eq!(
        offsets.len() - in_ramp,
        200,
        "the final rate holds after the ramp"
    );
    // Arrivals get denser along the ramp.
    let first_half = offsets
        .iter()
        .filter(|t| **t < Duration::from_secs(5))
        .count();
    assert_eq!(first_half, 125);
}

#[test]
fn rate_at_interpolates_stages() {
    let stages = [
        Stage {
            duration_s: Some(10.0),
            rate: 10.0,
            to_rate: Some(30.0),
        },
        Stage {
            duration_s: Some(5.0),
            rate: 50.0,
            to_rate: None,
        },
    ];
    let schedule = ArrivalSchedule::new(Arrival::Constant, &stages, 0);
    assert_eq!(schedule.rate_at(Duration::from_secs(5)), 20.0);
    assert_eq!(schedule.rate_at(Duration::from_secs(12)), 50.0);
    assert_eq!(schedule.rate_at(Duration::from_secs(100)), 50.0);
}

#[test]
fn a_profile_that_ends_at_zero_ends_the_schedule() {
    let stages = [Stage {
        duration_s: Some(2.0),
        rate: 10.0,
        to_rate: Some(0.0),
    }];
    let count = ArrivalSchedule::new(Arrival::Constant, &stages, 0).count();
    assert_eq!(count, 10, "integral of 10 -> 0 over 2 s");
}
