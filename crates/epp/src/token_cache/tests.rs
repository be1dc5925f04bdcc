//! Chunked tokenization equals whole-text tokenization.

use rand::{Rng, SeedableRng, rngs::SmallRng};

use crate::token_cache::{TokenCache, chunks};

fn random_text(rng: &mut SmallRng, len: usize) -> String {
    const PIECES: &[&str] = &[
        " ",
        "  ",
        "   ",
        "\n",
        "\n\n",
        "\t",
        " \n",
        "a",
        "word",
        "Hello",
        "don't",
        "it's",
        "'S",
        "123",
        "4567",
        "3.14",
        ",",
        ".",
        "!?",
        "...",
        "(",
        ")",
        "\"",
        "-",
        "é",
        "naïve",
        "日本語",
        "😀",
        "\u{301}",
        "\u{a0}",
        "\u{3000}",
        "x\u{301}",
        "ΑΒΓ",
        "<|endoftext|>",
        "'",
        "'ll",
        "__init__",
        "\r\n",
    ];
    let mut text = String::new();
    while text.len() < len {
        text.push_str(PIECES[rng.random_range(0..PIECES.len())]);
    }
    text
}

#[test]
fn chunked_tokens_equal_whole_text_tokens() {
    let tokenizer = tokenizer::Tokenizer::embedded();
    let cache = TokenCache::new(tokenizer.clone(), 1024);
    let mut rng = SmallRng::seed_from_u64(7);
    for round in 0..300 {
        let text = random_text(&mut rng, 200 + round * 17);
        assert_eq!(
            cache.encode(&text),
            tokenizer.encode(&text),
            "round {round}: {text:?}"
        );
        // Again, now from the cache.
        assert_eq!(
            cache.encode(&text),
            tokenizer.encode(&text),
            "round {round} cached"
        );
    }
}

#[test]
fn chunks_cover_the_text_and_cut_before_spaces() {
    let text = "word ".repeat(300);
    let parts: Vec<&str> = chunks(&text).collect();
    assert_eq!(parts.concat(), text);
    assert!(parts.len() > 1);
    assert!(parts[1..].iter().all(|part| part.starts_with(' ')));
}

#[test]
fn a_shared_prefix_is_served_from_the_cache() {
    let tokenizer = tokenizer::Tokenizer::embedded();
    let cache = TokenCache::new(tokenizer.clone(), 1024);
    let prefix = "The same long system prompt, again and again. ".repeat(100);
    let first = format!("{prefix}First question?");
    let second = format!("{prefix}Second question?");
    assert_eq!(cache.encode(&first), tokenizer.encode(&first));
    let cached_before = cache.lru.lock().chunks.len();
    assert_eq!(cache.encode(&second), tokenizer.encode(&second));
    let added = cache.lru.lock().chunks.len() - cached_before;
    assert!(added <= 1, "only the last chunk is new, {added} were added");
}

#[test]
fn the_cache_stays_within_its_capacity() {
    let cache = TokenCache::new(tokenizer::Tokenizer::embedded(), 4);
    let text = "distinct words everywhere ".repeat(200);
    cache.encode(&text);
    let lru = cache.lru.lock();
    assert!(lru.chunks.len() <= 4);
    assert_eq!(lru.by_tick.len(), lru.chunks.len());
}
