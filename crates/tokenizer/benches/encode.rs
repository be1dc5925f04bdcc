//! Encoding speed of the embedded tokenizer against `tiktoken` itself on the same text, in one
//! run: ASCII prose (the fast path) and prose with some non-ASCII words (mixed segments).
//!
//! `cargo bench -p tokenizer --bench encode`

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn prose(words: usize, unicode_every: usize) -> String {
    let vocabulary = [
        "the", "model", "routes", "each", "request", "to", "a", "pod", "that", "holds", "its",
        "prefix,", "and", "1234", "tokens", "don't", "move.", "(KV)", "cache\n",
    ];
    (0..words)
        .map(|i| {
            if unicode_every > 0 && i % unicode_every == 0 {
                "naïve"
            } else {
                vocabulary[(i * 7 + i / 3) % vocabulary.len()]
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn encode(c: &mut Criterion) {
    let ours = tokenizer::Tokenizer::embedded();
    let reference = tiktoken_rs::cl100k_base_singleton();
    for (name, text) in [
        ("ascii-8k", prose(6_000, 0)),
        ("mixed-8k", prose(6_000, 50)),
    ] {
        assert_eq!(ours.encode(&text), reference.encode_ordinary(&text));
        let mut group = c.benchmark_group(name);
        group.throughput(Throughput::Bytes(text.len() as u64));
        group.bench_function("tiktoken", |b| {
            b.iter(|| reference.encode_ordinary(std::hint::black_box(&text)))
        });
        group.bench_function("ours", |b| {
            b.iter(|| ours.encode(std::hint::black_box(&text)))
        });
        group.finish();
    }
}

criterion_group!(benches, encode);
criterion_main!(benches);
