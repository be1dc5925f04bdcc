//! `vllm-sim`: a vLLM 0.33 simulator that answers like `vllm serve`.

use vllm_sim::{Config, config::ConfigError, env::ProcessEnv};

// The allocator every binary of the stack runs with: glibc's malloc trims and re-faults
// memory as thousands of streams come and go, which showed as multi-millisecond stalls in
// token timing (the serve benchmark's cold round: TTFT error p99 3-39 ms, 1-13 ms with this).
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
    runtime.block_on(vllm_sim::run(config))?;
    Ok(())
}
