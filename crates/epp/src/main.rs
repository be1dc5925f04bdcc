//! `epp`: the llm-d Endpoint Picker, flag-compatible with the upstream EPP image.

use epp::{Config, env::EnvError, env::ProcessEnv};

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
