//! Every PromQL expression of the committed dashboards, evaluated by a real Prometheus that
//! scrapes two in-process vLLM simulators (one named like a prefill pod, one like a decode
//! pod) after they served traffic.
//!
//! Proves: the generated scrape config passes `promtool check config`; every expression
//! parses and evaluates; every expression whose metric families the simulators export
//! returns data (all curated vLLM overview panels among them); and each `label_values`
//! variable finds values. Families no running component exports yet (EPP, P/D proxy, NIXL)
//! are checked for evaluation only.

use std::{
    collections::{BTreeMap, BTreeSet},
    time::Duration,
};

use e2e::{
    http_client,
    prometheus::{self, Prometheus, ScrapeTarget},
    tools, workspace_root,
};
use metrics_schema::vllm;
use serde_json::{Value, json};

const NAMESPACE: &str = "llm-d-e2e";
const MODEL: &str = "e2e-model";
/// Where the first samples must have arrived (P11: target discovery alone takes ~5 s).
const FIRST_SAMPLE_TIMEOUT: Duration = Duration::from_secs(45);
/// How often Prometheus scrapes the simulators.
const SCRAPE_INTERVAL: Duration = Duration::from_secs(1);
/// Grafana's built-in variables and what the test puts in their place.
const BUILTINS: &[(&str, &str)] = &[
    ("$__rate_interval", "1m"),
    ("$__interval", "1m"),
    ("$__range", "5m"),
];

struct Sim {
    pod: &'static str,
    server: vllm_sim::Server,
}

async fn spawn_sim(pod: &'static str) -> Sim {
    let config = vllm_sim::Config::from_args([
        "vllm-sim",
        "--model",
        MODEL,
        "--port",
        "0",
        "--time-to-first-token",
        "5",
        "--inter-token-latency",
        "1",
    ])
    .expect("valid simulator flags");
    let server = vllm_sim::spawn(config).await.expect("simulator starts");
    Sim { pod, server }
}

/// Chat and completion requests, streaming and not, some cut by `max_tokens`.
async fn drive_traffic(sims: &[Sim]) {
    let client = http_client();
    let mut requests = tokio::task::JoinSet::new();
    for sim in sims {
        for n in 0..16u32 {
            let client = client.clone();
            let url = sim.server.url();
            requests.spawn(async move {
                let (path, body) = if n % 2 == 0 {
                    (
                        "/v1/chat/completions",
                        json!({
                            "model": MODEL,
                            "messages": [{"role": "user", "content": format!("Tell me about pods, request {n}. Kubernetes schedules pods onto nodes.")}],
                            "max_tokens": 4 + n,
                            "stream": n % 4 == 0,
                        }),
                    )
                } else {
                    (
                        "/v1/completions",
                        json!({"model": MODEL, "prompt": "The quick brown fox jumps over the lazy dog", "max_tokens": 3 + n}),
                    )
                };
                let response = client
                    .post(format!("{url}{path}"))
                    .json(&body)
                    .send()
                    .await
                    .expect("request reaches the simulator");
                let status = response.status();
                let text = response.text().await.expect("response body");
                assert!(status.is_success(), "{path} answered {status}: {text}");
            });
        }
    }
    while let Some(joined) = requests.join_next().await {
        joined.expect("request task");
    }
}

/// Family names with at least one sample in a simulator's exposition.
async fn exported_families(sims: &[Sim]) -> BTreeSet<String> {
    let client = http_client();
    let mut samples = BTreeSet::new();
    for sim in sims {
        let text = client
            .get(format!("{}/metrics", sim.server.url()))
            .send()
            .await
            .expect("scrape")
            .text()
            .await
            .expect("exposition");
        for line in text.lines().filter(|line| !line.starts_with('#')) {
            let end = line.find(['{', ' ']).unwrap_or(line.len());
            samples.insert(line[..end].to_owned());
        }
    }
    metrics_schema::all()
        .iter()
        .filter(|metric| {
            samples.iter().any(|sample| {
                sample == metric.name
                    || ["_bucket", "_sum", "_count"]
                        .iter()
                        .any(|suffix| *sample == format!("{}{suffix}", metric.name))
            })
        })
        .map(|metric| metric.name.to_owned())
        .collect()
}

/// Schema families an expression names: a family name followed by a non-identifier
/// character, directly or after a histogram suffix.
fn families_in(expr: &str) -> BTreeSet<&'static str> {
    let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    let mut found = BTreeSet::new();
    for metric in metrics_schema::all() {
        for (start, _) in expr.match_indices(metric.name) {
            let before_ok = expr[..start]
                .chars()
                .next_back()
                .is_none_or(|c| !is_ident(c));
            let rest = &expr[start + metric.name.len()..];
            let rest = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|suffix| rest.strip_prefix(suffix))
                .unwrap_or(rest);
            let after_ok = rest.chars().next().is_none_or(|c| !is_ident(c));
            if before_ok && after_ok {
                found.insert(metric.name);
            }
        }
    }
    found
}

/// One dashboard query, with its origin for messages.
struct Query {
    dashboard: String,
    panel: String,
    /// In a row that is expanded by default (curated), not a collapsed derived row.
    curated: bool,
    expr: String,
}

fn load_dashboards() -> (Vec<Query>, Vec<(String, String, String)>) {
    let dir = workspace_root().join("dashboards");
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|error| panic!("{}: {error}", dir.display()))
        .map(|entry| entry.expect("dir entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    paths.sort();
    assert!(
        paths.len() >= 4,
        "expected the generated dashboards in {}",
        dir.display()
    );
    let mut queries = Vec::new();
    let mut variables = Vec::new();
    for path in paths {
        let dashboard: Value =
            serde_json::from_str(&std::fs::read_to_string(&path).expect("read dashboard"))
                .expect("dashboard JSON");
        let uid = dashboard["uid"].as_str().expect("uid").to_owned();
        let mut substitutions: Vec<(String, String)> = BUILTINS
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect();
        for variable in dashboard["templating"]["list"]
            .as_array()
            .expect("variables")
        {
            let name = variable["name"].as_str().expect("variable name");
            match variable["type"].as_str() {
                Some("query") => {
                    substitutions.push((format!("${name}"), ".*".to_owned()));
                    let definition = variable["query"]["query"].as_str().expect("query");
                    variables.push((uid.clone(), name.to_owned(), definition.to_owned()));
                }
                Some("textbox") => {
                    let default = variable["query"].as_str().expect("textbox default");
                    substitutions.push((format!("${name}"), default.to_owned()));
                }
                _ => {}
            }
        }
        // Longest first, so `$__range` is not taken for a `$__r...` prefix of another name.
        substitutions.sort_by_key(|(name, _)| std::cmp::Reverse(name.len()));
        for panel in dashboard["panels"].as_array().expect("panels") {
            let nested = panel["panels"].as_array().cloned().unwrap_or_default();
            let curated = panel["type"] != "row";
            let in_collapsed_row = panel["collapsed"] == true;
            for (inner, curated) in std::iter::once((panel, curated))
                .chain(nested.iter().map(|inner| (inner, !in_collapsed_row)))
            {
                for target in inner["targets"].as_array().into_iter().flatten() {
                    let mut expr = target["expr"].as_str().expect("expr").to_owned();
                    for (name, value) in &substitutions {
                        expr = expr.replace(name, value);
                    }
                    assert!(
                        !expr.contains('$'),
                        "{uid}: unsubstituted variable in `{expr}`"
                    );
                    queries.push(Query {
                        dashboard: uid.clone(),
                        panel: inner["title"].as_str().unwrap_or_default().to_owned(),
                        curated,
                        expr,
                    });
                }
            }
        }
    }
    (queries, variables)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_dashboard_query_evaluates_on_real_prometheus() {
    let prometheus_bin = tools::prometheus().unwrap_or_else(|error| panic!("{error}"));
    let promtool_bin = tools::promtool().unwrap_or_else(|error| panic!("{error}"));

    let sims = vec![
        spawn_sim("vllm-sim-prefill-0").await,
        spawn_sim("vllm-sim-decode-0").await,
    ];
    let targets: Vec<ScrapeTarget> = sims
        .iter()
        .map(|sim| ScrapeTarget {
            job: "vllm-sim".to_owned(),
            addr: sim.server.addr(),
            labels: BTreeMap::from([
                ("namespace".to_owned(), NAMESPACE.to_owned()),
                ("pod".to_owned(), sim.pod.to_owned()),
            ]),
        })
        .collect();
    let config = prometheus::scrape_config(&targets, SCRAPE_INTERVAL);
    let server = Prometheus::start(&prometheus_bin, &config)
        .await
        .unwrap_or_else(|error| panic!("{error}"));
    let promtool_output = prometheus::check_config(&promtool_bin, server.config_path())
        .unwrap_or_else(|error| panic!("{error}\n--- config ---\n{config}"));
    assert!(promtool_output.contains("SUCCESS"), "{promtool_output}");

    // One sample from each pod before traffic, so rates see the traffic as an increase.
    let running = format!(
        "{}{{namespace=\"{NAMESPACE}\"}}",
        vllm::NUM_REQUESTS_RUNNING.name
    );
    server
        .wait_for_series(&running, sims.len(), FIRST_SAMPLE_TIMEOUT)
        .await
        .unwrap_or_else(|error| panic!("{error}"));
    drive_traffic(&sims).await;
    // Every metric the traffic touched is recorded before the client has its response. Series
    // born during the traffic (per-handler HTTP families) need two scrapes after it before
    // `rate()` sees them, so wait for a scrape that starts 1.5 scrape intervals later.
    let traffic_done = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs_f64();
    server
        .wait_for_series(
            &format!(
                "timestamp(up{{job=\"vllm-sim\"}}) > {}",
                traffic_done + 1.5 * SCRAPE_INTERVAL.as_secs_f64()
            ),
            sims.len(),
            FIRST_SAMPLE_TIMEOUT,
        )
        .await
        .unwrap_or_else(|error| panic!("{error}"));
    let increased = format!(
        "increase({}_count[1m]) > 0",
        vllm::E2E_REQUEST_LATENCY_SECONDS.name
    );
    server
        .wait_for_series(&increased, sims.len(), FIRST_SAMPLE_TIMEOUT)
        .await
        .unwrap_or_else(|error| panic!("{error}"));

    let exported = exported_families(&sims).await;
    let (queries, variables) = load_dashboards();
    let mut failures = Vec::new();
    let mut must_have_data = 0;
    let mut curated_vllm_checked = 0;
    for query in &queries {
        let families = families_in(&query.expr);
        let expect_data = !families.is_empty() && families.iter().all(|f| exported.contains(*f));
        match server.query(&query.expr).await {
            Err(error) => failures.push(format!("{} / {}: {error}", query.dashboard, query.panel)),
            Ok(result) if expect_data && result.is_empty() => failures.push(format!(
                "{} / {}: no data for `{}` although the simulators export {families:?}",
                query.dashboard, query.panel, query.expr
            )),
            Ok(_) => {}
        }
        if expect_data {
            must_have_data += 1;
        }
        if query.dashboard == "llm-d-vllm-overview" && query.curated {
            if !expect_data {
                failures.push(format!(
                    "curated vLLM panel `{}` reads families the simulator does not export: `{}`",
                    query.panel, query.expr
                ));
            }
            curated_vllm_checked += 1;
        }
    }
    for (dashboard, name, definition) in &variables {
        let metric = definition
            .strip_prefix("label_values(")
            .and_then(|rest| rest.split_once(','))
            .map(|(metric, _)| metric)
            .unwrap_or_else(|| panic!("{dashboard}: unexpected variable query {definition}"));
        let expr = format!("count by ({name}) ({metric})");
        match server.query(&expr).await {
            Err(error) => failures.push(format!("{dashboard} / variable {name}: {error}")),
            Ok(result) if exported.contains(metric) && result.is_empty() => {
                failures.push(format!(
                    "{dashboard} / variable {name}: `{expr}` found no values"
                ));
            }
            Ok(_) => {}
        }
    }

    for sim in sims {
        sim.server.shutdown().await.expect("simulator shuts down");
    }
    assert!(
        failures.is_empty(),
        "{} of {} dashboard queries failed:\n{}\n--- prometheus log ---\n{}",
        failures.len(),
        queries.len(),
        failures.join("\n"),
        server.log()
    );
    assert!(queries.len() > 300, "only {} queries found", queries.len());
    assert!(
        curated_vllm_checked >= 20,
        "only {curated_vllm_checked} curated vLLM queries"
    );
    assert!(
        must_have_data >= 100,
        "only {must_have_data} queries were expected to return data"
    );
}
