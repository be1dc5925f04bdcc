//! The fast encoder against `tiktoken` itself: hand-picked edge cases of every alternative of
//! the split pattern, then random text built from the same fragments.

use rand::{Rng, SeedableRng, rngs::StdRng};

use super::*;

fn check(fast: &FastCl100k, text: &str) {
    let expected = fast.reference.encode_ordinary(text);
    assert_eq!(fast.encode(text), expected, "text: {text:?}");
}

fn fast() -> FastCl100k {
    FastCl100k::new(tiktoken_rs::cl100k_base_singleton())
}

#[test]
fn edge_cases_of_each_alternative_match_tiktoken() {
    let fast = fast();
    let cases = [
        "",
        "a",
        " ",
        "hello world",
        // contractions, any case, and near misses
        "don't I'M we'Ll you've they're she'd it's 'sa 'LLx 'v '",
        // a non-letter glued to letters, numbers in threes
        "!abc ?x\tword 1234567 a1b2 12 3",
        // punctuation runs with and without a leading space, with trailing newlines
        "x !!! ?.\n\n, ;:\r\n end",
        // whitespace: runs before words, digits and punctuation, at the end, with newlines
        "a   b    1  ! \t\tc  \n  d \n\n  \r\n",
        "trailing   ",
        "   leading",
        "\n\n\n",
        "\u{b}\u{c} vt ff \u{b}x",
        "tabs\t\tand\t spaces \t",
        // control characters are neither letters, numbers nor whitespace
        "\u{1}\u{2}abc \u{1f} \u{7f}x",
        // a piece long enough for tiktoken's heap merge, and long runs of each class
        &"z".repeat(300),
        &"!".repeat(250),
        &" ".repeat(120),
        &format!("{}x", " ".repeat(130)),
        // non-ASCII goes to tiktoken, its ASCII neighbours to the fast path
        "Ünïcödé and 数字 123456, emoji 🦀 and curly ‘quotes’ mixed in",
        "ascii first, then Ü\u{3000} ideographic space\u{a0}nbsp  x",
        "é",
        " é é  é",
    ];
    for text in cases {
        check(&fast, text);
    }
}

#[test]
fn random_text_matches_tiktoken() {
    let fast = fast();
    let fragments = [
        "the",
        "The",
        " quick",
        "brown",
        "fox",
        "'s",
        "'LL",
        "'",
        "don't",
        "1",
        "23",
        "4567",
        " ",
        "  ",
        "   ",
        "\t",
        "\n",
        "\r\n",
        "\n\n",
        " \n ",
        "\u{b}",
        "!",
        "?!",
        ".",
        ",",
        "...",
        "(",
        ")",
        "{\"k\": [1, 2]}",
        "<|im_start|>",
        "_",
        "-",
        "a1",
        "x_y",
        "é",
        "数字",
        "🦀",
        "\u{a0}",
        "\u{3000}",
        "ß",
        "İ",
        "ﬁ",
        "\u{301}",
    ];
    let mut rng = StdRng::seed_from_u64(7);
    for _ in 0..3_000 {
        let len = rng.random_range(1..60);
        let text: String = (0..len)
            .map(|_| fragments[rng.random_range(0..fragments.len())])
            .collect();
        check(&fast, &text);
    }
    // Long ASCII-only documents, the common case.
    for _ in 0..50 {
        let len = rng.random_range(500..3_000);
        let text: String = (0..len)
            .map(|_| fragments[rng.random_range(0..32)])
            .collect();
        check(&fast, &text);
    }
}

#[test]
fn every_byte_value_alone_and_in_pairs_matches_tiktoken() {
    let fast = fast();
    let ascii: Vec<char> = (0u8..128).map(char::from).collect();
    for &a in &ascii {
        check(&fast, &a.to_string());
        for &b in &ascii {
            check(&fast, &format!("{a}{b}x {a}{b}"));
        }
    }
}

#[test]
fn segments_cover_the_text_in_order() {
    let text = "ab cd é fg  数 h i";
    let joined: String = segments(text).map(|(segment, _)| segment).collect();
    assert_eq!(joined, text);
    let kinds: Vec<bool> = segments(text).map(|(_, ascii)| ascii).collect();
    assert_eq!(kinds, vec![true, false, true, false, true]);
}
