//! The six worker patterns of the upstream `generate-traffic-pd.sh`, as data: for request
//! `n` of a worker, which prompt class, how many output tokens, streaming or not, and the
//! pause after it.
//!
//! `$RANDOM % k` in the script gives `0..k`, so its ranges are half-open: `150 + RANDOM % 100`
//! is 150–249. The same ranges are drawn here from a seeded generator.

#[cfg(test)]
mod tests;

use std::time::Duration;

use rand::{Rng, rngs::StdRng};

use crate::prompt::PromptClass;

/// One upstream worker pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Pattern {
    /// Long prompts, short outputs: every third request very long with 50 tokens, else long
    /// with 75; pause 0.3 s.
    LongIslShortOsl,
    /// Long prompts, 150–249 output tokens; pause 0.5 s.
    LongIslLongOsl,
    /// A production-like mix cycling on `n % 5`; pause 0.4 s.
    MixedBalanced,
    /// Long prompts, 50–149 tokens, in bursts: 3.0 s pause when `n % 4 == 3`, else 0.1 s.
    BurstyLong,
    /// Streaming medium prompts, 100–199 tokens; pause 0.5 s.
    StreamingFocused,
}

/// What one request of a pattern sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PatternStep {
    /// Prompt class; the item of the class pool is drawn separately (`pool_idx`).
    pub class: PromptClass,
    /// Index into the class pool.
    pub pool_idx: usize,
    /// `max_tokens`.
    pub max_tokens: u32,
    /// `"stream": true`.
    pub stream: bool,
    /// Pause after the request completes (before scaling).
    pub pause: Duration,
}

impl Pattern {
    /// The script's rotation: worker `i` (1-based) runs `ROTATION[(i - 1) % 6]`.
    pub const ROTATION: [Pattern; 6] = [
        Pattern::LongIslShortOsl,
        Pattern::LongIslLongOsl,
        Pattern::MixedBalanced,
        Pattern::BurstyLong,
        Pattern::StreamingFocused,
        Pattern::LongIslShortOsl,
    ];

    /// The pattern of 1-based worker `worker_id`.
    pub fn for_worker(worker_id: u32) -> Pattern {
        Pattern::ROTATION[(worker_id.saturating_sub(1) as usize) % Pattern::ROTATION.len()]
    }

    /// The script's name of the pattern.
    pub fn name(self) -> &'static str {
        match self {
            Pattern::LongIslShortOsl => "long_isl_short_osl",
            Pattern::LongIslLongOsl => "long_isl_long_osl",
            Pattern::MixedBalanced => "mixed_balanced",
            Pattern::BurstyLong => "bursty_long",
            Pattern::StreamingFocused => "streaming_focused",
        }
    }

    /// The script's one-line description, for the summary's "Worker Distribution".
    pub fn description(self) -> &'static str {
        match self {
            Pattern::LongIslShortOsl => {
                "Shows maximum True TTFT vs vLLM TTFT gap + large NIXL transfers"
            }
            Pattern::LongIslLongOsl => "Shows prefill vs decode duration breakdown + NIXL metrics",
            Pattern::MixedBalanced => {
                "Realistic production traffic patterns with varied KV cache sizes"
            }
            Pattern::BurstyLong => "Tests queueing and coordination overhead",
            Pattern::StreamingFocused => "Tests streaming behavior with P/D",
        }
    }

    /// Request `n` (1-based, as the script's `request_count`) of this pattern.
    pub fn step(self, n: u64, rng: &mut StdRng) -> PatternStep {
        let pool = |class: PromptClass, rng: &mut StdRng| rng.random_range(0..class.pool_len());
        let ms = Duration::from_millis;
        match self {
            Pattern::LongIslShortOsl => {
                let (class, max_tokens) = if n.is_multiple_of(3) {
                    (PromptClass::VeryLong, 50)
                } else {
                    (PromptClass::Long, 75)
                };
                PatternStep {
                    class,
                    pool_idx: pool(class, rng),
                    max_tokens,
                    stream: false,
                    pause: ms(300),
                }
            }
            Pattern::LongIslLongOsl => {
                let pool_idx = pool(PromptClass::Long, rng);
                PatternStep {
                    class: PromptClass::Long,
                    pool_idx,
                    max_tokens: 150 + rng.random_range(0..100),
                    stream: false,
                    pause: ms(500),
                }
            }
            Pattern::MixedBalanced => {
                let (class, pool_idx, max_tokens) = match n % 5 {
                    0 | 1 => {
                        let idx = pool(PromptClass::Medium, rng);
                        (PromptClass::Medium, idx, 50 + rng.random_range(0..50))
                    }
                    2 => {
                        let idx = pool(PromptClass::Long, rng);
                        (PromptClass::Long, idx, 100 + rng.random_range(0..100))
                    }
                    3 => (PromptClass::Short, pool(PromptClass::Short, rng), 30),
                    _ => {
                        let idx = pool(PromptClass::VeryLong, rng);
                        (PromptClass::VeryLong, idx, 50 + rng.random_range(0..100))
                    }
                };
                PatternStep {
                    class,
                    pool_idx,
                    max_tokens,
                    stream: false,
                    pause: ms(400),
                }
            }
            Pattern::BurstyLong => {
                let pause = if n % 4 == 3 { ms(3000) } else { ms(100) };
                let pool_idx = pool(PromptClass::Long, rng);
                PatternStep {
                    class: PromptClass::Long,
                    pool_idx,
                    max_tokens: 50 + rng.random_range(0..100),
                    stream: false,
                    pause,
                }
            }
            Pattern::StreamingFocused => {
                let pool_idx = pool(PromptClass::Medium, rng);
                PatternStep {
                    class: PromptClass::Medium,
                    pool_idx,
                    max_tokens: 100 + rng.random_range(0..100),
                    stream: true,
                    pause: ms(500),
                }
            }
        }
    }
}
