//! `cargo xtask`: project tasks that need no external tools.
//!
//! * `cargo xtask codegen [docs|dashboards|all] [--check]` renders generated files from the workspace's
//!   own data (`metrics-schema`); `--check` fails on drift instead of writing.
//! * `cargo xtask tidy` checks repository conventions (the same checks run in `cargo test`).
//! * `cargo xtask stack` runs the local stack with traffic and prints its report.
//!
//! Arguments are parsed by hand: the first one names the task, the rest belong to it, so a new
//! task is one more arm in [`main`].

mod codegen;
mod stack;
mod tidy;

use std::path::{Path, PathBuf};

use anyhow::bail;

const USAGE: &str = "usage:
  cargo xtask codegen [docs|dashboards|all] [--check]
  cargo xtask tidy
  cargo xtask stack [--decode N] [--prefill N] [--workers N] [--minutes M] [--pause-scale F]
                    [--pd-threshold TOKENS]";

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((task, rest)) = args.split_first() else {
        bail!("no task given\n{USAGE}");
    };
    match task.as_str() {
        "codegen" => codegen::run(rest),
        "tidy" => tidy::run(rest),
        "stack" => stack::run(rest),
        "help" | "--help" | "-h" => {
            eprintln!("{USAGE}");
            Ok(())
        }
        other => bail!("unknown task `{other}`\n{USAGE}"),
    }
}

/// The workspace root, the parent of `xtask/`.
fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the workspace root")
        .to_path_buf()
}
