//! `pd-proxy`: the P/D sidecar, started the way the upstream sidecar is.

use pd_proxy::{Config, config::ConfigError, env::ProcessEnv};

// The allocator every binary of the stack runs with: glibc's malloc trims and re-faults
// memory as thousands of connections come and go, which shows up in tail latency.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    let config = match Config::parse(std::env::args_os(), &ProcessEnv) {
        Ok(config) => config,
        Err(ConfigError::Cli(err)) => err.exit(),
        Err(err) => return Err(err.into()),
    };
    telemetry::init_logging(&config.telemetry)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(pd_proxy::run(config))?;
    Ok(())
}
