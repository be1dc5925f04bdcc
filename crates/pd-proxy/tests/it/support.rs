//! Shared helpers: P/D simulators, a sidecar in front of a decode simulator, scraping.

use std::{
    collections::{BTreeMap, HashMap},
    time::{Duration, Instant},
};

use futures::StreamExt;
use serde_json::Value;

pub(crate) const PRODUCER: &str = r#"{"kv_connector":"NixlConnector","kv_role":"kv_producer"}"#;
pub(crate) const CONSUMER: &str = r#"{"kv_connector":"NixlConnector","kv_role":"kv_consumer"}"#;

/// A simulator; with a `--kv-transfer-config`, its side channel binds an ephemeral port.
pub(crate) async fn sim(kv_transfer_config: Option<&str>, extra: &[&str]) -> vllm_sim::Server {
    let mut args = vec!["vllm-sim", "--model", "test-model", "--port", "0"];
    if let Some(kv) = kv_transfer_config {
        args.extend_from_slice(&["--kv-transfer-config", kv]);
    }
    args.extend_from_slice(extra);
    let env = vllm_sim::env::TestEnv(HashMap::from([
        (
            "VLLM_NIXL_SIDE_CHANNEL_HOST".to_owned(),
            "127.0.0.1".to_owned(),
        ),
        ("VLLM_NIXL_SIDE_CHANNEL_PORT".to_owned(), "0".to_owned()),
    ]));
    let config = vllm_sim::Config::parse(args, &env).expect("valid simulator flags");
    vllm_sim::spawn(config).await.expect("simulator starts")
}

/// A sidecar on 127.0.0.1:0 in front of `decoder`, metrics on an ephemeral port.
pub(crate) async fn sidecar(decoder: &vllm_sim::Server, extra: &[&str]) -> pd_proxy::Server {
    sidecar_with_env(decoder.addr().port(), extra, &[]).await
}

pub(crate) async fn sidecar_with_env(
    decoder_port: u16,
    extra: &[&str],
    env: &[(&str, &str)],
) -> pd_proxy::Server {
    pd_proxy::spawn(sidecar_config(decoder_port, extra, env))
        .await
        .expect("sidecar starts")
}

/// The configuration [`sidecar_with_env`] starts, for tests that adjust it first.
pub(crate) fn sidecar_config(
    decoder_port: u16,
    extra: &[&str],
    env: &[(&str, &str)],
) -> pd_proxy::Config {
    let port = decoder_port.to_string();
    let mut args = vec![
        "pd-proxy",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--vllm-port",
        &port,
        "--metrics-addr",
        "127.0.0.1:0",
    ];
    args.extend_from_slice(extra);
    pd_proxy::Config::parse(args, &pd_proxy::env::TestEnv::from_pairs(env))
        .expect("valid sidecar flags")
}

pub(crate) fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()
        .expect("client")
}

/// One sample line of the text exposition.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Sample {
    pub(crate) name: String,
    pub(crate) labels: BTreeMap<String, String>,
    pub(crate) value: f64,
}

/// The samples of a scrape.
#[derive(Debug, Default)]
pub(crate) struct Exposition {
    pub(crate) samples: Vec<Sample>,
}

impl Exposition {
    pub(crate) fn parse(text: &str) -> Exposition {
        let mut exposition = Exposition::default();
        for line in text.lines() {
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

    /// The sum of every sample named `name` whose labels include `labels` (0 when none).
    pub(crate) fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.samples
            .iter()
            .filter(|s| {
                s.name == name
                    && labels
                        .iter()
                        .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|s| s.value)
            .sum()
    }
}

pub(crate) async fn scrape_url(url: &str) -> Exposition {
    let text = client()
        .get(url)
        .send()
        .await
        .expect("scrape")
        .text()
        .await
        .expect("scrape body");
    Exposition::parse(&text)
}

pub(crate) async fn scrape_sim(server: &vllm_sim::Server) -> Exposition {
    scrape_url(&format!("{}/metrics", server.url())).await
}

pub(crate) async fn scrape_sidecar(server: &pd_proxy::Server) -> Exposition {
    let addr = server.metrics_addr().expect("metrics on");
    scrape_url(&format!("http://{addr}/metrics")).await
}

/// The sidecar's requests counter for `outcome`.
pub(crate) fn requests(exposition: &Exposition, outcome: &str) -> f64 {
    exposition.sum(
        "llm_d_inference_scheduler_pd_proxy_requests_total",
        &[("outcome", outcome)],
    )
}

/// What a client saw of one streamed request.
#[derive(Debug)]
pub(crate) struct Streamed {
    pub(crate) status: u16,
    /// Arrival of the first chunk that carries text.
    pub(crate) ttft: Duration,
    pub(crate) text: String,
    pub(crate) events: Vec<Value>,
}

/// POSTs a streaming request and measures TTFT at the first text-bearing event.
pub(crate) async fn stream(url: &str, body: &Value, headers: &[(&str, String)]) -> Streamed {
    let mut request = client().post(url).json(body);
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let start = Instant::now();
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    let mut chunks = response.bytes_stream();
    let mut buffer = String::new();
    let mut ttft = None;
    let mut events = Vec::new();
    let mut text = String::new();
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.expect("chunk");
        buffer.push_str(std::str::from_utf8(&chunk).expect("utf-8"));
        while let Some(end) = buffer.find("\n\n") {
            let event: String = buffer.drain(..end + 2).collect();
            let Some(data) = event.trim().strip_prefix("data: ") else {
                continue;
            };
            if data == "[DONE]" {
                continue;
            }
            let value: Value = serde_json::from_str(data).expect("event JSON");
            let piece = value["choices"][0]["text"]
                .as_str()
                .or(value["choices"][0]["delta"]["content"].as_str())
                .unwrap_or_default()
                .to_owned();
            if ttft.is_none() && (!piece.is_empty() || value.get("error").is_some()) {
                ttft = Some(start.elapsed());
            }
            text.push_str(&piece);
            events.push(value);
        }
    }
    Streamed {
        status,
        ttft: ttft.unwrap_or_else(|| start.elapsed()),
        text,
        events,
    }
}

/// POSTs JSON; returns status and parsed body.
pub(crate) async fn post(url: &str, body: &Value, headers: &[(&str, String)]) -> (u16, Value) {
    let mut request = client().post(url).json(body);
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    let bytes = response.bytes().await.expect("body");
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// Polls `check` until it holds or 5 s pass.
pub(crate) async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(5);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
