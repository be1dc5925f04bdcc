//! Finding the external binaries the end-to-end tests run.

use std::{
    os::unix::fs::PermissionsExt as _,
    path::{Path, PathBuf},
};

use crate::{
    Error,
    env::{ENV_PROMETHEUS_BIN, ENV_PROMTOOL_BIN, path_var, search_path},
};

/// The `prometheus` binary: `$PROMETHEUS_BIN`, else `prometheus` on `PATH`.
pub fn prometheus() -> Result<PathBuf, Error> {
    path_var(ENV_PROMETHEUS_BIN)
        .filter(|path| is_executable(path))
        .or_else(|| on_path("prometheus"))
        .ok_or(Error::ToolMissing {
            tool: "prometheus",
            env_var: ENV_PROMETHEUS_BIN,
        })
}

/// `promtool`: `$PROMTOOL_BIN`, else beside the Prometheus binary, else on `PATH`.
pub fn promtool() -> Result<PathBuf, Error> {
    let sibling = prometheus()
        .ok()
        .and_then(|prometheus| prometheus.parent().map(|dir| dir.join("promtool")))
        .filter(|path| is_executable(path));
    path_var(ENV_PROMTOOL_BIN)
        .filter(|path| is_executable(path))
        .or(sibling)
        .or_else(|| on_path("promtool"))
        .ok_or(Error::ToolMissing {
            tool: "promtool",
            env_var: ENV_PROMTOOL_BIN,
        })
}

fn on_path(name: &str) -> Option<PathBuf> {
    search_path()
        .into_iter()
        .map(|dir| dir.join(name))
        .find(|path| is_executable(path))
}

fn is_executable(path: &Path) -> bool {
    path.metadata()
        .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}
