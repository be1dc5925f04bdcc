//! `epp`: the llm-d Endpoint Picker, flag-compatible with the upstream EPP image.

use epp::{Config, env::EnvError, env::ProcessEnv};

// The allocator every binary of the stack runs with: glibc's malloc trims and re-faults
// memory as thousands of connections come and go, which shows up in tail latency.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    let config = match Config::parse(std::env::args_os(), &ProcessEnv) {
        Ok(config) => config,
        Err(EnvError::Cli(error)) => error.exit(),
        Err(error) => return Err(error.into()),
    };
    telemetry::init_logging(&config.telemetry)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(epp::run(config))?;
    Ok(())
}
