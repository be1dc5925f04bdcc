//! Every environment variable the end-to-end helpers read, in one place (the workspace bans
//! `std::env::var` elsewhere).

use std::{ffi::OsString, path::PathBuf};

/// Path of the `prometheus` binary; default: `prometheus` on `PATH`.
pub const ENV_PROMETHEUS_BIN: &str = "PROMETHEUS_BIN";
/// Path of `promtool`; default: beside the Prometheus binary, then `promtool` on `PATH`.
pub const ENV_PROMTOOL_BIN: &str = "PROMTOOL_BIN";
/// The executable search path.
const ENV_PATH: &str = "PATH";

/// A path-valued variable, if set and non-empty.
pub fn path_var(name: &str) -> Option<PathBuf> {
    read(name)
        .filter(|value| !value.is_empty())
        .map(PathBuf::from)
}

/// The directories of `PATH`, in order.
pub fn search_path() -> Vec<PathBuf> {
    read(ENV_PATH)
        .map(|path| std::env::split_paths(&path).collect())
        .unwrap_or_default()
}

#[allow(clippy::disallowed_methods)] // the one place this crate reads its environment
fn read(name: &str) -> Option<OsString> {
    std::env::var_os(name)
}
