//! `vllm-sim`: a vLLM 0.33 simulator that answers like `vllm serve`.

use vllm_sim::{
    Config,
    env::{ProcessEnv, Strings},
};

fn main() -> anyhow::Result<()> {
    let telemetry_config = telemetry::TelemetryConfig::parse(|name| ProcessEnv.get(name), "vllm")
        .map_err(|errors| {
        anyhow::anyhow!(
            "invalid environment: {}",
            errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ")
        )
    })?;
    telemetry::init_logging(&telemetry_config)?;
    let mut config = match Config::parse(std::env::args_os(), &ProcessEnv) {
        Ok(config) => config,
        Err(vllm_sim::config::ConfigError::Cli(err)) => err.exit(),
        Err(err) => return Err(err.into()),
    };
    // vLLM honours OTEL_EXPORTER_OTLP_TRACES_ENDPOINT when the flag is absent.
    if config.otlp_traces_endpoint.is_none() {
        config.otlp_traces_endpoint = telemetry_config.otlp_endpoint.clone();
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(vllm_sim::run(config))?;
    Ok(())
}
