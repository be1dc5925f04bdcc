//! Unit tests of `pattern`: the upstream script's table, request by request.

use std::time::Duration;

use rand::{SeedableRng, rngs::StdRng};

use super::Pattern;
use crate::prompt::PromptClass;

fn steps(pattern: Pattern, count: u64) -> Vec<super::PatternStep> {
    let mut rng = StdRng::seed_from_u64(42);
    (1..=count).map(|n| pattern.step(n, &mut rng)).collect()
}

#[test]
fn workers_rotate_through_the_six_patterns() {
    let names: Vec<_> = (1..=8).map(|w| Pattern::for_worker(w).name()).collect();
    assert_eq!(
        names,
        [
            "long_isl_short_osl",
            "long_isl_long_osl",
            "mixed_balanced",
            "bursty_long",
            "streaming_focused",
            "long_isl_short_osl",
            "long_isl_short_osl",
            "long_isl_long_osl",
        ]
    );
}

#[test]
fn long_isl_short_osl_every_third_is_very_long() {
    for (idx, step) in steps(Pattern::LongIslShortOsl, 30).iter().enumerate() {
        let n = idx as u64 + 1;
        if n.is_multiple_of(3) {
            assert_eq!((step.class, step.max_tokens), (PromptClass::VeryLong, 50));
        } else {
            assert_eq!((step.class, step.max_tokens), (PromptClass::Long, 75));
        }
        assert!(!step.stream);
        assert_eq!(step.pause, Duration::from_millis(300));
        assert!(step.pool_idx < step.class.pool_len());
    }
}

#[test]
fn long_isl_long_osl_draws_150_to_249() {
    let all = steps(Pattern::LongIslLongOsl, 2000);
    assert!(
        all.iter()
            .all(|s| s.class == PromptClass::Long && !s.stream)
    );
    assert!(all.iter().all(|s| s.pause == Duration::from_millis(500)));
    let min = all.iter().map(|s| s.max_tokens).min();
    let max = all.iter().map(|s| s.max_tokens).max();
    assert_eq!(
        (min, max),
        (Some(150), Some(249)),
        "half-open like $RANDOM % 100"
    );
    let pools: std::collections::BTreeSet<_> = all.iter().map(|s| s.pool_idx).collect();
    assert_eq!(pools.len(), 3, "every long prompt is used");
}

#[test]
fn mixed_balanced_cycles_on_n_mod_5() {
    for (idx, step) in steps(Pattern::MixedBalanced, 500).iter().enumerate() {
        let n = idx as u64 + 1;
        let (class, range) = match n % 5 {
            0 | 1 => (PromptClass::Medium, 50..=99),
            2 => (PromptClass::Long, 100..=199),
            3 => (PromptClass::Short, 30..=30),
            _ => (PromptClass::VeryLong, 50..=149),
        };
        assert_eq!(step.class, class, "n = {n}");
        assert!(
            range.contains(&step.max_tokens),
            "n = {n}: {}",
            step.max_tokens
        );
        assert_eq!(step.pause, Duration::from_millis(400));
    }
}

#[test]
fn bursty_long_pauses_three_seconds_after_n_mod_4_eq_3() {
    let pauses: Vec<u64> = steps(Pattern::BurstyLong, 12)
        .iter()
        .map(|s| s.pause.as_millis() as u64)
        .collect();
    assert_eq!(
        pauses,
        [
            100, 100, 3000, 100, 100, 100, 3000, 100, 100, 100, 3000, 100
        ]
    );
    assert!(
        steps(Pattern::BurstyLong, 500)
            .iter()
            .all(|s| s.class == PromptClass::Long && (50..=149).contains(&s.max_tokens))
    );
}

#[test]
fn streaming_focused_streams_medium_prompts() {
    for step in steps(Pattern::StreamingFocused, 500) {
        assert!(step.stream);
        assert_eq!(step.class, PromptClass::Medium);
        assert!((100..=199).contains(&step.max_tokens));
        assert_eq!(step.pause, Duration::from_millis(500));
    }
}

#[test]
fn the_same_seed_gives_the_same_sequence() {
    assert_eq!(
        steps(Pattern::MixedBalanced, 50),
        steps(Pattern::MixedBalanced, 50)
    );
}
