//! The text of each guide file, filled from its [`Guide`].

use metrics_schema::vllm;

use super::{
    Guide, IMAGE_REGISTRY, IMAGE_TAG, INFERENCEPOOL_CHART_VERSION, INFRA_CHART_VERSION,
    KV_EVENTS_PORT, MODELSERVICE_CHART_VERSION, NIXL_PORT, Role, SERVICE_PORT, SIDECAR_TARGET_PORT,
    VLLM_IMAGE, fill, service_names,
};
use crate::codegen::generated_header;

const GENERATOR: &str = "guides";

fn yaml_header() -> String {
    generated_header(GENERATOR, ("# ", ""))
}

/// The files of one guide, as (path inside the guide's directory, text).
pub(super) fn guide_files(guide: &Guide) -> Vec<(String, String)> {
    let gaie = guide.gaie_dir();
    let ms = guide.ms_dir();
    vec![
        ("helmfile.yaml.gotmpl".to_owned(), helmfile(guide)),
        ("httproute.yaml".to_owned(), httproute(guide)),
        ("tokenizers.yaml".to_owned(), tokenizers(guide)),
        (format!("{gaie}/values.yaml"), gaie_values(guide, false)),
        (format!("{gaie}/values_sim.yaml"), gaie_values(guide, true)),
        (format!("{ms}/values.yaml"), ms_values(guide, false)),
        (format!("{ms}/values_sim.yaml"), ms_values(guide, true)),
        ("README.md".to_owned(), readme(guide)),
    ]
}

/// `guides/prereq/gateway-provider/common-configurations/*.yaml`: the per-provider values
/// the helmfiles slice into the three releases (`gateway:` → infra, `provider:` and
/// `inferenceExtension.flags` → inferencepool, `routing:` → modelservice).
pub(super) fn gateway_providers() -> Vec<(String, String)> {
    let header = yaml_header();
    vec![
        (
            "istio.yaml".to_owned(),
            format!(
                "{header}\
# Istio: the inferencepool chart's DestinationRule speaks TLS to the EPP without verifying
# it (our EPP, like upstream's, serves a self-signed certificate by default).
gateway:
  gatewayClassName: istio
  gatewayParameters:
    enabled: true
    istio:
      accessLogging: false
    logLevel: error
    resources:
      limits: {{cpu: \"16\", memory: 16Gi}}
      requests: {{cpu: \"4\", memory: 4Gi}}
inferenceExtension:
  flags:
    v: 1
provider:
  istio:
    destinationRule:
      trafficPolicy:
        connectionPool:
          http:
            http1MaxPendingRequests: 256000
            maxRequestsPerConnection: 256000
            http2MaxRequests: 256000
            idleTimeout: 900s
          tcp:
            maxConnections: 256000
            maxConnectionDuration: 1800s
            connectTimeout: 900s
routing:
  proxy:
    zapLogLevel: error
"
            ),
        ),
        (
            "kgateway.yaml".to_owned(),
            format!(
                "{header}\
# kgateway is deprecated upstream in favour of agentgateway; its class maps to agentgateway.
gateway:
  gatewayClassName: agentgateway
inferenceExtension:
  flags: {{}}
routing: {{}}
"
            ),
        ),
        (
            "agentgateway.yaml".to_owned(),
            format!(
                "{header}\
gateway:
  provider: agentgateway
  gatewayClassName: agentgateway
inferenceExtension:
  flags: {{}}
routing: {{}}
"
            ),
        ),
        (
            "gke.yaml".to_owned(),
            format!(
                "{header}\
# GKE's managed gateway; Google Managed Prometheus scrapes instead of PodMonitors.
gateway:
  gatewayClassName: gke-l7-regional-external-managed
  provider: gke
inferenceExtension:
  flags: {{}}
routing: {{}}
"
            ),
        ),
    ]
}

fn helmfile(guide: &Guide) -> String {
    let gaie = guide.gaie_dir();
    let ms = guide.ms_dir();
    fill(
        r#"%header%environments:
  istio: &I
    values:
      - ../prereq/gateway-provider/common-configurations/istio.yaml
  kgateway:
    values:
      - ../prereq/gateway-provider/common-configurations/kgateway.yaml
  agentgateway:
    values:
      - ../prereq/gateway-provider/common-configurations/agentgateway.yaml
  gke:
    values:
      - ../prereq/gateway-provider/common-configurations/gke.yaml
  default:
    <<: *I

---

# NAMESPACE: helmfile -n, default %namespace%.
# RELEASE_NAME_POSTFIX: names infra-<rn>, gaie-<rn>, ms-<rn> (default %release%), so
#   several copies can share a namespace.
# MODEL_SERVER: vllm (default, GPUs) or sim (our vLLM simulator: no GPUs, same wire).
# IMAGE_REGISTRY / IMAGE_TAG: where our images are (default %registry%, %tag%).
{{- $ns := .Namespace | default "%namespace%" -}}
{{- $rn := (env "RELEASE_NAME_POSTFIX") | default "%release%" -}}
{{- $ms := (env "MODEL_SERVER") | default "vllm" -}}
{{- $registry := (env "IMAGE_REGISTRY") | default "%registry%" -}}
{{- $tag := (env "IMAGE_TAG") | default "%tag%" }}

repositories:
  - name: llm-d-modelservice
    url: https://llm-d-incubation.github.io/llm-d-modelservice/
  - name: llm-d-infra
    url: https://llm-d-incubation.github.io/llm-d-infra/

releases:
  - name: infra-{{ $rn }}
    namespace: {{ $ns }}
    chart: llm-d-infra/llm-d-infra
    version: %infra_version%
    installed: true
    labels:
      type: infrastructure
      kind: inference-stack
    values:
      - gateway:
          {{ .Environment.Values.gateway | toYaml | nindent 10 }}

  - name: gaie-{{ $rn }}
    namespace: {{ $ns }}
    chart: oci://registry.k8s.io/gateway-api-inference-extension/charts/inferencepool
    version: %pool_version%
    installed: true
    needs:
      - infra-{{ $rn }}
    labels:
      kind: inference-stack
    values:
      - %gaie%/values.yaml
      {{- if eq $ms "sim" }}
      - %gaie%/values_sim.yaml
      {{- end }}
      - inferenceExtension:
          image:
            hub: {{ $registry }}
            tag: {{ $tag }}
          flags:
            {{ .Environment.Values.inferenceExtension.flags | toYaml | nindent 12 }}
      {{- if eq .Environment.Name "gke" }}
      - provider:
          name: gke
        inferenceExtension:
          monitoring:
            prometheus:
              enabled: true
      {{- end }}
      {{- if or (eq .Environment.Name "istio") (eq .Environment.Name "default") }}
      - provider:
          name: istio
          istio:
            destinationRule:
              host: gaie-{{ $rn }}-epp.{{ $ns }}.svc.cluster.local
              trafficPolicy:
                {{ .Environment.Values.provider.istio.destinationRule.trafficPolicy | toYaml | nindent 16 }}
      {{- end }}

  - name: ms-{{ $rn }}
    namespace: {{ $ns }}
    chart: llm-d-modelservice/llm-d-modelservice
    version: %ms_version%
    installed: true
    needs:
      - infra-{{ $rn }}
      - gaie-{{ $rn }}
    labels:
      kind: inference-stack
    values:
      {{- if eq $ms "sim" }}
      - %ms%/values_sim.yaml
      {{- else }}
      - %ms%/values.yaml
      {{- end }}
%routing_image%      - routing:
          {{ .Environment.Values.routing | toYaml | nindent 10 }}
    set:
      # Fills GAIE_RELEASE_NAME_POSTFIX (env index 0), which names the EPP's KV-events Service.
      - name: decode.containers[0].env[0].value
        value: {{ $rn }}
      {{- if eq $ms "sim" }}
      - name: decode.containers[0].image
        value: {{ $registry }}/vllm-sim:{{ $tag }}
      {{- end }}
%prefill_set%      {{- if eq .Environment.Name "gke" }}
      - name: decode.monitoring.podmonitor.enabled
        value: false
%prefill_gke%      {{- end }}
"#,
        &[
            ("header", &yaml_header()),
            ("namespace", guide.namespace),
            ("release", guide.release),
            ("registry", IMAGE_REGISTRY),
            ("tag", IMAGE_TAG),
            ("infra_version", INFRA_CHART_VERSION),
            ("pool_version", INFERENCEPOOL_CHART_VERSION),
            ("ms_version", MODELSERVICE_CHART_VERSION),
            ("gaie", &gaie),
            ("ms", &ms),
            (
                "routing_image",
                if guide.prefill.is_some() {
                    "      - routing:
          proxy:
            image: {{ $registry }}/pd-proxy:{{ $tag }}
"
                } else {
                    ""
                },
            ),
            (
                "prefill_set",
                if guide.prefill.is_some() {
                    "      - name: prefill.containers[0].env[0].value
        value: {{ $rn }}
      {{- if eq $ms \"sim\" }}
      - name: prefill.containers[0].image
        value: {{ $registry }}/vllm-sim:{{ $tag }}
      {{- end }}
"
                } else {
                    ""
                },
            ),
            (
                "prefill_gke",
                if guide.prefill.is_some() {
                    "      - name: prefill.monitoring.podmonitor.enabled
        value: false
"
                } else {
                    ""
                },
            ),
        ],
    )
}

fn httproute(guide: &Guide) -> String {
    fill(
        "%header%# Applied by hand after `helmfile apply` (names for the default RELEASE_NAME_POSTFIX).
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: %route%
spec:
  parentRefs:
    - group: gateway.networking.k8s.io
      kind: Gateway
      name: %gateway%
  rules:
    - backendRefs:
        - group: inference.networking.k8s.io
          kind: InferencePool
          name: %pool%
          port: %port%
          weight: 1
      matches:
        - path:
            type: PathPrefix
            value: /
      timeouts:
        backendRequest: 0s
        request: 0s
",
        &[
            ("header", &yaml_header()),
            ("route", guide.route),
            ("gateway", &guide.gateway()),
            ("pool", &guide.pool()),
            ("port", &SERVICE_PORT.to_string()),
        ],
    )
}

/// Where the EPP reads the model's `tokenizer.json` (real vLLM only; the simulator and the
/// EPP share the embedded tokenizer).
fn tokenizer_path(guide: &Guide) -> String {
    format!("/tokenizers/{}/tokenizer.json", guide.model.id)
}

const TOKENIZERS_PVC: &str = "llm-d-tokenizers";

/// A PVC for the model's tokenizer and a Job that downloads it, for the EPP to mount.
fn tokenizers(guide: &Guide) -> String {
    fill(
        "%header%# The EPP tokenizes prompts with the model's own tokenizer, read from this volume.
# Apply before `helmfile apply` when MODEL_SERVER=vllm (the simulator needs none):
#   kubectl apply -n ${NAMESPACE} -f tokenizers.yaml
#   kubectl wait -n ${NAMESPACE} --for=condition=complete job/%pvc%-download
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: %pvc%
  labels:
    llm-d.ai/guide: %guide%
spec:
  accessModes: [ReadWriteOnce]
  resources:
    requests:
      storage: 1Gi
---
apiVersion: batch/v1
kind: Job
metadata:
  name: %pvc%-download
  labels:
    llm-d.ai/guide: %guide%
spec:
  backoffLimit: 4
  template:
    spec:
      restartPolicy: OnFailure
      containers:
        - name: download
          image: python:3.12-slim
          command: [sh, -c]
          args:
            - >-
              pip install --quiet 'huggingface_hub>=0.30' &&
              hf download %model% tokenizer.json tokenizer_config.json
              --local-dir /tokenizers/%model%
          env:
            - name: HF_TOKEN
              valueFrom:
                secretKeyRef:
                  name: llm-d-hf-token
                  key: HF_TOKEN
                  optional: true
          volumeMounts:
            - name: tokenizers
              mountPath: /tokenizers
      volumes:
        - name: tokenizers
          persistentVolumeClaim:
            claimName: %pvc%
",
        &[
            ("header", &yaml_header()),
            ("pvc", TOKENIZERS_PVC),
            ("guide", guide.name),
            ("model", guide.model.id),
        ],
    )
}

/// The EPP's plugin config (`EndpointPickerConfig`); `sim`: the simulator's pods, which
/// tokenize with the embedded tokenizer the EPP also defaults to.
pub(super) fn plugins_config(guide: &Guide, sim: bool) -> String {
    let tokenizer = if sim {
        String::new()
    } else {
        format!(
            "
      tokenizersPoolConfig:
        modelName: {model}
        local:
          modelTokenizerMap:
            {model}: {path}",
            model = guide.model.id,
            path = tokenizer_path(guide),
        )
    };
    let scorer = format!(
        "- type: precise-prefix-cache-scorer
  parameters:
    tokenProcessorConfig:
      blockSize: {block_size}
    indexerConfig:
      kvBlockIndexConfig:
        enableMetrics: true{tokenizer}
    kvEventsConfig:
      zmqEndpoint: tcp://*:{KV_EVENTS_PORT}
      topicFilter: kv@",
        block_size = guide.block_size,
    );
    if guide.prefill.is_some() {
        format!(
            "apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: prefill-header-handler
- type: prefill-filter
- type: decode-filter
{scorer}
- type: queue-scorer
- type: max-score-picker
# Disaggregate when more than 16 prompt tokens are not cached on the decode pod.
- type: prefix-based-pd-decider
  parameters:
    nonCachedTokens: 16
    prefixPluginName: precise-prefix-cache-scorer
- type: pd-profile-handler
  parameters:
    deciderPluginName: prefix-based-pd-decider
    prefixPluginName: precise-prefix-cache-scorer
schedulingProfiles:
- name: prefill
  plugins:
  - pluginRef: prefill-filter
  - pluginRef: max-score-picker
  - pluginRef: precise-prefix-cache-scorer
    weight: 2
  - pluginRef: queue-scorer
    weight: 1
- name: decode
  plugins:
  - pluginRef: decode-filter
  - pluginRef: max-score-picker
  - pluginRef: precise-prefix-cache-scorer
    weight: 2
  - pluginRef: queue-scorer
    weight: 1
"
        )
    } else {
        format!(
            "apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: single-profile-handler
{scorer}
- type: kv-cache-utilization-scorer
- type: queue-scorer
- type: max-score-picker
schedulingProfiles:
- name: default
  plugins:
  - pluginRef: precise-prefix-cache-scorer
    weight: 3
  - pluginRef: kv-cache-utilization-scorer
    weight: 2
  - pluginRef: queue-scorer
    weight: 2
  - pluginRef: max-score-picker
"
        )
    }
}

fn indent(text: &str, spaces: usize) -> String {
    let pad = " ".repeat(spaces);
    text.lines()
        .map(|line| {
            if line.is_empty() {
                String::new()
            } else {
                format!("{pad}{line}")
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn labels_yaml(labels: &[(&str, &str)], spaces: usize) -> String {
    let pad = " ".repeat(spaces);
    labels
        .iter()
        .map(|(key, value)| format!("{pad}{key}: {value:?}"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn gaie_values(guide: &Guide, sim: bool) -> String {
    let services = service_names();
    let epp_service = services[0].1;
    let config = indent(&plugins_config(guide, sim), 6);
    let tokenizer_volume = if sim {
        // Lists replace, not merge: the simulator's pods need no tokenizer volume.
        "  volumes: []\n  volumeMounts: []\n".to_owned()
    } else {
        format!(
            "  volumes:
    - name: tokenizers
      persistentVolumeClaim:
        claimName: {TOKENIZERS_PVC}
        readOnly: true
  volumeMounts:
    - name: tokenizers
      mountPath: /tokenizers
      readOnly: true
"
        )
    };
    let header = yaml_header();
    let note = if sim {
        "# With MODEL_SERVER=sim, over values.yaml: the simulator's pods and no tokenizer volume.\n"
    } else {
        ""
    };
    format!(
        "{header}{note}inferenceExtension:
  replicas: 1
  image:
    name: epp
    hub: {IMAGE_REGISTRY}
    tag: {IMAGE_TAG}
    pullPolicy: IfNotPresent
  extProcPort: 9002
  flags:
    kv-cache-usage-percentage-metric: {kv_metric:?}
    total-queued-requests-metric: {queued_metric:?}
    total-running-requests-metric: {running_metric:?}
  extraContainerPorts:
    - name: zmq
      containerPort: {KV_EVENTS_PORT}
      protocol: TCP
  extraServicePorts:
    - name: zmq
      port: {KV_EVENTS_PORT}
      targetPort: {KV_EVENTS_PORT}
      protocol: TCP
{tokenizer_volume}  pluginsConfigFile: {file}
  pluginsCustomConfig:
    {file}: |
{config}
  monitoring:
    interval: 10s
    prometheus:
      enabled: true
      # /metrics answers only the reader token in this Secret (TokenReview and
      # SubjectAccessReview, as upstream's EPP).
      auth:
        enabled: true
        secretName: {release}-gateway-sa-metrics-reader-secret
  tracing:
    enabled: false
    otelExporterEndpoint: http://otel-collector:4318
    sampling:
      sampler: parentbased_traceidratio
      samplerArg: \"0.1\"
  env:
    - name: OTEL_SERVICE_NAME
      value: {epp_service}
    - name: OTEL_EXPORTER_OTLP_PROTOCOL
      value: http/protobuf
inferencePool:
  targetPorts:
    - number: {SERVICE_PORT}
  modelServerType: vllm
  modelServers:
    matchLabels:
{selector}
",
        kv_metric = vllm::KV_CACHE_USAGE_PERC.name,
        queued_metric = vllm::NUM_REQUESTS_WAITING.name,
        running_metric = vllm::NUM_REQUESTS_RUNNING.name,
        file = guide.plugins_file,
        selector = labels_yaml(&guide.pool_selector(), 6),
        release = guide.release,
    )
}

/// Common vLLM flags of one role; `sim` keeps to the flags the simulator models.
fn vllm_args(guide: &Guide, sim: bool) -> Vec<String> {
    let mut args = vec![
        format!("--block-size={}", guide.block_size),
        format!("--max-model-len={}", guide.max_model_len),
    ];
    if guide.prefill.is_some() {
        args.push(
            r#"--kv-transfer-config={"kv_connector":"NixlConnector","kv_role":"kv_both"}"#
                .to_owned(),
        );
    }
    if guide.kv_events {
        args.push(format!(
            r#"--kv-events-config={{"enable_kv_cache_events":true,"publisher":"zmq","endpoint":"{}","topic":"{}"}}"#,
            guide.kv_events_endpoint(),
            guide.kv_events_topic()
        ));
    }
    if sim {
        // Simulated timing: a prefill cost per uncached token and a steady decode.
        args.extend([
            "--prefill-overhead=15".to_owned(),
            "--prefill-time-per-token=0.05".to_owned(),
            "--inter-token-latency=20".to_owned(),
            "--inter-token-latency-std-dev=2".to_owned(),
            "--kv-cache-transfer-time-per-token=0.01".to_owned(),
        ]);
    } else {
        args.extend([
            "--disable-uvicorn-access-log".to_owned(),
            "--gpu-memory-utilization=0.95".to_owned(),
        ]);
    }
    args
}

/// A model-server container block (one role).
fn container(guide: &Guide, role: &Role, port: u16, sim: bool) -> String {
    let args = vllm_args(guide, sim)
        .iter()
        .map(|arg| format!("        - {}", yaml_single_quoted(arg)))
        .collect::<Vec<_>>()
        .join("\n");
    let (image, command, resources) = if sim {
        (
            format!("{IMAGE_REGISTRY}/vllm-sim:{IMAGE_TAG}"),
            // imageDefault: the chart passes --model, --port, --served-model-name.
            "imageDefault",
            "          cpu: \"1\"\n          memory: 1Gi".to_owned(),
        )
    } else {
        (
            VLLM_IMAGE.to_owned(),
            "vllmServe",
            format!(
                "          cpu: \"{cpu}\"\n          memory: {memory}",
                cpu = role.cpu,
                memory = role.memory
            ),
        )
    };
    let nixl = if guide.prefill.is_some() {
        format!(
            "
        - containerPort: {NIXL_PORT}
          name: nixl
          protocol: TCP"
        )
    } else {
        String::new()
    };
    let nixl_env = if guide.prefill.is_some() {
        "
        - name: VLLM_NIXL_SIDE_CHANNEL_HOST
          valueFrom:
            fieldRef:
              fieldPath: status.podIP"
    } else {
        ""
    };
    let mounts = if sim {
        ""
    } else {
        "
      mountModelVolume: true
      volumeMounts:
        - name: metrics-volume
          mountPath: /.config
        - name: shm
          mountPath: /dev/shm
        - name: torch-compile-cache
          mountPath: /.cache"
    };
    format!(
        "    - name: vllm
      image: {image}
      modelCommand: {command}
      args:
{args}
      env:
        # Index 0 matters: the helmfile fills it with the release postfix.
        - name: GAIE_RELEASE_NAME_POSTFIX
        - name: NAMESPACE
          valueFrom:
            fieldRef:
              fieldPath: metadata.namespace
        - name: POD_IP
          valueFrom:
            fieldRef:
              fieldPath: status.podIP{nixl_env}
      ports:
        - containerPort: {port}
          name: vllm
          protocol: TCP{nixl}
      resources:
        limits:
{resources}
        requests:
{resources}{mounts}
      startupProbe:
        httpGet:
          path: /v1/models
          port: vllm
        initialDelaySeconds: {startup_delay}
        periodSeconds: {startup_period}
        timeoutSeconds: 5
        failureThreshold: 60
      livenessProbe:
        httpGet:
          path: /health
          port: vllm
        periodSeconds: 10
        timeoutSeconds: 5
        failureThreshold: 3
      readinessProbe:
        httpGet:
          path: /v1/models
          port: vllm
        periodSeconds: 5
        timeoutSeconds: 2
        failureThreshold: 3",
        startup_delay = if sim { 1 } else { 15 },
        startup_period = if sim { 2 } else { 30 },
    )
}

fn yaml_single_quoted(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

fn role_block(guide: &Guide, name: &str, role: &Role, port: u16, sim: bool) -> String {
    let volumes = if sim {
        String::new()
    } else {
        "
  volumes:
    - name: metrics-volume
      emptyDir: {}
    - name: shm
      emptyDir:
        medium: Memory
        sizeLimit: 16Gi
    - name: torch-compile-cache
      emptyDir: {}"
            .to_owned()
    };
    let (replicas, tensor) = if sim {
        (role.replicas.min(2), 1)
    } else {
        (role.replicas, role.tensor)
    };
    format!(
        "{name}:
  create: true
  replicas: {replicas}
  parallelism:
    tensor: {tensor}
  monitoring:
    podmonitor:
      enabled: true
      portName: vllm
      path: /metrics
      interval: 30s
  containers:
{container}{volumes}
",
        container = container(guide, role, port, sim),
    )
}

fn ms_values(guide: &Guide, sim: bool) -> String {
    let services = service_names();
    let header = yaml_header();
    let note = if sim {
        "# MODEL_SERVER=sim: our vLLM simulator in place of vLLM (no GPUs; the same API, metrics,\n\
         # KV events and P/D wire). The helmfile fills the image registry and tag.\n"
    } else {
        ""
    };
    let accelerator = if sim { "cpu" } else { "nvidia" };
    let decode_port = if guide.prefill.is_some() {
        SIDECAR_TARGET_PORT
    } else {
        SERVICE_PORT
    };
    let routing = if guide.prefill.is_some() {
        format!(
            "routing:
  servicePort: {SERVICE_PORT}
  proxy:
    enabled: true
    image: {IMAGE_REGISTRY}/pd-proxy:{IMAGE_TAG}
    targetPort: {SIDECAR_TARGET_PORT}
    connector: nixlv2
    secure: false
"
        )
    } else {
        format!(
            "routing:
  servicePort: {SERVICE_PORT}
  proxy:
    enabled: false
"
        )
    };
    let prefill = match &guide.prefill {
        Some(role) => role_block(guide, "prefill", role, SERVICE_PORT, sim),
        None => "prefill:\n  create: false\n".to_owned(),
    };
    format!(
        "{header}{note}multinode: false
accelerator:
  type: {accelerator}
modelArtifacts:
  uri: hf://{model}
  name: {model}
  size: {size}
  authSecretName: llm-d-hf-token
  labels:
{labels}
    llm-d.ai/accelerator-vendor: {accelerator:?}
tracing:
  enabled: false
  otlpEndpoint: http://otel-collector:4317
  sampling:
    sampler: parentbased_traceidratio
    samplerArg: \"0.1\"
  serviceNames:
    vllmDecode: {vllm_decode}
    vllmPrefill: {vllm_prefill}
    routingProxy: {pd_proxy}
{routing}{decode}{prefill}",
        model = guide.model.id,
        size = if sim { "1Gi" } else { guide.model.size },
        labels = labels_yaml(&guide.pod_labels(), 4),
        vllm_decode = services[2].1,
        vllm_prefill = services[3].1,
        pd_proxy = services[1].1,
        decode = role_block(guide, "decode", &guide.decode, decode_port, sim),
    )
}

fn readme(guide: &Guide) -> String {
    let header = generated_header(GENERATOR, ("<!-- ", " -->"));
    let pd = guide.prefill.is_some();
    let shape = match &guide.prefill {
        Some(prefill) => format!(
            "{} prefill pod(s) (TP{}) and {} decode pod(s) (TP{}) behind our P/D sidecar \
             (`pd-proxy`); the EPP's `prefix-based-pd-decider` disaggregates a request when \
             more than 16 of its prompt tokens are not cached on the chosen decode pod.",
            prefill.replicas, prefill.tensor, guide.decode.replicas, guide.decode.tensor
        ),
        None => format!(
            "{} vLLM pods (TP{}); every pod publishes its KV-cache events to the EPP, whose \
             precise prefix-cache scorer routes each request to the pod that holds most of its \
             prefix.",
            guide.decode.replicas, guide.decode.tensor
        ),
    };
    let decode_ready = if pd {
        "2/2 (vLLM + routing-proxy)"
    } else {
        "1/1"
    };
    let check = if pd {
        "Send a long prompt twice. The first is disaggregated (the sidecar's \
`llm_d_inference_scheduler_pd_proxy_requests_total{outcome=\"disaggregated\"}` grows and the \
EPP counts `llm_d_epp_pd_decision_total{decision_type=\"prefill-decode\"}`), the second hits \
the decode pod's cache and stays decode-only."
    } else {
        "Send the same ~200-word prompt twice. The second is routed to the pod that served the \
first: `llm_d_epp_prefix_cache_scorer_matched_blocks` and \
`llm_d_epp_prefix_cache_hits_total` grow on the EPP's `/metrics`."
    };
    format!(
        "{header}# {title}

{shape}

The guide deploys our binaries with the same three charts as llm-d's helmfile guides:
`llm-d-infra` (the gateway), GAIE's `inferencepool` (the InferencePool and our EPP image) and
`llm-d-modelservice` (the vLLM pods{sidecar}). Every file here is rendered by
`cargo xtask codegen guides` from one description of the guide, so names that must agree
across files (`{pool}` in the KV-events endpoint and the route, the pool's selector and the pod
labels, `--block-size={block}` and the scorer's `blockSize`) cannot drift.

## What gets deployed

| object | name |
|---|---|
| Gateway | `{gateway}` |
| InferencePool | `{pool}` (port {port}) |
| EPP Deployment, Service (9002 ext_proc, 9090 metrics, {zmq} KV events) | `{epp}` |
| model servers | `{ms}-llm-d-modelservice-decode`{prefill_name} |
| HTTPRoute | `{route}` |
| model | `{model}`, block size {block} |

## Deploy

1. Prerequisites as for llm-d: the Gateway API and Inference Extension CRDs, a gateway
   provider (istio, agentgateway or GKE), the Prometheus Operator CRDs, and our images
   (`docker build --target epp|pd-proxy|vllm-sim -t $IMAGE_REGISTRY/<target>:$IMAGE_TAG .`
   from the repository root, then push).
2. `export NAMESPACE={namespace} && kubectl create namespace ${{NAMESPACE}}`, and the Hugging
   Face token: `kubectl create secret generic llm-d-hf-token --from-literal=HF_TOKEN=${{HF_TOKEN}} -n ${{NAMESPACE}}`.
3. With real vLLM, the EPP needs the model's tokenizer:
   `kubectl apply -n ${{NAMESPACE}} -f tokenizers.yaml` and wait for the job.
4. `helmfile apply -n ${{NAMESPACE}}` (add `-e agentgateway` or `-e gke` for another provider).
   Without GPUs: `MODEL_SERVER=sim helmfile apply -n ${{NAMESPACE}}` runs our vLLM simulator
   in place of vLLM, with the same API, `vllm:*` metrics, KV events and P/D wire.
5. `kubectl apply -n ${{NAMESPACE}} -f httproute.yaml`.
6. Dashboards: `kubectl apply -n llm-d-monitoring -f ../monitoring/dashboards.yaml` (Grafana's
   sidecar loads ConfigMaps labelled `grafana_dashboard: \"1\"`).

## Verify

* `helm list -n ${{NAMESPACE}}` shows `infra-{release}`, `gaie-{release}`, `ms-{release}`.
* `kubectl get pods -n ${{NAMESPACE}}`: the EPP 1/1, decode pods {decode_ready}.
* `kubectl port-forward -n ${{NAMESPACE}} svc/{gateway}-istio 8000:80`, then
  `curl -s localhost:8000/v1/models`.
* {check}
* Drive traffic with our load generator:
  `load-gen pd-concurrent --endpoint http://localhost:8000/v1 --model {model}`.

## Clean up

`helmfile destroy -n ${{NAMESPACE}}` and `kubectl delete -n ${{NAMESPACE}} -f httproute.yaml`.
",
        title = guide.title,
        sidecar = if pd { " and our P/D sidecar" } else { "" },
        pool = guide.pool(),
        block = guide.block_size,
        gateway = guide.gateway(),
        port = SERVICE_PORT,
        zmq = KV_EVENTS_PORT,
        epp = guide.epp(),
        ms = guide.ms_release(),
        prefill_name = if pd {
            format!(", `{}-llm-d-modelservice-prefill`", guide.ms_release())
        } else {
            String::new()
        },
        route = guide.route,
        model = guide.model.id,
        namespace = guide.namespace,
        release = guide.release,
    )
}
