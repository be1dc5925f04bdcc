//! Strict parsing and GIE's defaults.

use std::sync::Arc;

use expect_test::{Expect, expect};

use crate::config::{load, parse};
use crate::framework::Handle;
use crate::plugins;
use crate::telemetry::Metrics;

fn handle() -> Handle {
    Handle {
        tokenizer: tokenizer::Tokenizer::embedded(),
        metrics: Arc::new(Metrics::unregistered()),
        registry: prometheus::Registry::new(),
    }
}

/// The error chain of loading `yaml`, or the profiles it built.
fn check(yaml: &str, expect: Expect) {
    let result = parse(yaml).and_then(|config| load(&config, &plugins::in_tree(), &handle()));
    let out = match result {
        Err(error) => {
            let mut text = format!("error: {error}");
            let mut source = std::error::Error::source(&error);
            while let Some(inner) = source {
                text.push_str(&format!("\n  caused by: {inner}"));
                source = inner.source();
            }
            text
        }
        Ok(loaded) => {
            let mut text = String::new();
            for profile in loaded.scheduler.profiles() {
                text.push_str(&format!("profile {}:", profile.name));
                for filter in &profile.filters {
                    text.push_str(&format!(" filter={}", filter.typed_name()));
                }
                for (scorer, weight) in &profile.scorers {
                    text.push_str(&format!(" scorer={}*{weight}", scorer.typed_name()));
                }
                text.push_str(&format!(" picker={}\n", profile.picker.typed_name()));
            }
            let names: Vec<String> = loaded
                .plugins
                .iter()
                .map(|p| p.typed_name().to_string())
                .collect();
            text.push_str(&format!("plugins: {}", names.join(" ")));
            text
        }
    };
    expect.assert_eq(&out);
}

#[test]
fn no_config_is_gies_default_scorers() {
    check(
        "",
        expect![[r#"
        profile default: scorer=queue-scorer/queue-scorer*2 scorer=kv-cache-utilization-scorer/kv-cache-utilization-scorer*2 scorer=prefix-cache-scorer/prefix-cache-scorer*3 picker=max-score-picker/max-score-picker
        plugins: queue-scorer/queue-scorer kv-cache-utilization-scorer/kv-cache-utilization-scorer prefix-cache-scorer/prefix-cache-scorer single-profile-handler/single-profile-handler max-score-picker/max-score-picker"#]],
    );
}

#[test]
fn no_profiles_builds_a_default_profile_of_every_filter_scorer_and_picker() {
    check(
        "
apiVersion: llm-d.ai/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: decode-filter
- type: queue-scorer
  name: q
- type: random-picker
",
        expect![[r#"
            profile default: filter=decode-filter/decode-filter scorer=queue-scorer/q*1 picker=random-picker/random-picker
            plugins: decode-filter/decode-filter queue-scorer/q random-picker/random-picker single-profile-handler/single-profile-handler"#]],
    );
}

#[test]
fn unknown_keys_are_named() {
    check(
        "plugins:\n- type: queue-scorer\n  paramters: {}\n",
        expect![[r#"
        error: config is not valid YAML for EndpointPickerConfig: plugins[0]: unknown field `paramters`, expected one of `type`, `name`, `parameters` at line 3 column 3
          caused by: plugins[0]: unknown field `paramters`, expected one of `type`, `name`, `parameters` at line 3 column 3"#]],
    );
    check(
        "schedulingProfile: []\n",
        expect![[r#"
        error: config is not valid YAML for EndpointPickerConfig: unknown field `schedulingProfile`, expected one of `apiVersion`, `kind`, `featureGates`, `plugins`, `schedulingProfiles`
          caused by: unknown field `schedulingProfile`, expected one of `apiVersion`, `kind`, `featureGates`, `plugins`, `schedulingProfiles`"#]],
    );
}

#[test]
fn unknown_plugin_parameters_are_named() {
    check(
        "plugins:\n- type: load-aware-scorer\n  parameters: { treshold: 3 }\n",
        expect![[r#"
        error: plugin "load-aware-scorer" (type "load-aware-scorer")
          caused by: parameters: unknown field `treshold`, expected `threshold`
          caused by: unknown field `treshold`, expected `threshold`"#]],
    );
}

#[test]
fn unknown_plugin_type_lists_the_known_ones() {
    check(
        "plugins:\n- type: magic-scorer\n  name: m\n",
        expect![[
            r#"error: plugin "m": unknown type "magic-scorer" (known types: always-disagg-pd-decider, by-label-selector, decode-filter, kv-cache-utilization-scorer, label-selector-filter, load-aware-scorer, max-score-picker, pd-profile-handler, precise-prefix-cache-scorer, prefill-filter, prefill-header-handler, prefix-based-pd-decider, prefix-cache-scorer, queue-scorer, random-picker, saturation-admitter, single-profile-handler)"#
        ]],
    );
}

#[test]
fn a_profile_naming_a_missing_plugin_is_an_error() {
    check(
        "
plugins:
- type: queue-scorer
schedulingProfiles:
- name: default
  plugins:
  - pluginRef: queue-scorer
  - pluginRef: kv-scorer
",
        expect![[
            r#"error: profile "default" references plugin "kv-scorer", which is not declared"#
        ]],
    );
}

#[test]
fn structural_mistakes_are_errors() {
    check(
        "
plugins:
- type: max-score-picker
- type: random-picker
schedulingProfiles:
- name: default
  plugins:
  - pluginRef: max-score-picker
  - pluginRef: random-picker
",
        expect![[
            r#"error: profile "default": a second picker "random-picker" after "max-score-picker""#
        ]],
    );
    check(
        "
plugins:
- type: queue-scorer
schedulingProfiles:
- name: a
  plugins: [{pluginRef: queue-scorer}]
- name: b
  plugins: [{pluginRef: queue-scorer}]
",
        expect![[
            r#"error: 2 profiles need a profile handler (such as pd-profile-handler); none is declared"#
        ]],
    );
    check(
        "
plugins:
- type: queue-scorer
- type: queue-scorer
",
        expect![[r#"error: plugin name "queue-scorer" is declared twice"#]],
    );
    check(
        "
plugins:
- type: queue-scorer
- type: single-profile-handler
schedulingProfiles:
- name: default
  plugins: [{pluginRef: single-profile-handler}]
",
        expect![[
            r#"error: profile "default": plugin "single-profile-handler" is not a filter, scorer or picker"#
        ]],
    );
    check(
        "
plugins:
- type: queue-scorer
schedulingProfiles:
- name: default
  plugins: [{pluginRef: queue-scorer, weight: -1}]
",
        expect![[
            r#"error: profile "default": weight -1 of "queue-scorer" must be a finite number >= 0"#
        ]],
    );
    check(
        "
plugins:
- type: queue-scorer
- type: pd-profile-handler
schedulingProfiles:
- name: decode
  plugins: [{pluginRef: queue-scorer}]
",
        expect![[
            r#"error: profile handler "pd-profile-handler" needs profile "prefill", which is not declared"#
        ]],
    );
    check(
        "apiVersion: v2\n",
        expect![[
            r#"error: apiVersion "v2" is not one of ["llm-d.ai/v1alpha1", "llm-d.ai/v1", "inference.networking.x-k8s.io/v1alpha1"]"#
        ]],
    );
    check(
        "featureGates: [flowControl]\n",
        expect![[r#"error: feature gate "flowControl" is unknown"#]],
    );
}

#[test]
fn the_pd_guide_config_loads() {
    // guides/pd-disaggregation/gaie-pd/values.yaml (helmfile era), "ALWAYS DO PD".
    check(
        "
apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: prefill-header-handler
- type: prefill-filter
- type: decode-filter
- type: queue-scorer
- type: pd-profile-handler
  parameters:
    threshold: 0
    hashBlockSize: 5
schedulingProfiles:
- name: prefill
  plugins:
  - pluginRef: prefill-filter
  - pluginRef: queue-scorer
    weight: 1.0
- name: decode
  plugins:
  - pluginRef: decode-filter
  - pluginRef: queue-scorer
    weight: 1.0
",
        expect![[r#"
            profile prefill: filter=prefill-filter/prefill-filter scorer=queue-scorer/queue-scorer*1 picker=max-score-picker/max-score-picker
            profile decode: filter=decode-filter/decode-filter scorer=queue-scorer/queue-scorer*1 picker=max-score-picker/max-score-picker
            plugins: prefill-header-handler/prefill-header-handler prefill-filter/prefill-filter decode-filter/decode-filter queue-scorer/queue-scorer pd-profile-handler/pd-profile-handler max-score-picker/max-score-picker"#]],
    );
}

#[test]
fn the_precise_prefix_guide_config_loads() {
    // guides/precise-prefix-cache-aware (gaie-kv-events), with a loopback endpoint.
    check(
        r#"
plugins:
- type: single-profile-handler
- type: precise-prefix-cache-scorer
  parameters:
    indexerConfig:
      tokenProcessorConfig: { blockSize: 64, hashSeed: "42" }
      kvBlockIndexConfig: { inMemoryConfig: { size: 100000000, podCacheSize: 10 }, enableMetrics: true }
    kvEventsConfig:
      topicFilter: "kv@"
      concurrency: 4
      discoverPods: false
      zmqEndpoint: "tcp://127.0.0.1:*"
- type: kv-cache-utilization-scorer
- type: queue-scorer
- type: max-score-picker
schedulingProfiles:
- name: default
  plugins:
  - pluginRef: precise-prefix-cache-scorer
    weight: 3.0
  - pluginRef: kv-cache-utilization-scorer
    weight: 2.0
  - pluginRef: queue-scorer
    weight: 2.0
  - pluginRef: max-score-picker
"#,
        expect![[r#"
            profile default: scorer=precise-prefix-cache-scorer/precise-prefix-cache-scorer*3 scorer=kv-cache-utilization-scorer/kv-cache-utilization-scorer*2 scorer=queue-scorer/queue-scorer*2 picker=max-score-picker/max-score-picker
            plugins: single-profile-handler/single-profile-handler precise-prefix-cache-scorer/precise-prefix-cache-scorer kv-cache-utilization-scorer/kv-cache-utilization-scorer queue-scorer/queue-scorer max-score-picker/max-score-picker"#]],
    );
}

#[test]
fn precise_scorer_rejects_what_it_cannot_do() {
    check(
        "plugins:\n- type: precise-prefix-cache-scorer\n  parameters: { kvEventsConfig: { discoverPods: true } }\n",
        expect![[r#"
            error: plugin "precise-prefix-cache-scorer" (type "precise-prefix-cache-scorer")
              caused by: parameter kvEventsConfig.discoverPods: per-pod subscriptions are not supported; engines connect to zmqEndpoint"#]],
    );
    check(
        "plugins:\n- type: precise-prefix-cache-scorer\n  parameters: { hashAlgo: md5, kvEventsConfig: { zmqEndpoint: 'tcp://127.0.0.1:*' } }\n",
        expect![[r#"
            error: plugin "precise-prefix-cache-scorer" (type "precise-prefix-cache-scorer")
              caused by: parameter hashAlgo: "md5" is not one of sha256, sha256_cbor, xxhash, xxhash_cbor"#]],
    );
}
