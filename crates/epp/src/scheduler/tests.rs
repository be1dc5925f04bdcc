//! Data-driven scheduling: a config, an endpoint table, the picked endpoints.

use std::sync::Arc;

use expect_test::{Expect, expect};

use crate::config;
use crate::framework::{CycleState, Endpoint, Handle, InferenceRequest, Prompt};
use crate::plugins;
use crate::telemetry::Metrics;

fn handle() -> Handle {
    Handle {
        tokenizer: tokenizer::Tokenizer::embedded(),
        metrics: Arc::new(Metrics::unregistered()),
        registry: prometheus::Registry::new(),
    }
}

/// `endpoints`: one per line, `address key=value...` with `q` (waiting queue), `kv` (cache
/// usage) and any other key as a label.
fn endpoints(table: &str) -> Vec<Arc<Endpoint>> {
    table
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .map(|line| {
            let mut words = line.split_whitespace();
            let mut endpoint = Endpoint::new(words.next().unwrap());
            for word in words {
                let (key, value) = word.split_once('=').unwrap();
                match key {
                    "q" => endpoint.metrics.waiting_queue_size = value.parse().unwrap(),
                    "kv" => endpoint.metrics.kv_cache_usage = value.parse().unwrap(),
                    "role" => {
                        endpoint
                            .labels
                            .insert("llm-d.ai/role".to_owned(), value.to_owned());
                    }
                    _ => {
                        endpoint.labels.insert(key.to_owned(), value.to_owned());
                    }
                }
            }
            Arc::new(endpoint)
        })
        .collect()
}

/// Schedules each prompt in turn on one endpoint table (so stateful scorers learn) and
/// renders every decision.
fn check_prompts(config_yaml: &str, table: &str, prompts: &[&str], expect: Expect) {
    let steps: Vec<(&str, &str)> = prompts.iter().map(|prompt| (table, *prompt)).collect();
    check_sequence(config_yaml, &steps, expect);
}

/// Like [`check_prompts`], with an endpoint table per step.
fn check_sequence(config_yaml: &str, steps: &[(&str, &str)], expect: Expect) {
    let handle = handle();
    let loaded = config::load(
        &config::parse(config_yaml).unwrap(),
        &plugins::in_tree(),
        &handle,
    )
    .unwrap_or_else(|error| panic!("config loads: {error}"));
    let mut out = String::new();
    for (table, prompt) in steps {
        let candidates = endpoints(table);
        let mut request = InferenceRequest::new("r", "m", Prompt::Text((*prompt).to_owned()));
        let mut cycle = CycleState::default();
        match loaded.scheduler.schedule(&mut cycle, &request, &candidates) {
            Ok(result) => {
                for plugin in loaded.pre_requests() {
                    plugin
                        .as_pre_request()
                        .unwrap()
                        .pre_request(&mut request, &result);
                }
                let profiles = result
                    .profile_results
                    .iter()
                    .map(|(name, result)| {
                        let targets = result.as_ref().map_or("none".to_owned(), |r| {
                            r.targets
                                .iter()
                                .map(|t| t.address.as_str())
                                .collect::<Vec<_>>()
                                .join(",")
                        });
                        format!("{name}={targets}")
                    })
                    .collect::<Vec<_>>()
                    .join(" ");
                let headers = request
                    .headers
                    .iter()
                    .map(|(k, v)| format!(" {k}: {v}"))
                    .collect::<String>();
                out.push_str(&format!(
                    "primary={} {profiles}{headers}\n",
                    result.primary_profile
                ));
            }
            Err(error) => out.push_str(&format!("error: {error}\n")),
        }
    }
    expect.assert_eq(&out);
}

fn check(config_yaml: &str, table: &str, expect: Expect) {
    check_prompts(config_yaml, table, &["hello"], expect);
}

#[test]
fn queue_scorer_prefers_the_shortest_queue() {
    check(
        "
plugins:
- type: queue-scorer
",
        "
10.0.0.1:8000 q=5
10.0.0.2:8000 q=1
10.0.0.3:8000 q=9
",
        expect![[r#"
            primary=default default=10.0.0.2:8000
        "#]],
    );
}

#[test]
fn weights_trade_queue_against_kv_usage() {
    // queue: .1 -> 1, .2 -> 0; kv: .1 -> 0.1, .2 -> 0.9. Weight 3 on kv flips the pick.
    let table = "
10.0.0.1:8000 q=0 kv=0.9
10.0.0.2:8000 q=4 kv=0.1
";
    let config = |kv_weight: u32| {
        format!(
            "
plugins:
- type: queue-scorer
- type: kv-cache-utilization-scorer
schedulingProfiles:
- name: default
  plugins:
  - pluginRef: queue-scorer
  - pluginRef: kv-cache-utilization-scorer
    weight: {kv_weight}
"
        )
    };
    check(
        &config(1),
        table,
        expect![[r#"
        primary=default default=10.0.0.1:8000
    "#]],
    );
    check(
        &config(3),
        table,
        expect![[r#"
        primary=default default=10.0.0.2:8000
    "#]],
    );
}

#[test]
fn load_aware_scorer_saturates_at_its_threshold() {
    check(
        "
plugins:
- type: load-aware-scorer
  parameters: { threshold: 10 }
- type: max-score-picker
  parameters: { maxNumOfEndpoints: 2 }
",
        "
10.0.0.1:8000 q=10
10.0.0.2:8000 q=3
10.0.0.3:8000 q=0
",
        expect![[r#"
            primary=default default=10.0.0.3:8000,10.0.0.2:8000
        "#]],
    );
}

#[test]
fn decode_filter_keeps_decoders_and_unlabelled_pods() {
    check(
        "
plugins:
- type: decode-filter
- type: max-score-picker
  parameters: { maxNumOfEndpoints: 8 }
- type: queue-scorer
",
        "
10.0.0.1:8000 role=prefill q=0
10.0.0.2:8000 role=decode q=1
10.0.0.3:8000 q=2
10.0.0.4:8000 role=both q=3
",
        expect![[r#"
            primary=default default=10.0.0.2:8000,10.0.0.3:8000,10.0.0.4:8000
        "#]],
    );
}

#[test]
fn label_selector_filter_matches_labels_and_expressions() {
    check(
        "
plugins:
- type: label-selector-filter
  parameters:
    matchLabels: { zone: a }
    matchExpressions:
    - { key: gpu, operator: NotIn, values: [t4] }
- type: queue-scorer
",
        "
10.0.0.1:8000 zone=a gpu=t4 q=0
10.0.0.2:8000 zone=b gpu=h100 q=0
10.0.0.3:8000 zone=a gpu=h100 q=5
",
        expect![[r#"
            primary=default default=10.0.0.3:8000
        "#]],
    );
}

#[test]
fn a_filter_that_removes_everything_fails_the_profile() {
    check(
        "
plugins:
- type: prefill-filter
",
        "
10.0.0.1:8000 role=decode
",
        expect![[r#"
            error: no endpoint fits the request in profile default
        "#]],
    );
}

#[test]
fn approximate_prefix_scorer_sends_a_shared_prefix_back_where_it_went() {
    let long = "You are a helpful assistant. ".repeat(10);
    let first = format!("{long} Question one?");
    let second = format!("{long} Question two?");
    let other =
        "Completely different text that shares nothing with the system prompt, none.".repeat(2);
    // The prefix affinity (weight 3) outweighs the queue (weight 1) once .1 has seen the
    // prefix, even after the queues flip; an unrelated prompt follows the queue.
    check_sequence(
        "
plugins:
- type: prefix-cache-scorer
  parameters: { hashBlockSize: 16 }
- type: queue-scorer
schedulingProfiles:
- name: default
  plugins:
  - pluginRef: prefix-cache-scorer
    weight: 3
  - pluginRef: queue-scorer
",
        &[
            ("10.0.0.1:8000 q=0\n10.0.0.2:8000 q=1", &first),
            ("10.0.0.1:8000 q=1\n10.0.0.2:8000 q=0", &second),
            ("10.0.0.1:8000 q=1\n10.0.0.2:8000 q=0", &other),
        ],
        expect![[r#"
            primary=default default=10.0.0.1:8000
            primary=default default=10.0.0.1:8000
            primary=default default=10.0.0.2:8000
        "#]],
    );
}

const PD_CONFIG: &str = "
plugins:
- type: prefill-header-handler
- type: prefill-filter
- type: decode-filter
- type: queue-scorer
- type: prefix-cache-scorer
  parameters: { hashBlockSize: 8 }
- type: pd-profile-handler
  parameters: { threshold: 40 }
schedulingProfiles:
- name: prefill
  plugins:
  - pluginRef: prefill-filter
  - pluginRef: queue-scorer
- name: decode
  plugins:
  - pluginRef: decode-filter
  - pluginRef: prefix-cache-scorer
    weight: 2
  - pluginRef: queue-scorer
";

#[test]
fn pd_handler_disaggregates_long_uncached_prompts_only() {
    let long = "x".repeat(200);
    let long_again = format!("{long}y");
    check_prompts(
        PD_CONFIG,
        "
10.0.0.1:8000 role=prefill q=0
10.0.0.2:8000 role=prefill q=3
10.0.0.3:8000 role=decode q=0
",
        &["short", &long, &long_again],
        expect![[r#"
            primary=decode decode=10.0.0.3:8000
            primary=decode decode=10.0.0.3:8000 prefill=10.0.0.1:8000 x-prefiller-host-port: 10.0.0.1:8000
            primary=decode decode=10.0.0.3:8000
        "#]],
    );
}

#[test]
fn pd_handler_without_decoders_fails() {
    check(
        PD_CONFIG,
        "
10.0.0.1:8000 role=prefill
",
        expect![[r#"
            error: no endpoint fits the request in profile decode
        "#]],
    );
}

#[test]
fn random_picker_spreads_over_every_candidate() {
    let handle = handle();
    let loaded = config::load(
        &config::parse("plugins:\n- type: random-picker\n").unwrap(),
        &plugins::in_tree(),
        &handle,
    )
    .unwrap();
    let candidates = endpoints("10.0.0.1:1\n10.0.0.2:1\n10.0.0.3:1\n10.0.0.4:1");
    let request = InferenceRequest::new("r", "m", Prompt::Text("x".to_owned()));
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..400 {
        let result = loaded
            .scheduler
            .schedule(&mut CycleState::default(), &request, &candidates)
            .unwrap();
        seen.insert(result.primary_targets()[0].address.clone());
    }
    assert_eq!(
        seen.len(),
        4,
        "400 random picks over 4 endpoints hit them all: {seen:?}"
    );
}

#[test]
fn no_candidates_is_an_error_not_a_panic() {
    check(
        "plugins:\n- type: queue-scorer\n",
        "",
        expect![[r#"
        error: no candidate endpoints
    "#]],
    );
}

const PD_DECIDER_CONFIG: &str = "
plugins:
- type: prefill-header-handler
- type: prefill-filter
- type: decode-filter
- type: queue-scorer
- type: prefix-cache-scorer
  parameters: { hashBlockSize: 8 }
- type: prefix-based-pd-decider
  parameters: { nonCachedTokens: 20, prefixPluginName: prefix-cache-scorer }
- type: pd-profile-handler
  parameters: { deciderPluginName: prefix-based-pd-decider }
schedulingProfiles:
- name: prefill
  plugins:
  - pluginRef: prefill-filter
  - pluginRef: queue-scorer
- name: decode
  plugins:
  - pluginRef: decode-filter
  - pluginRef: prefix-cache-scorer
    weight: 2
  - pluginRef: queue-scorer
";

#[test]
fn prefix_based_decider_counts_uncached_tokens() {
    // 61 tokens the first time (disaggregated); the same prompt again is cached on the
    // decode pod, so fewer than 20 new tokens remain and it decodes in place; a short prompt
    // never reaches the threshold.
    let long = "word ".repeat(60);
    let long_again = format!("{long}again");
    check_prompts(
        PD_DECIDER_CONFIG,
        "
10.0.0.1:8000 role=prefill q=0
10.0.0.3:8000 role=decode q=0
",
        &["short", &long, &long_again],
        expect![[r#"
            primary=decode decode=10.0.0.3:8000
            primary=decode decode=10.0.0.3:8000 prefill=10.0.0.1:8000 x-prefiller-host-port: 10.0.0.1:8000
            primary=decode decode=10.0.0.3:8000
        "#]],
    );
}

#[test]
fn decider_references_are_checked_when_the_config_loads() {
    let load = |handler_parameters: &str, extra_plugin: &str| {
        let yaml = format!(
            "plugins:\n- type: prefill-filter\n- type: decode-filter\n{extra_plugin}- type: pd-profile-handler\n  parameters: {handler_parameters}\nschedulingProfiles:\n- name: prefill\n  plugins: [{{pluginRef: prefill-filter}}]\n- name: decode\n  plugins: [{{pluginRef: decode-filter}}]\n"
        );
        config::load(
            &config::parse(&yaml).unwrap(),
            &plugins::in_tree(),
            &handle(),
        )
        .map(|_| ())
        .map_err(|error| {
            let mut text = error.to_string();
            if let Some(source) = std::error::Error::source(&error) {
                text = format!("{text}: {source}");
            }
            text
        })
    };
    expect![[r#"
        Err("plugin \"pd-profile-handler\": deciderPluginName \"nothing\" is not a declared plugin")
        Err("plugin \"pd-profile-handler\": deciderPluginName \"decode-filter\" is a decode-filter, not a P/D decider")
        Err("plugin \"pd-profile-handler\" (type \"pd-profile-handler\"): parameter threshold: a deciderPluginName decides instead; set one of the two")
        Ok(())
    "#]]
    .assert_eq(&format!(
        "{:?}\n{:?}\n{:?}\n{:?}\n",
        load("{ deciderPluginName: nothing }", ""),
        load("{ deciderPluginName: decode-filter }", ""),
        load(
            "{ deciderPluginName: always, threshold: 5 }",
            "- type: always-disagg-pd-decider\n  name: always\n"
        ),
        load(
            "{ deciderPluginName: always }",
            "- type: always-disagg-pd-decider\n  name: always\n"
        ),
    ));
}
