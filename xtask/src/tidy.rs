//! `cargo xtask tidy`: repository conventions that rustc and clippy do not check.
//!
//! * every `.rs` file under `crates/` and `xtask/` starts with a `//!` doc (STYLE rule 3);
//! * no `mod.rs` files: `foo.rs` plus a `foo/` folder instead (rule 3);
//! * every workspace member's manifest opts into the workspace lints with `[lints]` /
//!   `workspace = true` (rule 4); nested workspaces (the cargo-fuzz harness) cannot and are
//!   skipped.
//!
//! `#[test] fn tidy()` runs the same checks, so `cargo test` enforces them.

#[cfg(test)]
mod tests;

use std::{
    fs,
    path::{Path, PathBuf},
};

use anyhow::{Context, bail};

use crate::project_root;

/// Top-level folders whose sources and manifests are checked.
const CHECKED_ROOTS: &[&str] = &["crates", "xtask"];

/// `cargo xtask tidy`.
pub(crate) fn run(args: &[String]) -> anyhow::Result<()> {
    if let Some(arg) = args.first() {
        bail!("tidy takes no arguments, got `{arg}`");
    }
    let problems = check_repository(&project_root())?;
    if !problems.is_empty() {
        bail!(
            "tidy found {} problem(s):\n{}",
            problems.len(),
            problems.join("\n")
        );
    }
    Ok(())
}

/// Every convention problem under `root`, one line each, sorted.
pub(crate) fn check_repository(root: &Path) -> anyhow::Result<Vec<String>> {
    let mut problems = Vec::new();
    for checked_root in CHECKED_ROOTS {
        let mut files = Vec::new();
        collect_files(&root.join(checked_root), &mut files)?;
        for path in files {
            let relative = path
                .strip_prefix(root)
                .unwrap_or(&path)
                .display()
                .to_string();
            let file_name = path
                .file_name()
                .and_then(|name| name.to_str())
                .unwrap_or_default();
            if path.extension().is_some_and(|extension| extension == "rs") {
                let text =
                    fs::read_to_string(&path).with_context(|| format!("reading {relative}"))?;
                problems.extend(check_rust_file(&relative, file_name, &text));
            } else if file_name == "Cargo.toml" && is_member_manifest(root, &path) {
                let text =
                    fs::read_to_string(&path).with_context(|| format!("reading {relative}"))?;
                problems.extend(check_manifest(&relative, &text));
            }
        }
    }
    problems.sort();
    Ok(problems)
}

fn check_rust_file(relative: &str, file_name: &str, text: &str) -> Vec<String> {
    let mut problems = Vec::new();
    if file_name == "mod.rs" {
        problems.push(format!(
            "{relative}: mod.rs; use `foo.rs` with a `foo/` folder"
        ));
    }
    // A UTF-8 BOM would hide the doc comment from this check but not from rustc.
    if !text.trim_start_matches('\u{feff}').starts_with("//!") {
        problems.push(format!(
            "{relative}: does not start with a `//!` doc comment"
        ));
    }
    problems
}

/// Whether `path` is the manifest of a workspace member (`members = ["crates/*", "xtask"]`).
/// Nested workspaces such as a cargo-fuzz harness cannot inherit the workspace lints.
fn is_member_manifest(root: &Path, path: &Path) -> bool {
    let Some(crate_dir) = path.parent() else {
        return false;
    };
    crate_dir == root.join("xtask") || crate_dir.parent() == Some(root.join("crates").as_path())
}

fn check_manifest(relative: &str, text: &str) -> Vec<String> {
    let normalized = text.replace("\r\n", "\n");
    if normalized.contains("[lints]\nworkspace = true") {
        Vec::new()
    } else {
        vec![format!(
            "{relative}: missing `[lints]` followed by `workspace = true`"
        )]
    }
}

/// Files below `dir`, skipping build output and hidden folders.
fn collect_files(dir: &Path, files: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    let entries = fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("listing {}", dir.display()))?;
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let file_type = entry
            .file_type()
            .with_context(|| format!("inspecting {}", path.display()))?;
        if file_type.is_dir() {
            if name == "target" || name.starts_with('.') {
                continue;
            }
            collect_files(&path, files)?;
        } else if file_type.is_file() {
            files.push(path);
        }
    }
    Ok(())
}
