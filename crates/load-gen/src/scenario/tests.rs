//! Unit tests of `scenario`: parsing, strictness, conversion and precedence.

use super::*;
use crate::prompt::PromptFamily;

const FULL: &str = r#"
name: prefix-heavy
api: completions
seed: 7
duration_s: 60
requests: 5000
timeout_s: 30
load:
  open_loop:
    arrival: constant
    stages:
      - {duration_s: 10, rate: 10, to_rate: 200}
      - {rate: 200}
prompt:
  family:
    system_prompt: {families: 4, prefix_tokens: 2000, question_tokens: {uniform: {min: 20, max: 80}}}
output_tokens: {log_normal: {mean: 200, std_dev: 80, max: 1024}}
stream_ratio: 0.5
headers: {Authorization: Bearer x}
"#;

#[test]
fn a_full_scenario_becomes_a_config() {
    let scenario = Scenario::from_yaml(FULL, "full.yaml").unwrap();
    let config = scenario
        .into_config(None, Some("flag-model".to_owned()))
        .unwrap();
    assert_eq!(config.endpoint, crate::config::DEFAULT_ENDPOINT);
    assert_eq!(config.model, "flag-model");
    assert_eq!(config.seed, 7);
    assert_eq!(config.limit.duration, Some(Duration::from_secs(60)));
    assert_eq!(config.limit.requests, Some(5000));
    assert_eq!(config.request_timeout, Duration::from_secs(30));
    assert_eq!(
        config.headers,
        [("Authorization".to_owned(), "Bearer x".to_owned())]
    );
    let Workload::Mix(mix) = &config.workload else {
        panic!("a mix");
    };
    assert_eq!(mix.name, "prefix-heavy");
    assert_eq!(mix.api, Api::Completions);
    assert_eq!(mix.stream_ratio, 0.5);
    assert_eq!(
        mix.load,
        Load::Open(OpenLoop {
            arrival: Arrival::Constant,
            stages: vec![
                Stage {
                    duration_s: Some(10.0),
                    rate: 10.0,
                    to_rate: Some(200.0)
                },
                Stage {
                    duration_s: None,
                    rate: 200.0,
                    to_rate: None
                },
            ],
        })
    );
    assert!(matches!(
        mix.prompt,
        PromptSource::Family(PromptFamily::SystemPrompt {
            families: 4,
            prefix_tokens: 2000,
            ..
        })
    ));
    assert!(config.validate().is_ok());
}

#[test]
fn unknown_keys_are_named() {
    let error = Scenario::from_yaml(
        "load: {closed_loop: {workers: 2}}\nprompt: {tokens: {fixed: 5}}\nduraton_s: 3\n",
        "s.yaml",
    )
    .unwrap_err()
    .to_string();
    assert!(
        error.starts_with("scenario s.yaml: unknown field `duraton_s`"),
        "{error}"
    );
    let error = Scenario::from_yaml("load: {closed_loop: {workers: 2, pause: 1}}\n", "s.yaml")
        .unwrap_err()
        .to_string();
    assert!(error.contains("unknown field `pause`"), "{error}");
    let error = Scenario::from_yaml(
        "load: {open_loop: {rate: 5}}\nprompt: {tokens: {gaussian: 5}}\n",
        "s.yaml",
    )
    .unwrap_err()
    .to_string();
    assert!(error.contains("unknown variant `gaussian`"), "{error}");
}

#[test]
fn closed_loop_and_pd_concurrent_loads() {
    let scenario = Scenario::from_yaml(
        "endpoint: http://file:1/v1\nrequests: 10\nload: {closed_loop: {workers: 3, pause_ms: 250}}\nprompt: {classes: {short: 1, long: 2}}\n",
        "s.yaml",
    )
    .unwrap();
    let config = scenario
        .into_config(Some("http://flag:2/v1".to_owned()), None)
        .unwrap();
    assert_eq!(
        config.endpoint, "http://flag:2/v1",
        "flags/env override the file"
    );
    let Workload::Mix(mix) = &config.workload else {
        panic!("a mix");
    };
    assert_eq!(
        mix.load,
        Load::Closed(ClosedLoop {
            workers: 3,
            pause: Duration::from_millis(250)
        })
    );
    assert_eq!(
        mix.output_tokens,
        Distribution::Fixed(DEFAULT_OUTPUT_TOKENS)
    );

    let scenario = Scenario::from_yaml(
        "duration_s: 30\nload: {pd_concurrent: {workers: 12}}\n",
        "s.yaml",
    )
    .unwrap();
    let config = scenario.into_config(None, None).unwrap();
    let Workload::PdConcurrent(pd) = &config.workload else {
        panic!("pd");
    };
    assert_eq!(pd.workers, 12);
    assert_eq!(config.model, crate::config::DEFAULT_MODEL);
}

#[test]
fn open_loop_needs_exactly_one_of_rate_and_stages() {
    let both = "requests: 1\nload: {open_loop: {rate: 5, stages: [{rate: 5}]}}\nprompt: {tokens: {fixed: 5}}\n";
    let error = Scenario::from_yaml(both, "s")
        .unwrap()
        .into_config(None, None)
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "invalid configuration: open_loop takes either rate or stages, not both"
    );
    let none = "requests: 1\nload: {open_loop: {arrival: poisson}}\nprompt: {tokens: {fixed: 5}}\n";
    let error = Scenario::from_yaml(none, "s")
        .unwrap()
        .into_config(None, None)
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "invalid configuration: open_loop needs rate or stages"
    );
}
