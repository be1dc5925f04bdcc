//! `vllm-sim`: a vLLM 0.33 simulator that answers like `vllm serve`.

use vllm_sim::{Config, config::ConfigError, env::ProcessEnv};

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
