//! The scoring API over a real gRPC connection on 127.0.0.1: a pod that stored a prompt's
//! blocks (as vLLM reports them, engine keys from vLLM's own hash) scores for it, bad requests
//! get InvalidArgument, and every call is counted by code.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;

use super::proto::{GetPodScoresRequest, GetPodScoresResponse};
use super::*;
use crate::events::{BlockHashValue, BlockStored, KvEvent, KvEventBatch};
use crate::hash::{BlockHasher, HashAlgo, RequestExtras};
use crate::index::{IndexConfig, KeyMode, KvIndex, TokenChain};

const BLOCK_SIZE: usize = 16;
const MODEL: &str = "test-model";

fn prompt_keys() -> PromptKeys {
    PromptKeys {
        key_mode: KeyMode::Engine,
        block_size: BLOCK_SIZE,
        hasher: BlockHasher::from_python_hash_seed(HashAlgo::Sha256, None),
        chain: TokenChain { seed: 0 },
        tokenizers: HashMap::new(),
        default_tokenizer: Arc::new(Tokenizer::embedded()),
    }
}

/// `pod` stores the first `blocks` full blocks of `prompt`, as vLLM's event reports them.
fn store(index: &KvIndex, pod: &str, prompt: &str, blocks: usize) {
    let tokens = Tokenizer::embedded().encode(prompt);
    let tokens = &tokens[..blocks * BLOCK_SIZE];
    let mut hasher = BlockHasher::from_python_hash_seed(HashAlgo::Sha256, None);
    let hashes = hasher
        .hash_request(tokens, BLOCK_SIZE, &RequestExtras::default())
        .expect("hashes");
    let batch = KvEventBatch {
        ts: 1.0,
        events: vec![KvEvent::BlockStored(BlockStored {
            block_hashes: hashes
                .iter()
                .map(|hash| BlockHashValue::U64(hash.external_u64()))
                .collect(),
            parent_block_hash: None,
            token_ids: tokens.to_vec(),
            block_size: BLOCK_SIZE as u32,
            medium: Some("GPU".to_owned()),
            ..BlockStored::default()
        })],
        data_parallel_rank: None,
    };
    index.apply_batch(pod, MODEL, &batch);
}

struct Served {
    client: IndexerServiceClient<tonic::transport::Channel>,
    registry: prometheus::Registry,
    server: tokio::task::JoinHandle<()>,
}

async fn serve(index: Arc<KvIndex>) -> Served {
    let registry = prometheus::Registry::new();
    let metrics = Metrics::register(&registry).expect("metrics");
    let service = IndexerService::new(index, prompt_keys(), Some(metrics));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(service.into_server())
            .serve_with_incoming(TcpListenerStream::new(listener))
            .await
            .expect("serve");
    });
    let client = IndexerServiceClient::connect(format!("http://{addr}"))
        .await
        .expect("connect");
    Served {
        client,
        registry,
        server,
    }
}

fn prompt() -> String {
    (0..120)
        .map(|i| format!("word{i}"))
        .collect::<Vec<_>>()
        .join(" ")
}

async fn scores(
    served: &mut Served,
    prompt: &str,
    pods: &[&str],
) -> Result<GetPodScoresResponse, tonic::Status> {
    served
        .client
        .get_pod_scores(GetPodScoresRequest {
            prompt: prompt.to_owned(),
            model_name: MODEL.to_owned(),
            pod_identifiers: pods.iter().map(|pod| (*pod).to_owned()).collect(),
        })
        .await
        .map(tonic::Response::into_inner)
}

fn counted(registry: &prometheus::Registry, code: &str) -> f64 {
    let text = String::from_utf8(telemetry::encode_metrics(registry)).expect("UTF-8");
    let wanted = format!("llm_d_kv_index_grpc_requests_total{{grpc_code=\"{code}\"}} ");
    text.lines()
        .find_map(|line| line.strip_prefix(&wanted))
        .and_then(|value| value.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test]
async fn pods_score_by_the_prefix_they_hold() {
    let index = Arc::new(KvIndex::new(IndexConfig::default()));
    let prompt = prompt();
    store(&index, "10.0.0.1:8000", &prompt, 4);
    store(&index, "10.0.0.2:8000", &prompt, 2);
    let mut served = serve(index).await;

    let all = scores(&mut served, &prompt, &[]).await.expect("scored");
    let pods: Vec<(&str, f64)> = all
        .scores
        .iter()
        .map(|score| (score.pod.as_str(), score.score))
        .collect();
    assert_eq!(pods, [("10.0.0.1:8000", 4.0), ("10.0.0.2:8000", 2.0)]);

    // Asked-for pods only, best first, an unknown pod at 0.
    let some = scores(&mut served, &prompt, &["10.0.0.9:8000", "10.0.0.2:8000"])
        .await
        .expect("scored");
    let pods: Vec<(&str, f64)> = some
        .scores
        .iter()
        .map(|score| (score.pod.as_str(), score.score))
        .collect();
    assert_eq!(pods, [("10.0.0.2:8000", 2.0), ("10.0.0.9:8000", 0.0)]);

    // A different prompt matches nothing.
    let other = scores(&mut served, "Something else entirely, at some length.", &[])
        .await
        .expect("scored");
    assert!(other.scores.is_empty(), "{:?}", other.scores);
    assert_eq!(counted(&served.registry, "OK"), 3.0);
    served.server.abort();
}

#[tokio::test]
async fn bad_requests_are_refused_and_counted() {
    let mut served = serve(Arc::new(KvIndex::new(IndexConfig::default()))).await;
    let cases: [(String, Vec<&str>, &str); 3] = [
        (String::new(), vec![], "prompt is empty"),
        ("x".repeat(MAX_PROMPT_BYTES + 1), vec![], "over the limit"),
        (
            "hello".to_owned(),
            vec!["pod-a", ""],
            "pod_identifiers[1] is empty",
        ),
    ];
    for (prompt, pods, message) in &cases {
        let status = scores(&mut served, prompt, pods).await.unwrap_err();
        // The oversized prompt may be refused by gRPC's own 4 MiB limit first.
        assert!(
            status.code() == tonic::Code::InvalidArgument
                || status.code() == tonic::Code::OutOfRange
                || status.code() == tonic::Code::ResourceExhausted,
            "{status:?}"
        );
        if status.code() == tonic::Code::InvalidArgument {
            assert!(status.message().contains(message), "{status:?}");
        }
    }
    assert!(counted(&served.registry, "InvalidArgument") >= 2.0);
    served.server.abort();
}
