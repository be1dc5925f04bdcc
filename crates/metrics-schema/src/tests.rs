//! Naming rules for every metric, label, span and attribute (STYLE rule 12), checked over
//! [`crate::all`] so a new module is covered without touching this file.

use std::collections::{BTreeMap, BTreeSet};

use crate::{Buckets, Kind, MetricDef, Origin, SpanKind, Unit, labels, spans};

/// Name prefix each module's own (`Origin::Ours`) metrics must carry.
const OURS_PREFIX: &[(&str, &str)] = &[
    ("epp", "llm_d_epp_"),
    ("pd_proxy", "llm_d_inference_scheduler_pd_proxy_"),
    ("kv_index", "llm_d_"),
    ("pool", "llm_d_pool_"),
    ("load_gen", "llm_d_load_gen_"),
    ("sim", "llm_d_sim_"),
    ("vllm", "vllm:"),
];

/// Suffixes whose unit is fixed, in both directions: the unit implies the suffix and the
/// suffix implies the unit.
const UNIT_SUFFIXES: &[(Unit, &str)] = &[
    (Unit::Seconds, "_seconds"),
    (Unit::Bytes, "_bytes"),
    (Unit::Ratio, "_ratio"),
    (Unit::Info, "_info"),
];

/// Suffixes that imply a unit (a `_tokens` name counts tokens), not the other way round.
const SUFFIX_IMPLIES_UNIT: &[(&str, Unit)] =
    &[("_tokens", Unit::Tokens), ("_blocks", Unit::Blocks)];

fn is_snake_case(name: &str) -> bool {
    !name.is_empty()
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && !name.ends_with('_')
        && !name.contains("__")
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

fn is_sentence(text: &str) -> bool {
    text.starts_with(|c: char| c.is_ascii_uppercase()) && text.ends_with('.') && text.contains(' ')
}

/// Every problem with one of our own metrics; an empty list means it follows the rules.
fn naming_problems(metric: &MetricDef, prefix: &str) -> Vec<String> {
    let name = metric.name;
    let mut problems = Vec::new();
    if !is_snake_case(name) {
        problems.push("name is not snake_case".to_owned());
    }
    if !name.starts_with(prefix) {
        problems.push(format!("name does not start with `{prefix}`"));
    }
    // llm_d_<subsystem>_<name>[_<unit>]: at least four words.
    if name.split('_').count() < 4 {
        problems.push("name has no subsystem or no metric part".to_owned());
    }
    let base = match metric.kind {
        Kind::Counter => match name.strip_suffix("_total") {
            Some(base) => base,
            None => {
                problems.push("counter does not end in `_total`".to_owned());
                name
            }
        },
        Kind::Gauge | Kind::Histogram => {
            if name.ends_with("_total") {
                problems.push(format!("{:?} ends in `_total`", metric.kind));
            }
            name
        }
    };
    for (unit, suffix) in UNIT_SUFFIXES {
        if metric.unit == *unit && !base.ends_with(suffix) {
            problems.push(format!("unit {unit:?} but name does not end in `{suffix}`"));
        }
        if base.ends_with(suffix) && metric.unit != *unit {
            problems.push(format!(
                "name ends in `{suffix}` but unit is {:?}",
                metric.unit
            ));
        }
    }
    for (suffix, unit) in SUFFIX_IMPLIES_UNIT {
        if base.ends_with(suffix) && metric.unit != *unit {
            problems.push(format!(
                "name ends in `{suffix}` but unit is {:?}",
                metric.unit
            ));
        }
    }
    if metric.unit == Unit::Info && metric.kind != Kind::Gauge {
        problems.push("info metric is not a gauge".to_owned());
    }
    if !is_sentence(metric.help) {
        problems.push(format!("help {:?} is not a sentence", metric.help));
    }
    problems
}

fn module_of(metric: &MetricDef) -> &'static str {
    crate::MODULES
        .iter()
        .find(|(_, metrics)| {
            metrics
                .iter()
                .any(|candidate| candidate.name == metric.name)
        })
        .map(|(module, _)| *module)
        .expect("every metric of all() comes from a module")
}

#[test]
fn our_metric_names_follow_the_rules() {
    let mut problems = Vec::new();
    for metric in crate::all()
        .into_iter()
        .filter(|metric| metric.origin == Origin::Ours)
    {
        let module = module_of(metric);
        let prefix = OURS_PREFIX
            .iter()
            .find(|(candidate, _)| *candidate == module)
            .map(|(_, prefix)| *prefix)
            .unwrap_or_else(|| panic!("module {module} has no prefix rule in OURS_PREFIX"));
        for problem in naming_problems(metric, prefix) {
            problems.push(format!("{}: {problem}", metric.name));
        }
    }
    assert!(
        problems.is_empty(),
        "naming rules broken:\n{}",
        problems.join("\n")
    );
}

#[test]
fn naming_rules_reject_bad_names() {
    // The rule checker itself: each of these breaks exactly the rule in its help.
    let good = crate::pd_proxy::TOTAL_DURATION_SECONDS;
    assert_eq!(
        naming_problems(&good, "llm_d_inference_scheduler_pd_proxy_"),
        Vec::<String>::new()
    );
    let cases = [
        MetricDef {
            name: "llm_d_epp_decisions",
            kind: Kind::Counter,
            unit: Unit::Count,
            ..good
        },
        MetricDef {
            name: "llm_d_epp_duration_ms",
            ..good
        },
        MetricDef {
            name: "llm_d_epp_size_bytes",
            unit: Unit::Count,
            ..good
        },
        MetricDef {
            name: "llm_d_epp_hit_ratio",
            unit: Unit::Count,
            ..good
        },
        MetricDef {
            name: "llm_d_epp_Latency_seconds",
            ..good
        },
        MetricDef {
            name: "llm_d_seconds",
            ..good
        },
        MetricDef {
            name: "other_epp_latency_seconds",
            ..good
        },
        MetricDef {
            name: "llm_d_epp_build",
            kind: Kind::Gauge,
            unit: Unit::Info,
            ..good
        },
        MetricDef {
            name: "llm_d_epp_latency_seconds",
            help: "latency in seconds",
            ..good
        },
        MetricDef {
            name: "llm_d_epp_prompt_tokens",
            unit: Unit::Count,
            ..good
        },
    ];
    for case in cases {
        let prefix = if case.name.starts_with("other") {
            "llm_d_"
        } else {
            "llm_d_epp_"
        };
        assert!(
            !naming_problems(&case, prefix).is_empty(),
            "{} passed the naming rules",
            case.name
        );
    }
}

#[test]
fn names_and_aliases_are_unique() {
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for metric in crate::all() {
        *seen.entry(metric.name).or_default() += 1;
        if let Some(alias) = metric.deprecated_alias {
            *seen.entry(alias).or_default() += 1;
        }
    }
    let duplicates: Vec<&str> = seen
        .into_iter()
        .filter(|(_, count)| *count > 1)
        .map(|(name, _)| name)
        .collect();
    assert!(
        duplicates.is_empty(),
        "names used more than once: {duplicates:?}"
    );
}

#[test]
fn aliases_are_upstream_names() {
    for metric in crate::all() {
        if let Some(alias) = metric.deprecated_alias {
            assert!(
                is_snake_case(alias),
                "{}: alias {alias} is not snake_case",
                metric.name
            );
            assert_ne!(alias, metric.name);
        }
    }
}

#[test]
fn every_module_metric_is_in_all() {
    let all: BTreeSet<&str> = crate::all().into_iter().map(|metric| metric.name).collect();
    let count: usize = crate::MODULES
        .iter()
        .map(|(_, metrics)| metrics.len())
        .sum();
    assert_eq!(all.len(), count, "a name appears in two modules");
    let sorted: Vec<&str> = crate::all().into_iter().map(|metric| metric.name).collect();
    assert!(
        sorted.windows(2).all(|pair| pair[0] < pair[1]),
        "all() is not sorted by name"
    );
    for name in [
        "vllm:num_requests_running",
        "llm_d_epp_request_total",
        "http_requests_total",
    ] {
        assert!(all.contains(name), "{name} missing from all()");
    }
}

#[test]
fn labels_are_snake_case_and_declared() {
    let declared: BTreeSet<&str> = labels::ALL.iter().map(|label| label.name).collect();
    assert_eq!(
        declared.len(),
        labels::ALL.len(),
        "labels::ALL has a duplicate name"
    );
    for label in labels::ALL {
        assert!(
            is_snake_case(label.name),
            "label {} is not snake_case",
            label.name
        );
        assert!(
            is_sentence(label.help),
            "label {}: help is not a sentence",
            label.name
        );
    }
    for metric in crate::all() {
        let names = metric.label_names();
        let unique: BTreeSet<&str> = names.iter().copied().collect();
        assert_eq!(
            unique.len(),
            names.len(),
            "{}: a label appears twice",
            metric.name
        );
        for label in metric.labels {
            assert!(
                labels::ALL.contains(&label),
                "{}: label {} is not a constant in labels::ALL",
                metric.name,
                label.name
            );
            assert_ne!(
                label.name, "le",
                "{}: `le` is reserved for buckets",
                metric.name
            );
        }
    }
}

#[test]
fn every_declared_label_is_used() {
    let used: BTreeSet<&str> = crate::all()
        .iter()
        .flat_map(|metric| metric.label_names())
        .collect();
    let unused: Vec<&str> = labels::ALL
        .iter()
        .map(|label| label.name)
        .filter(|name| !used.contains(name))
        .collect();
    assert!(unused.is_empty(), "labels no metric uses: {unused:?}");
}

#[test]
fn buckets_match_kind_and_increase_strictly() {
    for metric in crate::all() {
        match (metric.kind, metric.buckets) {
            (Kind::Histogram, Buckets::None) => {
                panic!("{}: histogram without buckets", metric.name)
            }
            (Kind::Counter | Kind::Gauge, Buckets::Explicit(_) | Buckets::OneTwoFiveUpTo) => {
                panic!("{}: buckets on a {:?}", metric.name, metric.kind)
            }
            _ => {}
        }
        for runtime_bound in [1, 4096, 131_072] {
            let bounds = metric.bucket_bounds(runtime_bound);
            assert!(
                bounds.iter().all(|bound| bound.is_finite()),
                "{}: non-finite bucket bound (+Inf is implicit)",
                metric.name
            );
            assert!(
                bounds.windows(2).all(|pair| pair[0] < pair[1]),
                "{}: buckets not strictly increasing: {bounds:?}",
                metric.name
            );
            if metric.kind == Kind::Histogram {
                assert!(!bounds.is_empty(), "{}: no bucket bounds", metric.name);
            }
        }
    }
}

#[test]
fn one_two_five_series() {
    assert_eq!(crate::one_two_five_up_to(0), Vec::<f64>::new());
    assert_eq!(crate::one_two_five_up_to(1), vec![1.0]);
    assert_eq!(
        crate::one_two_five_up_to(50),
        vec![1.0, 2.0, 5.0, 10.0, 20.0, 50.0]
    );
    assert_eq!(crate::one_two_five_up_to(4096).last(), Some(&2000.0));
    assert_eq!(crate::one_two_five_up_to(u64::MAX).len(), 58);
}

#[test]
fn upstream_origins_name_their_source() {
    for metric in crate::all() {
        if let Origin::Upstream { source } = metric.origin {
            assert!(
                !source.trim().is_empty(),
                "{}: empty upstream source",
                metric.name
            );
        }
    }
}

fn is_span_word(word: &str) -> bool {
    is_snake_case(word)
}

#[test]
fn spans_and_attributes_follow_the_rules() {
    let mut span_names = BTreeSet::new();
    for span in spans::ALL_SPANS {
        assert!(
            span_names.insert(span.name),
            "span {} listed twice",
            span.name
        );
        assert!(
            span.name.split('.').all(is_span_word),
            "span {} is not lowercase dot-separated words",
            span.name
        );
        if span.origin == Origin::Ours {
            assert!(
                span.name.starts_with("llm_d."),
                "our span {} lacks `llm_d.`",
                span.name
            );
        }
        assert!(
            is_sentence(span.help),
            "span {}: help is not a sentence",
            span.name
        );
        for attr in span.attributes {
            assert!(
                spans::attrs::ALL.contains(attr),
                "span {}: attribute {} is not in spans::attrs::ALL",
                span.name,
                attr.key
            );
        }
    }
    let mut keys = BTreeSet::new();
    for attr in spans::attrs::ALL {
        assert!(keys.insert(attr.key), "attribute {} listed twice", attr.key);
        assert!(
            attr.key.split('.').all(is_span_word),
            "attribute {} is not lowercase dot-separated words",
            attr.key
        );
        if attr.origin == Origin::Ours {
            assert!(
                attr.key.starts_with("llm_d."),
                "our attribute {} lacks `llm_d.`",
                attr.key
            );
        }
        assert!(
            is_sentence(attr.help),
            "attribute {}: help is not a sentence",
            attr.key
        );
    }
    let used: BTreeSet<&str> = spans::ALL_SPANS
        .iter()
        .flat_map(|span| span.attributes.iter().map(|attr| attr.key))
        .collect();
    let unused: Vec<&str> = keys.into_iter().filter(|key| !used.contains(key)).collect();
    assert!(unused.is_empty(), "attributes no span carries: {unused:?}");
}

#[test]
fn vllm_request_span_matches_the_wire_spec() {
    let span = spans::VLLM_LLM_REQUEST;
    assert_eq!((span.name, span.kind), ("llm_request", SpanKind::Server));
    let keys: Vec<&str> = span.attributes.iter().map(|attr| attr.key).collect();
    // vllm-wire.md §5: the attributes vLLM 0.33 actually emits, nothing more.
    let expected = [
        "gen_ai.request.id",
        "gen_ai.usage.prompt_tokens",
        "gen_ai.usage.completion_tokens",
        "gen_ai.latency.time_to_first_token",
        "gen_ai.latency.e2e",
        "gen_ai.latency.time_in_queue",
        "gen_ai.latency.time_in_model_prefill",
        "gen_ai.latency.time_in_model_decode",
        "gen_ai.latency.time_in_model_inference",
        "gen_ai.request.top_p",
        "gen_ai.request.max_tokens",
        "gen_ai.request.temperature",
        "gen_ai.request.n",
    ];
    assert_eq!(keys, expected);
}
