//! The helpers expose exactly the schema's name, help, labels and buckets.

use prometheus::{Encoder, Registry, TextEncoder};

use crate::vllm;

fn exposition(registry: &Registry) -> String {
    let mut buffer = Vec::new();
    TextEncoder::new()
        .encode(&registry.gather(), &mut buffer)
        .expect("text encoding");
    String::from_utf8(buffer).expect("utf-8 exposition")
}

#[test]
fn registers_each_kind_with_the_schema_shape() {
    let registry = Registry::new();
    let running = vllm::NUM_REQUESTS_RUNNING
        .register_gauge(&registry)
        .expect("gauge");
    let prompt = vllm::PROMPT_TOKENS_TOTAL
        .register_counter(&registry)
        .expect("counter");
    let prompt_len = vllm::REQUEST_PROMPT_TOKENS
        .register_histogram(&registry, 100)
        .expect("histogram");
    running.with_label_values(&["0", "m"]).set(3.0);
    prompt.with_label_values(&["0", "m"]).inc_by(7.0);
    prompt_len.with_label_values(&["0", "m"]).observe(42.0);

    let text = exposition(&registry);
    assert!(text.contains(
        "# HELP vllm:num_requests_running Number of requests in model execution batches.\n"
    ));
    assert!(
        text.contains("vllm:num_requests_running{engine=\"0\",model_name=\"m\"} 3\n"),
        "{text}"
    );
    assert!(
        text.contains("vllm:prompt_tokens_total{engine=\"0\",model_name=\"m\"} 7\n"),
        "{text}"
    );
    assert!(
        text.contains(
            "vllm:request_prompt_tokens_bucket{engine=\"0\",model_name=\"m\",le=\"100\"} 1\n"
        ),
        "{text}"
    );
    assert!(
        !text.contains("le=\"200\""),
        "buckets go past max_model_len: {text}"
    );
}

#[test]
fn registering_twice_fails() {
    let registry = Registry::new();
    vllm::NUM_REQUESTS_WAITING
        .register_gauge(&registry)
        .expect("first registration");
    assert!(
        vllm::NUM_REQUESTS_WAITING
            .register_gauge(&registry)
            .is_err()
    );
}
