//! The local stack's processes, on free loopback ports, as the P/D guide deploys them: prefill
//! vLLM pods, decode vLLM pods each behind its `pd-proxy` sidecar, the EPP with the precise
//! prefix-cache scorer and the P/D profile handler, and Envoy in the Gateway API Inference
//! Extension's shape (ext_proc to the EPP, original-destination routing). Every process
//! exports its spans to the report's OTLP receiver. Each child is killed when dropped.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use super::StackConfig;

/// The model every pod serves.
pub(crate) const MODEL: &str = "sim-model";
/// The service name Envoy's spans carry.
pub(crate) const GATEWAY_SERVICE: &str = "inference-gateway";
/// Tokens per KV block, on the engines and in the EPP's scorer alike.
const BLOCK_SIZE: u32 = 16;
const PRODUCER: &str = r#"{"kv_connector":"NixlConnector","kv_role":"kv_producer"}"#;
const CONSUMER: &str = r#"{"kv_connector":"NixlConnector","kv_role":"kv_consumer"}"#;
const STARTUP: Duration = Duration::from_secs(60);

/// The binaries the stack runs.
pub(crate) struct Binaries {
    pub(crate) vllm_sim: PathBuf,
    pub(crate) load_gen: PathBuf,
    pub(crate) epp: PathBuf,
    pub(crate) pd_proxy: PathBuf,
    pub(crate) envoy: PathBuf,
}

/// A child process killed when dropped, so an early error leaves nothing running.
pub(crate) struct Process {
    pub(crate) name: String,
    child: Child,
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A vLLM pod.
pub(crate) struct Engine {
    pub(crate) process: Process,
    pub(crate) addr: SocketAddr,
}

/// A decode pod: its vLLM and the sidecar in front of it.
pub(crate) struct DecodePod {
    pub(crate) engine: Engine,
    pub(crate) sidecar: Process,
    /// Where the gateway sends requests: the pool's target port on this pod.
    pub(crate) sidecar_addr: SocketAddr,
    pub(crate) sidecar_metrics: SocketAddr,
}

pub(crate) struct Stack {
    pub(crate) prefill: Vec<Engine>,
    pub(crate) decode: Vec<DecodePod>,
    pub(crate) epp: Process,
    pub(crate) epp_metrics: SocketAddr,
    pub(crate) envoy: Process,
    pub(crate) gateway: SocketAddr,
    pub(crate) envoy_admin: SocketAddr,
}

impl Stack {
    /// Starts every process and waits until the gateway routes.
    pub(crate) fn start(
        config: &StackConfig,
        bins: &Binaries,
        out_dir: &Path,
        otlp_base: &str,
    ) -> anyhow::Result<Stack> {
        let otlp_traces = format!("{otlp_base}/v1/traces");
        let kv_events = SocketAddr::from(([127, 0, 0, 1], free_port()?));
        let engine = |name: &str, role_json: &str, endpoint_for_topic: SocketAddr, port: u16| {
            let log = std::fs::File::create(out_dir.join(format!("{name}.log")))?;
            let kv_events_config = serde_json::json!({
                "enable_kv_cache_events": true,
                "publisher": "zmq",
                "endpoint": format!("tcp://{kv_events}"),
                "topic": format!("kv@{endpoint_for_topic}@{MODEL}"),
            });
            let child = Command::new(&bins.vllm_sim)
                .args([
                    "--model",
                    MODEL,
                    "--host",
                    "127.0.0.1",
                    "--port",
                    &port.to_string(),
                ])
                .args(["--max-num-seqs", "32", "--enable-prompt-tokens-details"])
                .args(["--block-size", &BLOCK_SIZE.to_string()])
                .args([
                    "--prefill-overhead",
                    "15",
                    "--prefill-time-per-token",
                    "0.02",
                ])
                .args([
                    "--inter-token-latency",
                    "8",
                    "--inter-token-latency-std-dev",
                    "1",
                ])
                .args(["--kv-transfer-config", role_json])
                .arg("--kv-events-config")
                .arg(kv_events_config.to_string())
                .args(["--otlp-traces-endpoint", &otlp_traces])
                .env("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/protobuf")
                .env("OTEL_SERVICE_NAME", name)
                .env("POD_NAME", name)
                .env("VLLM_NIXL_SIDE_CHANNEL_HOST", "127.0.0.1")
                .env("VLLM_NIXL_SIDE_CHANNEL_PORT", "0")
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .with_context(|| format!("starting {name}"))?;
            anyhow::Ok(Process {
                name: name.to_owned(),
                child,
            })
        };
        let mut prefill = Vec::new();
        for index in 0..config.prefill {
            let addr = SocketAddr::from(([127, 0, 0, 1], free_port()?));
            let process = engine(&format!("prefill-{index}"), PRODUCER, addr, addr.port())?;
            prefill.push(Engine { process, addr });
        }
        let prefill_hosts: Vec<String> = prefill.iter().map(|p| p.addr.to_string()).collect();
        let mut decode = Vec::new();
        for index in 0..config.decode {
            let name = format!("decode-{index}");
            let sidecar_addr = SocketAddr::from(([127, 0, 0, 1], free_port()?));
            let engine_addr = SocketAddr::from(([127, 0, 0, 1], free_port()?));
            // The decode engine's events name the pod by the address the EPP knows it by,
            // the sidecar's (the pool's target port), as one pod IP serves both in a cluster.
            let process = engine(&name, CONSUMER, sidecar_addr, engine_addr.port())?;
            let sidecar_metrics = SocketAddr::from(([127, 0, 0, 1], free_port()?));
            let sidecar_name = format!("pd-proxy-{index}");
            let log = std::fs::File::create(out_dir.join(format!("{sidecar_name}.log")))?;
            let sidecar = Command::new(&bins.pd_proxy)
                .args([
                    "--host",
                    "127.0.0.1",
                    "--port",
                    &sidecar_addr.port().to_string(),
                ])
                .args(["--vllm-port", &engine_addr.port().to_string()])
                .args(["--metrics-addr", &sidecar_metrics.to_string(), "--tracing"])
                .args(["--allowed-prefill-hosts", &prefill_hosts.join(",")])
                .env("OTEL_EXPORTER_OTLP_ENDPOINT", otlp_base)
                .env("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
                .env("OTEL_SERVICE_NAME", &sidecar_name)
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .context("starting pd-proxy")?;
            decode.push(DecodePod {
                engine: Engine {
                    process,
                    addr: engine_addr,
                },
                sidecar: Process {
                    name: sidecar_name,
                    child: sidecar,
                },
                sidecar_addr,
                sidecar_metrics,
            });
        }

        let epp_config = out_dir.join("epp-config.yaml");
        std::fs::write(&epp_config, epp_config_yaml(kv_events, config.pd_threshold))?;
        let (epp_grpc, epp_health, epp_metrics) = (free_port()?, free_port()?, free_port()?);
        let mut epp_command = Command::new(&bins.epp);
        epp_command
            .args(["--host", "127.0.0.1", "--grpc-port", &epp_grpc.to_string()])
            .args(["--grpc-health-port", &epp_health.to_string()])
            .args(["--metrics-port", &epp_metrics.to_string()])
            .args(["--refresh-metrics-interval", "50ms"])
            .arg("--config-file")
            .arg(&epp_config)
            .env("OTEL_EXPORTER_OTLP_ENDPOINT", otlp_base)
            .env("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
            .env("OTEL_SERVICE_NAME", "epp");
        for pod in &decode {
            epp_command
                .arg("--endpoint")
                .arg(format!("{};llm-d.ai/role=decode", pod.sidecar_addr));
        }
        for pod in &prefill {
            epp_command
                .arg("--endpoint")
                .arg(format!("{};llm-d.ai/role=prefill", pod.addr));
        }
        let log = std::fs::File::create(out_dir.join("epp.log"))?;
        let epp_child = epp_command
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("starting the EPP")?;
        let mut epp = Process {
            name: "epp".into(),
            child: epp_child,
        };
        let epp_metrics = SocketAddr::from(([127, 0, 0, 1], epp_metrics));

        let gateway = SocketAddr::from(([127, 0, 0, 1], free_port()?));
        let envoy_admin = SocketAddr::from(([127, 0, 0, 1], free_port()?));
        let envoy_config = out_dir.join("envoy.yaml");
        let otlp_addr: SocketAddr = otlp_base
            .trim_start_matches("http://")
            .parse()
            .context("OTLP address")?;
        std::fs::write(
            &envoy_config,
            envoy_yaml(
                gateway,
                envoy_admin,
                SocketAddr::from(([127, 0, 0, 1], epp_grpc)),
                otlp_addr,
            ),
        )?;
        let envoy_child = Command::new(&bins.envoy)
            .arg("-c")
            .arg(&envoy_config)
            .args([
                "--base-id",
                &(std::process::id() % 60_000 + 1_000).to_string(),
            ])
            .args(["--concurrency", "2", "-l", "warning", "--log-path"])
            .arg(out_dir.join("envoy.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting Envoy")?;
        let mut envoy = Process {
            name: "envoy".into(),
            child: envoy_child,
        };

        for pod in &mut prefill {
            wait_for(&mut pod.process, pod.addr, "/health", |status, _| {
                status == 200
            })?;
        }
        for pod in &mut decode {
            wait_for(
                &mut pod.engine.process,
                pod.engine.addr,
                "/health",
                |s, _| s == 200,
            )?;
            wait_for(&mut pod.sidecar, pod.sidecar_addr, "/health", |s, _| {
                s == 200
            })?;
        }
        let n_endpoints = (config.prefill + config.decode) as f64;
        wait_for(&mut epp, epp_metrics, "/metrics", |status, body| {
            status == 200
                && super::report::Exposition::parse(body)
                    .sum(metrics_schema::epp::READY_ENDPOINTS.name, &[])
                    >= n_endpoints
        })?;
        wait_for(&mut envoy, envoy_admin, "/ready", |status, _| status == 200)?;
        Ok(Stack {
            prefill,
            decode,
            epp,
            epp_metrics,
            envoy,
            gateway,
            envoy_admin,
        })
    }

    /// Every process, for the "is anything dead" check after the run.
    pub(crate) fn processes(&mut self) -> Vec<&mut Process> {
        let mut all: Vec<&mut Process> = self.prefill.iter_mut().map(|p| &mut p.process).collect();
        for pod in &mut self.decode {
            all.push(&mut pod.engine.process);
            all.push(&mut pod.sidecar);
        }
        all.push(&mut self.epp);
        all.push(&mut self.envoy);
        all
    }
}

impl Process {
    /// `Some(status)` once the process has exited.
    pub(crate) fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }
}

/// The EPP's plugin configuration: the P/D guide's profiles with the precise prefix-cache
/// scorer in both, and llm-d v0.6's token-based P/D decision: a request whose prompt has
/// fewer than `pd_threshold` tokens not cached on the chosen decode pod is prefilled there,
/// without a prefill leg (0: every request is disaggregated).
fn epp_config_yaml(kv_events: SocketAddr, pd_threshold: u64) -> String {
    let decider = if pd_threshold == 0 {
        "- type: always-disagg-pd-decider\n  name: pd-decider".to_owned()
    } else {
        format!(
            "- type: prefix-based-pd-decider\n  name: pd-decider\n  parameters: {{ nonCachedTokens: {pd_threshold}, prefixPluginName: precise-prefix-cache-scorer }}"
        )
    };
    format!(
        "# Generated by `cargo xtask stack`.
apiVersion: llm-d.ai/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: prefill-header-handler
- type: prefill-filter
- type: decode-filter
- type: precise-prefix-cache-scorer
  parameters:
    tokenProcessorConfig: {{ blockSize: {BLOCK_SIZE} }}
    indexerConfig: {{ kvBlockIndexConfig: {{ enableMetrics: true }} }}
    kvEventsConfig: {{ zmqEndpoint: 'tcp://{kv_events}', topicFilter: 'kv@' }}
- type: queue-scorer
{decider}
- type: pd-profile-handler
  parameters: {{ deciderPluginName: pd-decider }}
schedulingProfiles:
- name: prefill
  plugins:
  - pluginRef: prefill-filter
  - pluginRef: precise-prefix-cache-scorer
    weight: 2
  - pluginRef: queue-scorer
- name: decode
  plugins:
  - pluginRef: decode-filter
  - pluginRef: precise-prefix-cache-scorer
    weight: 2
  - pluginRef: queue-scorer
"
    )
}

/// Envoy as the Gateway API Inference Extension configures it, tracing over OTLP/HTTP.
fn envoy_yaml(gateway: SocketAddr, admin: SocketAddr, epp: SocketAddr, otlp: SocketAddr) -> String {
    envoy_config::Gateway {
        admin,
        listen: gateway,
        epp,
        epp_tls: true,
        direct: None,
        tracing: Some(envoy_config::Tracing {
            collector: otlp,
            transport: envoy_config::OtlpTransport::Http,
            service_name: GATEWAY_SERVICE.to_owned(),
        }),
    }
    .render("`cargo xtask stack`")
}

pub(crate) fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Polls `GET path` until `ready(status, body)`; fails when the process exits or at the
/// start-up deadline.
fn wait_for(
    process: &mut Process,
    addr: SocketAddr,
    path: &str,
    ready: impl Fn(u16, &str) -> bool,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + STARTUP;
    while Instant::now() < deadline {
        if let Some(status) = process.exited() {
            bail!(
                "{} exited with {status} before becoming ready (see its log in target/stack/)",
                process.name
            );
        }
        if let Ok((status, body)) = http_get(addr, path)
            && ready(status, &body)
        {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    bail!("{} was not ready within {STARTUP:?}", process.name)
}

/// A minimal HTTP/1.1 GET; the stack's own endpoints answer plain bodies.
pub(crate) fn http_get(addr: SocketAddr, path: &str) -> anyhow::Result<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .context("no end of headers")?;
    let head = String::from_utf8_lossy(&response[..split]);
    let body = &response[split + 4..];
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .context("malformed status line")?;
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_vec()
    };
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

fn dechunk(mut body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(line_end) = body.windows(2).position(|w| w == b"\r\n") {
        let size = std::str::from_utf8(&body[..line_end])
            .ok()
            .and_then(|size| usize::from_str_radix(size.trim(), 16).ok());
        let rest = &body[line_end + 2..];
        match size {
            Some(size) if size > 0 && rest.len() >= size => {
                out.extend_from_slice(&rest[..size]);
                body = rest[size..].strip_prefix(b"\r\n").unwrap_or(&rest[size..]);
            }
            _ => break,
        }
    }
    out
}
