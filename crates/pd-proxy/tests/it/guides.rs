//! The P/D guide (`guides/pd-disaggregation/ms-pd/values_sim.yaml`, rendered by `cargo xtask
//! codegen guides`) as the modelservice chart runs it: the sidecar takes the arguments the
//! chart renders from `routing.proxy`, the simulators take the guide's vLLM arguments, and a
//! request with the EPP's prefill header is disaggregated end to end.

use serde_json::json;
use serde_norway::Value;

use crate::support::{post, requests, scrape_sidecar, sidecar, sim};

const VALUES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../guides/pd-disaggregation/ms-pd/values_sim.yaml"
);
const ISTIO: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../guides/prereq/gateway-provider/common-configurations/istio.yaml"
);

fn yaml(path: &str) -> Value {
    serde_norway::from_str(&std::fs::read_to_string(path).expect("guide file")).expect("YAML")
}

/// The guide's vLLM arguments for `role`, minus the KV-events publisher (there is no EPP
/// Service to connect to here).
fn vllm_args(values: &Value, role: &str) -> Vec<String> {
    values[role]["containers"][0]["args"]
        .as_sequence()
        .expect("args")
        .iter()
        .map(|arg| arg.as_str().expect("string").to_owned())
        .filter(|arg| !arg.starts_with("--kv-events-config="))
        .collect()
}

/// What the modelservice chart renders for the `routing-proxy` container.
fn chart_sidecar_args(values: &Value, provider: &Value) -> Vec<String> {
    let routing = &values["routing"];
    let proxy = &routing["proxy"];
    let number = |value: &Value| value.as_u64().expect("port").to_string();
    vec![
        format!("--port={}", number(&routing["servicePort"])),
        format!("--vllm-port={}", number(&proxy["targetPort"])),
        format!(
            "--connector={}",
            proxy["connector"].as_str().expect("connector")
        ),
        format!(
            "--zap-log-level={}",
            provider["routing"]["proxy"]["zapLogLevel"]
                .as_str()
                .expect("zapLogLevel")
        ),
        format!(
            "--secure-proxy={}",
            proxy["secure"].as_bool().expect("secure")
        ),
    ]
}

fn as_str(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pd_guide_disaggregates_with_the_charts_arguments() {
    let values = yaml(VALUES);
    let chart_args = chart_sidecar_args(&values, &yaml(ISTIO));
    let parsed = pd_proxy::Config::parse(
        std::iter::once("pd-proxy".to_owned()).chain(chart_args.iter().cloned()),
        &pd_proxy::env::TestEnv::from_pairs(&[]),
    )
    .expect("the chart's sidecar arguments parse");
    assert_eq!(parsed.listen.port(), 8000);
    assert_eq!(parsed.decoder, "127.0.0.1:8200");
    assert_eq!(parsed.telemetry.log_filter, "error");

    let prefill_args = vllm_args(&values, "prefill");
    let decode_args = vllm_args(&values, "decode");
    let prefill = sim(None, &as_str(&prefill_args)).await;
    let decode = sim(None, &as_str(&decode_args)).await;
    // The chart's arguments with loopback ports in place of 8000/8200.
    let mut local: Vec<String> = chart_args
        .into_iter()
        .filter(|arg| !arg.starts_with("--port=") && !arg.starts_with("--vllm-port="))
        .collect();
    local.push("--enable-ssrf-protection=false".to_owned());
    let local = as_str(&local);
    let proxy = sidecar(&decode, &local).await;
    let prompt = "The guide's sidecar in front of the guide's decode pod. ".repeat(20);
    let (status, answer) = post(
        &format!("{}/v1/completions", proxy.url()),
        &json!({"model": "test-model", "prompt": prompt, "max_tokens": 4}),
        &[("x-prefiller-host-port", prefill.addr().to_string())],
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(requests(&scrape_sidecar(&proxy).await, "success"), 1.0);
    proxy.shutdown().await;
    let _ = prefill.shutdown().await;
    let _ = decode.shutdown().await;
}
