//! Unit tests of `config`: distributions and validation.

use rand::{SeedableRng, rngs::StdRng};

use super::*;
use crate::prompt::PromptSource;

fn draws(distribution: Distribution, count: usize) -> Vec<u32> {
    let mut rng = StdRng::seed_from_u64(9);
    (0..count).map(|_| distribution.sample(&mut rng)).collect()
}

#[test]
fn uniform_is_inclusive() {
    let values = draws(Distribution::Uniform { min: 3, max: 5 }, 1000);
    assert_eq!(values.iter().min(), Some(&3));
    assert_eq!(values.iter().max(), Some(&5));
}

#[test]
fn normal_and_log_normal_match_their_mean_and_stay_in_bounds() {
    let normal = draws(
        Distribution::Normal {
            mean: 200.0,
            std_dev: 20.0,
            max: None,
        },
        20_000,
    );
    let mean = normal.iter().map(|v| f64::from(*v)).sum::<f64>() / normal.len() as f64;
    assert!((mean - 200.0).abs() < 2.0, "mean {mean}");
    let log_normal = Distribution::LogNormal {
        mean: 100.0,
        std_dev: 50.0,
        max: Some(300),
    };
    let values = draws(log_normal, 20_000);
    assert!(values.iter().all(|v| (1..=300).contains(v)));
    let mean = values.iter().map(|v| f64::from(*v)).sum::<f64>() / values.len() as f64;
    assert!((mean - 100.0).abs() < 4.0, "mean {mean}");
    assert_eq!(log_normal.upper_bound(), 300);
    assert_eq!(
        Distribution::Normal {
            mean: 100.0,
            std_dev: 10.0,
            max: None
        }
        .upper_bound(),
        160
    );
}

#[test]
fn fixed_is_at_least_one() {
    assert_eq!(draws(Distribution::Fixed(7), 3), [7, 7, 7]);
    assert!(Distribution::Fixed(0).validate("x").is_err());
}

fn mix_config(load: Load) -> Config {
    let mut config = Config::pd_concurrent("http://127.0.0.1:1/v1", "m", 1, 1.0);
    config.workload = Workload::Mix(Mix {
        name: "t".to_owned(),
        load,
        api: Api::Chat,
        prompt: PromptSource::Tokens(Distribution::Fixed(10)),
        output_tokens: Distribution::Fixed(10),
        stream_ratio: 0.5,
        temperature: 0.0,
    });
    config
}

#[test]
fn pd_concurrent_defaults_are_the_scripts() {
    let config = Config::pd_concurrent(DEFAULT_ENDPOINT, DEFAULT_MODEL, 6, 5.0);
    assert_eq!(config.limit.duration, Some(Duration::from_secs(300)));
    assert_eq!(config.progress_interval, Duration::from_secs(10));
    let Workload::PdConcurrent(pd) = &config.workload else {
        panic!("pd workload");
    };
    assert_eq!(pd.stagger, Duration::from_millis(200));
    assert_eq!(pd.pause_scale, 1.0);
    assert!(config.validate().is_ok());
}

#[test]
fn validation_names_the_problem() {
    let error = |config: Config| config.validate().unwrap_err().to_string();
    let mut config = mix_config(Load::Closed(ClosedLoop {
        workers: 0,
        pause: Duration::ZERO,
    }));
    assert_eq!(
        error(config.clone()),
        "invalid configuration: workers must be at least 1"
    );
    config.workload = mix_config(Load::Open(OpenLoop {
        arrival: Arrival::Poisson,
        stages: vec![
            Stage {
                duration_s: None,
                rate: 1.0,
                to_rate: None,
            },
            Stage {
                duration_s: Some(1.0),
                rate: 1.0,
                to_rate: None,
            },
        ],
    }))
    .workload;
    assert_eq!(
        error(config.clone()),
        "invalid configuration: stage 0: only the last stage may omit duration_s"
    );
    let mut no_limit = mix_config(Load::Open(OpenLoop::constant_rate(Arrival::Constant, 5.0)));
    no_limit.limit = Limit::default();
    assert_eq!(
        error(no_limit),
        "invalid configuration: a scenario needs duration_s or requests"
    );
    let mut zero_rate = mix_config(Load::Open(OpenLoop::constant_rate(Arrival::Constant, 0.0)));
    zero_rate.limit.requests = Some(1);
    assert_eq!(
        error(zero_rate),
        "invalid configuration: open loop rate is never positive"
    );
    if let Workload::Mix(mix) = &mut config.workload {
        mix.load = Load::Closed(ClosedLoop {
            workers: 1,
            pause: Duration::ZERO,
        });
        mix.stream_ratio = 1.5;
    }
    assert_eq!(
        error(config),
        "invalid configuration: stream_ratio 1.5 is not in [0, 1]"
    );
}
