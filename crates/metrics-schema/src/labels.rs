//! Every label name used by any metric in this crate, with what its values mean.
//!
//! One constant per name, shared by every family that uses it; the naming tests check that
//! each metric's labels are listed in [`ALL`] and are snake_case. Where a name means slightly
//! different things in different families (`reason`, `source`, `status`, `outcome`), the
//! family's help text lists its values.

use crate::Label;

// Common to the vLLM families and the EPP.

/// `model_name`: the served model name (vLLM `--served-model-name`, by default the model path).
pub const MODEL_NAME: Label = Label {
    name: "model_name",
    help: "Served model name, as the client requested it.",
};
/// `engine`: vLLM's data-parallel engine index as a string (`"0"`).
pub const ENGINE: Label = Label {
    name: "engine",
    help: "Data-parallel engine index, as a string.",
};

// vLLM engine families.

/// `reason`: why a request waits or was rejected; the family's help lists the values.
pub const REASON: Label = Label {
    name: "reason",
    help: "Why a request is waiting or was rejected; values depend on the family.",
};
/// `stage`: the async KV-load stage of a waiting request.
pub const STAGE: Label = Label {
    name: "stage",
    help: "Async KV load stage: waiting_to_start, in_progress or completed_waiting.",
};
/// `sleep_state`: one of `awake`, `weights_offloaded`, `discard_all`.
pub const SLEEP_STATE: Label = Label {
    name: "sleep_state",
    help: "Engine sleep dimension: awake, weights_offloaded or discard_all.",
};
/// `source`: where prompt tokens came from; the family's help lists the values.
pub const SOURCE: Label = Label {
    name: "source",
    help: "Where prompt tokens came from (compute, cache tier or KV transfer).",
};
/// `finished_reason`: `stop`, `length`, `abort`, `error` or `repetition`.
pub const FINISHED_REASON: Label = Label {
    name: "finished_reason",
    help: "Why a request finished: stop, length, abort, error or repetition.",
};
/// `max_lora` on `vllm:lora_requests_info`.
pub const MAX_LORA: Label = Label {
    name: "max_lora",
    help: "Maximum number of LoRA adapters in one batch.",
};
/// `running_lora_adapters`: comma-joined adapter names.
pub const RUNNING_LORA_ADAPTERS: Label = Label {
    name: "running_lora_adapters",
    help: "Comma-joined names of the LoRA adapters of running requests.",
};
/// `waiting_lora_adapters`: comma-joined adapter names.
pub const WAITING_LORA_ADAPTERS: Label = Label {
    name: "waiting_lora_adapters",
    help: "Comma-joined names of the LoRA adapters of waiting requests.",
};

// `vllm:cache_config_info`: one label per reproduced CacheConfig field.

/// CacheConfig `block_size`.
pub const BLOCK_SIZE: Label = Label {
    name: "block_size",
    help: "Tokens per KV-cache block.",
};
/// CacheConfig `cache_dtype`.
pub const CACHE_DTYPE: Label = Label {
    name: "cache_dtype",
    help: "KV-cache data type, such as auto or fp8.",
};
/// CacheConfig `enable_prefix_caching`.
pub const ENABLE_PREFIX_CACHING: Label = Label {
    name: "enable_prefix_caching",
    help: "Whether automatic prefix caching is on (True or False).",
};
/// CacheConfig `gpu_memory_utilization`.
pub const GPU_MEMORY_UTILIZATION: Label = Label {
    name: "gpu_memory_utilization",
    help: "Fraction of GPU memory the engine may use.",
};
/// CacheConfig `num_cpu_blocks`.
pub const NUM_CPU_BLOCKS: Label = Label {
    name: "num_cpu_blocks",
    help: "Number of KV-cache blocks in CPU memory.",
};
/// CacheConfig `num_gpu_blocks`.
pub const NUM_GPU_BLOCKS: Label = Label {
    name: "num_gpu_blocks",
    help: "Number of KV-cache blocks in GPU memory.",
};
/// CacheConfig `prefix_caching_hash_algo`.
pub const PREFIX_CACHING_HASH_ALGO: Label = Label {
    name: "prefix_caching_hash_algo",
    help: "Block hash algorithm: sha256, sha256_cbor, xxhash or xxhash_cbor.",
};

// HTTP (prometheus-fastapi-instrumentator).

/// `handler`: the route template (`/v1/completions`), `none` when untemplated.
pub const HANDLER: Label = Label {
    name: "handler",
    help: "Route template that served the request, or none when untemplated.",
};
/// `method`: the HTTP method.
pub const METHOD: Label = Label {
    name: "method",
    help: "HTTP request method.",
};
/// `status`: an outcome class; HTTP status class (`2xx`) or a scheduling status.
pub const STATUS: Label = Label {
    name: "status",
    help: "Outcome class: an HTTP status class such as 2xx, or success or failure.",
};

/// `grpc_code`: a gRPC status code's name, as go-grpc-prometheus spells it (`OK`,
/// `InvalidArgument`, ...).
pub const GRPC_CODE: Label = Label {
    name: "grpc_code",
    help: "The gRPC status code of the call, by name, such as OK or InvalidArgument.",
};

// EPP (llm-d / GAIE label sets).

/// `target_model_name`: the model name after objective rewriting.
pub const TARGET_MODEL_NAME: Label = Label {
    name: "target_model_name",
    help: "Model name sent to the model server after rewriting.",
};
/// `priority`: the request's InferenceObjective priority.
pub const PRIORITY: Label = Label {
    name: "priority",
    help: "Priority of the request's inference objective.",
};
/// `error_code`: a closed set of error kinds, never a raw error string.
pub const ERROR_CODE: Label = Label {
    name: "error_code",
    help: "Closed error kind, such as BadRequest, ServiceUnavailable or Internal.",
};
/// `name`: the InferencePool name.
pub const NAME: Label = Label {
    name: "name",
    help: "Name of the inference pool.",
};
/// `model_server_endpoint`: one endpoint of the pool.
pub const MODEL_SERVER_ENDPOINT: Label = Label {
    name: "model_server_endpoint",
    help: "Name of one model server endpoint of the pool.",
};
/// `pod_name` of the picked endpoint.
pub const POD_NAME: Label = Label {
    name: "pod_name",
    help: "Name of the picked endpoint's pod.",
};
/// `namespace` of the picked endpoint.
pub const NAMESPACE: Label = Label {
    name: "namespace",
    help: "Namespace of the picked endpoint's pod.",
};
/// `port` of the picked endpoint.
pub const PORT: Label = Label {
    name: "port",
    help: "Target port of the picked endpoint.",
};
/// `extension_point`: scheduler or request-control stage a plugin ran in.
pub const EXTENSION_POINT: Label = Label {
    name: "extension_point",
    help: "Extension point a plugin ran in, such as Filter, Scorer or Picker.",
};
/// `plugin_type`: the kebab-case plugin type string.
pub const PLUGIN_TYPE: Label = Label {
    name: "plugin_type",
    help: "Plugin type, such as queue-scorer.",
};
/// `plugin_name`: the instance name from the EPP config.
pub const PLUGIN_NAME: Label = Label {
    name: "plugin_name",
    help: "Plugin instance name from the EPP config.",
};
/// `decision_type`: the P/D decision.
pub const DECISION_TYPE: Label = Label {
    name: "decision_type",
    help: "Disaggregation decision: decode-only or prefill-decode.",
};
/// `commit` of the running build.
pub const COMMIT: Label = Label {
    name: "commit",
    help: "Source commit of the running build.",
};
/// `build_ref` of the running build.
pub const BUILD_REF: Label = Label {
    name: "build_ref",
    help: "Build reference (tag or version) of the running build.",
};

// P/D proxy and load generator.

/// `connector`: the KV connector protocol the P/D proxy speaks.
pub const CONNECTOR: Label = Label {
    name: "connector",
    help: "KV connector protocol of the P/D proxy, such as nixlv2.",
};
/// `outcome`: how a request ended; the family's help lists the values.
pub const OUTCOME: Label = Label {
    name: "outcome",
    help: "How a request ended; the family's help lists the values.",
};
/// `pattern`: the load generator's arrival pattern.
pub const PATTERN: Label = Label {
    name: "pattern",
    help: "Load generator arrival pattern, such as constant, poisson or burst.",
};

/// `resource`: the Kubernetes resource a watcher follows.
pub const RESOURCE: Label = Label {
    name: "resource",
    help: "Kubernetes resource a watcher follows, such as pods or inferencepools.",
};

/// Every label name.
pub const ALL: &[&Label] = &[
    &GRPC_CODE,
    &MODEL_NAME,
    &ENGINE,
    &REASON,
    &STAGE,
    &SLEEP_STATE,
    &SOURCE,
    &FINISHED_REASON,
    &MAX_LORA,
    &RUNNING_LORA_ADAPTERS,
    &WAITING_LORA_ADAPTERS,
    &BLOCK_SIZE,
    &CACHE_DTYPE,
    &ENABLE_PREFIX_CACHING,
    &GPU_MEMORY_UTILIZATION,
    &NUM_CPU_BLOCKS,
    &NUM_GPU_BLOCKS,
    &PREFIX_CACHING_HASH_ALGO,
    &HANDLER,
    &METHOD,
    &STATUS,
    &TARGET_MODEL_NAME,
    &PRIORITY,
    &ERROR_CODE,
    &NAME,
    &MODEL_SERVER_ENDPOINT,
    &POD_NAME,
    &NAMESPACE,
    &PORT,
    &EXTENSION_POINT,
    &PLUGIN_TYPE,
    &PLUGIN_NAME,
    &DECISION_TYPE,
    &COMMIT,
    &BUILD_REF,
    &CONNECTOR,
    &OUTCOME,
    &PATTERN,
    &RESOURCE,
];
