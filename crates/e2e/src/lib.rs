//! The end-to-end layer: helpers that start the real peers (Prometheus, promtool) as child
//! processes on ephemeral loopback ports, wait until they are ready, and always tear them down
//! (Drop guards), for the tests in `tests/`.
//!
//! In-process tests elsewhere never start external programs; this crate is the one place that
//! does. A missing tool is an error that names `scripts/install-tools.sh`, never a skip.

pub mod env;
pub mod prometheus;
pub mod tools;

use std::{
    path::{Path, PathBuf},
    sync::atomic::{AtomicU32, Ordering},
    time::{SystemTime, UNIX_EPOCH},
};

/// Errors of the helpers; tests unwrap them with their context.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "{tool} not found (set {env_var} or put it on PATH); install it with scripts/install-tools.sh"
    )]
    ToolMissing {
        tool: &'static str,
        env_var: &'static str,
    },
    #[error("{what}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{what}")]
    Http {
        what: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("prometheus did not become ready: {reason}\n--- prometheus log ---\n{log}")]
    NotReady { reason: String, log: String },
    #[error("query `{expr}` failed: {error_type}: {error}")]
    Query {
        expr: String,
        error_type: String,
        error: String,
    },
    #[error("promtool check config failed ({status}):\n{output}")]
    Promtool { status: String, output: String },
}

/// The workspace root (two levels above this crate).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("crates/e2e lives two levels below the root")
        .to_path_buf()
}

/// Runs `scripts/<name>` with bash and returns its stdout; panics with both streams when it
/// fails, naming what it `needs`.
pub fn run_check_script(name: &str, needs: &str) -> String {
    let script = workspace_root().join("scripts").join(name);
    let output = std::process::Command::new("bash")
        .arg(&script)
        .output()
        .unwrap_or_else(|error| panic!("running {}: {error}", script.display()));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{} failed ({}); it needs {needs}:\n{stdout}\n{stderr}",
        script.display(),
        output.status
    );
    stdout
}

/// A directory under the system temp dir, removed with everything in it on drop.
#[derive(Debug)]
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// Creates `<tmp>/llm-d-e2e-<prefix>-<pid>-<n>-<nanos>`.
    pub fn new(prefix: &str) -> Result<TempDir, Error> {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .subsec_nanos();
        let path = std::env::temp_dir().join(format!(
            "llm-d-e2e-{prefix}-{}-{}-{nanos}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&path).map_err(|source| Error::Io {
            what: format!("creating {}", path.display()),
            source,
        })?;
        Ok(TempDir { path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// An HTTP client for talking to peers; installs the ring crypto provider once, since reqwest
/// is built with `rustls-no-provider`.
pub fn http_client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .build()
        .expect("an HTTP client without TLS configuration builds")
}
