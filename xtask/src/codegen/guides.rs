//! `guides/`: llm-d style helmfile guides that deploy our binaries with the upstream charts
//! (llm-d-infra for the gateway, GAIE's inferencepool for the pool and the EPP,
//! llm-d-modelservice for the vLLM pods and the P/D sidecar).
//!
//! One [`Guide`] value per guide names everything once (namespace, release postfix, model,
//! block size, topology, ports); every file is derived from it, so the cross-file names that
//! upstream keeps in sync by hand (`gaie-<rn>` in the KV-events endpoint and the HTTPRoute,
//! the pool selector ⊆ the pod labels, `--block-size` = the scorer's `blockSize`) cannot
//! drift. Metric and service names come from `metrics-schema`. The dashboards ship as Grafana
//! sidecar ConfigMaps in `guides/monitoring/`.
//!
//! Each binary's own tests read these files back: the EPP loads every plugin config, the
//! sidecar and the simulator parse the arguments the charts render from them.

mod files;
mod monitoring;
#[cfg(test)]
mod tests;

use metrics_schema::spans::services;

/// Where the guides live, relative to the workspace root.
pub(super) const DIR: &str = "guides";

/// Container registry and tag of our images (`Dockerfile` targets); the helmfiles take
/// `IMAGE_REGISTRY` and `IMAGE_TAG` from the environment over these.
const IMAGE_REGISTRY: &str = "ghcr.io/llm-d-obs";
const IMAGE_TAG: &str = concat!("v", env!("CARGO_PKG_VERSION"));

/// The chart versions of the last helmfile-era llm-d guides (2026-04).
const INFRA_CHART_VERSION: &str = "v1.4.0";
const INFERENCEPOOL_CHART_VERSION: &str = "v1.4.0";
const MODELSERVICE_CHART_VERSION: &str = "v0.4.9";
/// vLLM's own image for the real model servers.
const VLLM_IMAGE: &str = "vllm/vllm-openai:v0.33.0";

/// The InferencePool target port: vLLM on prefill pods, the sidecar on decode pods.
const SERVICE_PORT: u16 = 8000;
/// Decode vLLM behind the sidecar.
const SIDECAR_TARGET_PORT: u16 = 8200;
/// NIXL side channel.
const NIXL_PORT: u16 = 5600;
/// The EPP's KV-events SUB socket (central mode: every vLLM connects to it).
const KV_EVENTS_PORT: u16 = 5557;

/// One guide.
#[derive(Debug, Clone)]
pub(super) struct Guide {
    /// Directory under `guides/`, and the `llm-d.ai/guide` label.
    pub(super) name: &'static str,
    pub(super) title: &'static str,
    /// helmfile's default namespace.
    pub(super) namespace: &'static str,
    /// `RELEASE_NAME_POSTFIX` default: releases are `infra-<rn>`, `gaie-<rn>`, `ms-<rn>`.
    pub(super) release: &'static str,
    /// Suffix of the values directories: `gaie-<suffix>/`, `ms-<suffix>/`.
    pub(super) values_suffix: &'static str,
    /// The HTTPRoute's name.
    pub(super) route: &'static str,
    /// The EPP's plugin config file name inside the chart's ConfigMap.
    pub(super) plugins_file: &'static str,
    pub(super) model: Model,
    /// vLLM `--block-size`, and the precise scorer's `blockSize`.
    pub(super) block_size: u32,
    pub(super) max_model_len: u32,
    pub(super) decode: Role,
    /// Prefill pods: only the P/D guide has them, and then decode pods get the sidecar.
    pub(super) prefill: Option<Role>,
    /// Whether vLLM publishes KV events to the EPP (the precise prefix-cache scorer).
    pub(super) kv_events: bool,
}

/// The served model.
#[derive(Debug, Clone, Copy)]
pub(super) struct Model {
    /// Hugging Face id, also the served model name.
    pub(super) id: &'static str,
    /// The `llm-d.ai/model` label.
    pub(super) short: &'static str,
    /// Size of the model cache volume.
    pub(super) size: &'static str,
}

/// One role's pods.
#[derive(Debug, Clone, Copy)]
pub(super) struct Role {
    pub(super) replicas: u32,
    pub(super) tensor: u32,
    pub(super) cpu: u32,
    pub(super) memory: &'static str,
}

impl Guide {
    pub(super) fn infra_release(&self) -> String {
        format!("infra-{}", self.release)
    }
    pub(super) fn pool(&self) -> String {
        format!("gaie-{}", self.release)
    }
    pub(super) fn ms_release(&self) -> String {
        format!("ms-{}", self.release)
    }
    pub(super) fn gateway(&self) -> String {
        format!("{}-inference-gateway", self.infra_release())
    }
    pub(super) fn epp(&self) -> String {
        format!("{}-epp", self.pool())
    }
    pub(super) fn gaie_dir(&self) -> String {
        format!("gaie-{}", self.values_suffix)
    }
    pub(super) fn ms_dir(&self) -> String {
        format!("ms-{}", self.values_suffix)
    }
    /// The labels of every model-server pod; the pool selects on a subset of them.
    pub(super) fn pod_labels(&self) -> Vec<(&'static str, &'static str)> {
        vec![
            ("llm-d.ai/inference-serving", "true"),
            ("llm-d.ai/guide", self.name),
            ("llm-d.ai/model", self.model.short),
        ]
    }
    /// The InferencePool's `matchLabels`.
    pub(super) fn pool_selector(&self) -> Vec<(&'static str, &'static str)> {
        self.pod_labels().into_iter().take(2).collect()
    }
    /// The KV-events topic each vLLM publishes on: the pod's `ip:port` is the endpoint
    /// address the EPP scores.
    pub(super) fn kv_events_topic(&self) -> String {
        format!("kv@$(POD_IP):{SERVICE_PORT}@{}", self.model.id)
    }
    /// Where each vLLM connects its KV-events PUB socket: the EPP's Service.
    pub(super) fn kv_events_endpoint(&self) -> String {
        format!(
            "tcp://gaie-$(GAIE_RELEASE_NAME_POSTFIX)-epp.$(NAMESPACE).svc.cluster.local:{KV_EVENTS_PORT}"
        )
    }
}

/// The guides, as llm-d's helmfile-era guides shape them.
pub(super) fn guides() -> Vec<Guide> {
    vec![
        Guide {
            name: "pd-disaggregation",
            title: "Prefill/decode disaggregation",
            namespace: "llm-d-pd",
            release: "pd",
            values_suffix: "pd",
            route: "llm-d-pd-disaggregation",
            plugins_file: "pd-config.yaml",
            model: Model {
                id: "openai/gpt-oss-120b",
                short: "gpt-oss-120b",
                size: "250Gi",
            },
            block_size: 128,
            max_model_len: 32000,
            decode: Role {
                replicas: 1,
                tensor: 4,
                cpu: 16,
                memory: "64Gi",
            },
            prefill: Some(Role {
                replicas: 4,
                tensor: 1,
                cpu: 8,
                memory: "64Gi",
            }),
            kv_events: true,
        },
        Guide {
            name: "precise-prefix-cache-aware",
            title: "Precise prefix-cache aware routing",
            namespace: "llm-d-precise",
            release: "kv-events",
            values_suffix: "kv-events",
            route: "llm-d-kv-events",
            plugins_file: "precise-prefix-cache-config.yaml",
            model: Model {
                id: "Qwen/Qwen3-32B",
                short: "Qwen3-32B",
                size: "80Gi",
            },
            block_size: 64,
            max_model_len: 32000,
            decode: Role {
                replicas: 8,
                tensor: 2,
                cpu: 32,
                memory: "100Gi",
            },
            prefill: None,
            kv_events: true,
        },
    ]
}

/// Every guide file as (path relative to the root, text), sorted by path.
pub(super) fn render() -> Vec<(String, String)> {
    let mut out = Vec::new();
    for guide in guides() {
        for (name, text) in files::guide_files(&guide) {
            out.push((format!("{DIR}/{}/{name}", guide.name), text));
        }
    }
    for (name, text) in files::gateway_providers() {
        out.push((
            format!("{DIR}/prereq/gateway-provider/common-configurations/{name}"),
            text,
        ));
    }
    for (name, text) in monitoring::files() {
        out.push((format!("{DIR}/monitoring/{name}"), text));
    }
    out.sort();
    out
}

/// Fills `%name%` holes in `template`; every hole must have a value and every value a hole.
fn fill(template: &str, values: &[(&str, &str)]) -> String {
    let mut text = template.to_owned();
    for (name, value) in values {
        let hole = format!("%{name}%");
        assert!(text.contains(&hole), "template has no {hole}");
        text = text.replace(&hole, value);
    }
    if let Some(start) = text.find('%') {
        let rest = &text[start + 1..];
        if let Some(end) = rest.find('%') {
            let name = &rest[..end];
            assert!(
                !name.chars().all(|c| c.is_ascii_lowercase() || c == '_') || name.is_empty(),
                "unfilled hole %{name}%"
            );
        }
    }
    text
}

/// Service names the charts give each component's spans.
fn service_names() -> [(&'static str, &'static str); 4] {
    [
        ("epp", services::EPP),
        ("pd_proxy", services::PD_PROXY),
        ("vllm_decode", services::VLLM_DECODE),
        ("vllm_prefill", services::VLLM_PREFILL),
    ]
}
