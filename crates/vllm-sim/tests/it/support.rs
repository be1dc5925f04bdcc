//! Shared helpers: spawning simulators, HTTP calls, exposition parsing.

use std::collections::BTreeMap;

use serde_json::Value;

pub(crate) async fn sim(extra: &[&str]) -> vllm_sim::Server {
    let mut args = vec!["vllm-sim", "--model", "test-model", "--port", "0"];
    args.extend_from_slice(extra);
    let config = vllm_sim::Config::from_args(args).expect("valid flags");
    vllm_sim::spawn(config).await.expect("simulator starts")
}

pub(crate) fn client() -> reqwest::Client {
    // reqwest is built without a bundled crypto provider (one TLS provider in the graph).
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .pool_max_idle_per_host(512)
        .build()
        .expect("client")
}

/// POSTs `body` as JSON; returns status and parsed body.
pub(crate) async fn post(url: &str, body: &Value) -> (u16, Value) {
    let response = client().post(url).json(body).send().await.expect("request");
    let status = response.status().as_u16();
    let bytes = response.bytes().await.expect("body");
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// One sample line of the text exposition.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Sample {
    pub(crate) name: String,
    pub(crate) labels: BTreeMap<String, String>,
    pub(crate) value: f64,
}

/// Families (`# TYPE` lines) and samples of a scrape.
#[derive(Debug, Default)]
pub(crate) struct Exposition {
    pub(crate) types: BTreeMap<String, String>,
    pub(crate) samples: Vec<Sample>,
}

impl Exposition {
    pub(crate) fn parse(text: &str) -> Exposition {
        let mut exposition = Exposition::default();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').expect("TYPE line");
                exposition.types.insert(name.to_owned(), kind.to_owned());
                continue;
            }
            if line.starts_with('#') || line.is_empty() {
                continue;
            }
            let (series, value) = line.rsplit_once(' ').expect("sample line");
            let (name, labels) = match series.split_once('{') {
                None => (series.to_owned(), BTreeMap::new()),
                Some((name, rest)) => {
                    let body = rest.strip_suffix('}').expect("closing brace");
                    let labels = body
                        .split("\",")
                        .filter(|pair| !pair.is_empty())
                        .map(|pair| {
                            let (key, value) = pair.split_once("=\"").expect("label pair");
                            (key.to_owned(), value.trim_end_matches('"').to_owned())
                        })
                        .collect();
                    (name.to_owned(), labels)
                }
            };
            let value = match value {
                "+Inf" => f64::INFINITY,
                other => other.parse().expect("sample value"),
            };
            exposition.samples.push(Sample {
                name,
                labels,
                value,
            });
        }
        exposition
    }

    /// The value of the one sample named `name` whose labels include `labels`.
    pub(crate) fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.samples
            .iter()
            .find(|s| {
                s.name == name
                    && labels
                        .iter()
                        .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|s| s.value)
    }
}

pub(crate) async fn scrape(server: &vllm_sim::Server) -> Exposition {
    let text = client()
        .get(format!("{}/metrics", server.url()))
        .send()
        .await
        .expect("scrape")
        .text()
        .await
        .expect("scrape body");
    Exposition::parse(&text)
}
