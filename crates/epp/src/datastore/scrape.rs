//! Scraping each endpoint's vLLM `/metrics` on an interval into the [`Datastore`], and the
//! pool gauges derived from it.

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::datastore::Datastore;
use crate::framework::EndpointMetrics;
use crate::telemetry::Metrics;

/// The engine metric names read (upstream's `--*-metric` flags can change them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricNames {
    pub waiting: String,
    pub running: String,
    pub kv_cache_usage: String,
    pub lora_info: String,
    pub cache_info: String,
}

impl Default for MetricNames {
    fn default() -> Self {
        MetricNames {
            waiting: metrics_schema::vllm::NUM_REQUESTS_WAITING.name.to_owned(),
            running: metrics_schema::vllm::NUM_REQUESTS_RUNNING.name.to_owned(),
            kv_cache_usage: metrics_schema::vllm::KV_CACHE_USAGE_PERC.name.to_owned(),
            lora_info: metrics_schema::vllm::LORA_REQUESTS_INFO.name.to_owned(),
            cache_info: metrics_schema::vllm::CACHE_CONFIG_INFO.name.to_owned(),
        }
    }
}

/// Scrape settings.
#[derive(Debug, Clone)]
pub struct ScrapeConfig {
    pub interval: Duration,
    pub timeout: Duration,
    pub names: MetricNames,
}

/// Scrapes every endpoint each `interval` until the task is dropped.
pub async fn run(config: ScrapeConfig, datastore: Arc<Datastore>, metrics: Arc<Metrics>) {
    // reqwest is built without a bundled crypto provider (one TLS provider in the graph,
    // tooling P1); building a client without one panics.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = match reqwest::Client::builder()
        .timeout(config.timeout)
        .pool_max_idle_per_host(4)
        .build()
    {
        Ok(client) => client,
        Err(error) => {
            tracing::error!(%error, "Building the scrape client failed; endpoint metrics stay empty.");
            return;
        }
    };
    let mut ticker = tokio::time::interval(config.interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let endpoints = datastore.all();
        let scrapes = endpoints.iter().map(|endpoint| {
            let client = client.clone();
            let address = endpoint.address.clone();
            let names = &config.names;
            async move {
                let result = scrape(&client, &address, names).await;
                (address, result)
            }
        });
        let mut updates = HashMap::new();
        for (address, result) in futures::future::join_all(scrapes).await {
            match result {
                Ok(metrics) => {
                    updates.insert(address, metrics);
                }
                Err(error) => {
                    tracing::debug!(endpoint = %address, %error, "Scraping endpoint metrics failed.");
                }
            }
        }
        datastore.update_metrics(&updates);
        datastore.mark_synced();
        update_pool_gauges(&datastore, &metrics);
    }
}

/// Errors of one scrape.
#[derive(Debug, thiserror::Error)]
pub enum ScrapeError {
    #[error("endpoint {address}: scrape failed")]
    Http {
        address: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("endpoint {address}: /metrics answered {status}")]
    Status { address: String, status: u16 },
}

async fn scrape(
    client: &reqwest::Client,
    address: &str,
    names: &MetricNames,
) -> Result<EndpointMetrics, ScrapeError> {
    let http = |source| ScrapeError::Http {
        address: address.to_owned(),
        source,
    };
    let response = client
        .get(format!("http://{address}/metrics"))
        .send()
        .await
        .map_err(http)?;
    if !response.status().is_success() {
        return Err(ScrapeError::Status {
            address: address.to_owned(),
            status: response.status().as_u16(),
        });
    }
    let text = response.text().await.map_err(http)?;
    let mut metrics = parse(&text, names);
    metrics.updated = Some(Instant::now());
    Ok(metrics)
}

/// Reads the engine metrics from a Prometheus text exposition. Gauges are summed over
/// series (vLLM labels them by model); the LoRA info sample with the newest value wins.
pub fn parse(text: &str, names: &MetricNames) -> EndpointMetrics {
    let mut metrics = EndpointMetrics::default();
    let mut lora_stamp = f64::NEG_INFINITY;
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let Some((name, labels, value)) = parse_sample(line) else {
            continue;
        };
        if name == names.waiting {
            metrics.waiting_queue_size += value.max(0.0) as u64;
        } else if name == names.running {
            metrics.running_requests += value.max(0.0) as u64;
        } else if name == names.kv_cache_usage {
            metrics.kv_cache_usage = metrics.kv_cache_usage.max(value);
        } else if name == names.lora_info && value >= lora_stamp {
            lora_stamp = value;
            let list = |key: &str| -> Vec<String> {
                labels
                    .iter()
                    .find(|(k, _)| k == key)
                    .map(|(_, v)| {
                        v.split(',')
                            .filter(|s| !s.is_empty())
                            .map(str::to_owned)
                            .collect()
                    })
                    .unwrap_or_default()
            };
            metrics.active_loras = list("running_lora_adapters");
            metrics.waiting_loras = list("waiting_lora_adapters");
            metrics.max_loras = label(&labels, "max_lora")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
        } else if name == names.cache_info {
            metrics.block_size = label(&labels, "block_size")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            metrics.num_gpu_blocks = label(&labels, "num_gpu_blocks")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
        }
    }
    metrics
}

fn label<'a>(labels: &'a [(String, String)], key: &str) -> Option<&'a str> {
    labels
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// One exposition sample: name, labels, value.
type Sample<'a> = (&'a str, Vec<(String, String)>, f64);

/// `name{k="v",...} value [timestamp]` → (name, labels, value).
fn parse_sample(line: &str) -> Option<Sample<'_>> {
    let name_end = line.find(|c: char| c == '{' || c.is_whitespace())?;
    let name = &line[..name_end];
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(body) = rest.strip_prefix('{') {
        let mut chars = body.char_indices();
        let mut key = String::new();
        loop {
            let (index, c) = chars.next()?;
            match c {
                '}' => {
                    rest = &body[index + 1..];
                    break;
                }
                ',' | ' ' => {}
                '=' => {
                    if chars.next()?.1 != '"' {
                        return None;
                    }
                    let mut value = String::new();
                    loop {
                        match chars.next()?.1 {
                            '\\' => match chars.next()?.1 {
                                'n' => value.push('\n'),
                                other => value.push(other),
                            },
                            '"' => break,
                            other => value.push(other),
                        }
                    }
                    labels.push((std::mem::take(&mut key), value));
                }
                other => key.push(other),
            }
        }
    }
    let value = match rest.split_whitespace().next()? {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        other => other.parse().ok()?,
    };
    Some((name, labels, value))
}

/// Pool averages over fresh endpoints, and the per-endpoint queue gauge.
fn update_pool_gauges(datastore: &Datastore, metrics: &Metrics) {
    let pool = datastore.pool_name();
    let candidates = datastore.candidates();
    let n = candidates.len();
    metrics.ready_endpoints.set(&[pool], n as f64);
    if n > 0 {
        let kv: f64 = candidates.iter().map(|e| e.metrics.kv_cache_usage).sum();
        let queue: f64 = candidates
            .iter()
            .map(|e| e.metrics.waiting_queue_size as f64)
            .sum();
        metrics
            .average_kv_cache_utilization
            .set(&[pool], kv / n as f64);
        metrics.average_queue_size.set(&[pool], queue / n as f64);
    }
    for endpoint in datastore.all().iter() {
        metrics.per_endpoint_queue_size.set(
            &[pool, endpoint.address.as_str()],
            endpoint.metrics.waiting_queue_size as f64,
        );
    }
}
