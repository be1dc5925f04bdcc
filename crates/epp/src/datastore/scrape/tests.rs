//! Reading engine metrics from a vLLM exposition.

use expect_test::expect;

use crate::datastore::scrape::{MetricNames, parse};

#[test]
fn reads_the_vllm_families_the_scorers_use() {
    let text = r#"# HELP vllm:num_requests_waiting Number of requests waiting to be processed.
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{engine="0",model_name="m"} 3.0
vllm:num_requests_waiting{engine="1",model_name="m"} 2.0
vllm:num_requests_running{engine="0",model_name="m"} 4.0
vllm:kv_cache_usage_perc{engine="0",model_name="m"} 0.25
vllm:lora_requests_info{max_lora="4",running_lora_adapters="a,b",waiting_lora_adapters=""} 1.7e9
vllm:lora_requests_info{max_lora="4",running_lora_adapters="old",waiting_lora_adapters="c"} 1.6e9
vllm:cache_config_info{block_size="16",cache_dtype="auto",num_gpu_blocks="8192",escaped="a\"b,c"} 1.0
vllm:num_requests_waiting_by_reason{reason="capacity"} 9
"#;
    let metrics = parse(text, &MetricNames::default());
    expect![[r#"
        EndpointMetrics {
            waiting_queue_size: 5,
            running_requests: 4,
            kv_cache_usage: 0.25,
            active_loras: [
                "a",
                "b",
            ],
            waiting_loras: [],
            max_loras: 4,
            block_size: 16,
            num_gpu_blocks: 8192,
            updated: None,
        }
    "#]]
    .assert_debug_eq(&metrics);
}

#[test]
fn renamed_metrics_follow_the_deprecated_flags() {
    let names = MetricNames {
        kv_cache_usage: "vllm:gpu_cache_usage_perc".to_owned(),
        ..MetricNames::default()
    };
    let metrics = parse(
        "vllm:gpu_cache_usage_perc 0.5\nvllm:kv_cache_usage_perc 0.9\n",
        &names,
    );
    assert_eq!(metrics.kv_cache_usage, 0.5);
}

#[test]
fn garbage_lines_are_skipped() {
    let metrics = parse(
        "vllm:num_requests_waiting{broken 3\nvllm:num_requests_waiting x\n\nvllm:num_requests_waiting 2\n",
        &MetricNames::default(),
    );
    assert_eq!(metrics.waiting_queue_size, 2);
}
