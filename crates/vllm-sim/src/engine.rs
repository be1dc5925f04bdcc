//! The engine: a discrete-event model of vLLM's continuous batching, on its own thread.
//!
//! Requests wait in a FCFS queue and are admitted to the running set (at most
//! `--max-num-seqs`) when the KV pool has blocks for their prompt; prefix-cache hits share
//! blocks and shorten prefill. Each running sequence has its next deadline (prefill end, then
//! one token per inter-token latency, all scaled by the load factor) in a timer heap; the loop
//! sleeps until the earliest deadline or the next command. When a sequence needs a block and
//! the pool is empty, the most recently admitted sequence is preempted (recompute), as vLLM
//! does. Every metric is observed from what the loop did, and KV-cache changes become events.

mod block_pool;

use std::{
    cmp::Reverse,
    collections::{BinaryHeap, HashMap, VecDeque},
    time::{Duration, Instant},
};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use kv_index::hash::{BlockHash, BlockHasher, RequestExtras};
use rand::{Rng, SeedableRng, rngs::SmallRng};
use rand_distr::{Distribution, Normal};
use tokio::sync::mpsc::UnboundedSender;

pub(crate) use block_pool::{BlockId, BlockPool, CacheEvent};

use crate::{config::Config, metrics::Metrics};

/// Why a sequence finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FinishReason {
    Stop,
    Length,
    Abort,
}

impl FinishReason {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            FinishReason::Stop => "stop",
            FinishReason::Length => "length",
            FinishReason::Abort => "abort",
        }
    }
}

/// A request handed to the engine.
#[derive(Debug)]
pub(crate) struct Submission {
    pub(crate) prompt_tokens: Vec<u32>,
    pub(crate) extras: RequestExtras,
    /// Output tokens to generate.
    pub(crate) output_len: u32,
    /// Reported as `length` when the output stops at `max_tokens`, else `stop`.
    pub(crate) finish_reason: FinishReason,
    /// `max_tokens` as requested, for `vllm:request_params_max_tokens`.
    pub(crate) max_tokens_param: Option<u32>,
    /// Seeds the generated tokens.
    pub(crate) output_seed: u64,
    pub(crate) arrival: Instant,
    /// Send every token (streaming) or only the final result.
    pub(crate) stream_tokens: bool,
    /// Tokens whose KV arrives from elsewhere (P/D decode): they cost transfer time, not
    /// prefill compute.
    pub(crate) external_tokens: u32,
    /// P/D producer: keep the prompt's blocks allocated after finishing (they go to
    /// [`Finished::held_blocks`] until [`EngineHandle::release_blocks`]).
    pub(crate) hold_blocks: bool,
    /// The LoRA adapter's int id (`--lora-modules` order, from 1), for KV events; its name
    /// and path are in `extras.lora`.
    pub(crate) lora_id: Option<i64>,
    /// The request's `session_id`, carried into `BlockStored.session_id`.
    pub(crate) session_id: Option<String>,
    /// `vllm_xargs.kv_cache_report_mode == "full"`: prefix-cache hits are re-reported as
    /// `BlockStored` (parent nil, tokens from 0), as vLLM's `emit_cached_block_events`.
    pub(crate) report_cached_blocks: bool,
    pub(crate) events: UnboundedSender<EngineEvent>,
}

impl Submission {
    /// The untagged extra keys a `BlockStored` carries for block `block_idx`.
    fn event_extra_keys(
        &self,
        block_idx: usize,
        block_size: usize,
    ) -> Option<Vec<kv_index::hash::EventExtraKey>> {
        let start = (block_idx * block_size) as u64;
        self.extras
            .block_extra_keys(start, start + block_size as u64)
            .map(|keys| keys.iter().map(|key| key.to_event_value()).collect())
    }

    /// `(lora_id, lora_name)` of the request's adapter, for events.
    fn event_lora(&self) -> Option<(i64, String)> {
        let lora = self.extras.lora.as_ref()?;
        Some((self.lora_id.unwrap_or(0), lora.name.clone()))
    }
}

/// What the engine tells a request's handler.
#[derive(Debug)]
pub(crate) enum EngineEvent {
    Token { token_id: u32 },
    Finished(Box<Finished>),
}

/// The record of a finished request.
#[derive(Debug, Clone)]
pub(crate) struct Finished {
    pub(crate) reason: FinishReason,
    pub(crate) prompt_tokens: u32,
    pub(crate) cached_tokens: u32,
    pub(crate) output_tokens: Vec<u32>,
    pub(crate) arrival: Instant,
    pub(crate) scheduled: Instant,
    pub(crate) first_token: Instant,
    pub(crate) last_token: Instant,
    /// The prompt's blocks, still allocated, when the submission asked to hold them.
    pub(crate) held_blocks: Vec<BlockId>,
}

enum Command {
    Submit(Box<Submission>),
    ResetPrefixCache(std::sync::mpsc::Sender<bool>),
    Snapshot(std::sync::mpsc::Sender<Snapshot>),
    ReleaseBlocks(Vec<BlockId>),
    Shutdown,
}

/// The engine's state for tests and `/kv_event_sources`-style introspection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Snapshot {
    pub(crate) running: usize,
    pub(crate) waiting: usize,
    pub(crate) free_blocks: u32,
    /// External (u64) forms of every cached block hash, sorted.
    pub(crate) cached_hashes: Vec<u64>,
}

/// A batch of KV-cache changes from one engine step.
pub(crate) type EventSink = Box<dyn FnMut(Vec<CacheEvent>) + Send>;

/// The handle the HTTP layer keeps.
#[derive(Clone)]
pub(crate) struct EngineHandle {
    commands: Sender<Command>,
}

impl EngineHandle {
    /// Starts the engine thread.
    pub(crate) fn start(
        config: &Config,
        metrics: Metrics,
        output_vocabulary: Vec<u32>,
        event_sink: Option<EventSink>,
    ) -> std::io::Result<(EngineHandle, std::thread::JoinHandle<()>)> {
        let (commands, receiver) = crossbeam_channel::unbounded();
        let engine = Engine::new(config, metrics, output_vocabulary, event_sink, receiver);
        let thread = std::thread::Builder::new()
            .name("vllm-sim-engine".into())
            .spawn(move || engine.run())?;
        Ok((EngineHandle { commands }, thread))
    }

    /// Queues a request; false when the engine has stopped.
    pub(crate) fn submit(&self, submission: Submission) -> bool {
        self.commands
            .send(Command::Submit(Box::new(submission)))
            .is_ok()
    }

    /// `reset_prefix_cache()`: true when the cache was reset.
    pub(crate) fn reset_prefix_cache(&self) -> bool {
        let (tx, rx) = std::sync::mpsc::channel();
        self.commands.send(Command::ResetPrefixCache(tx)).is_ok() && rx.recv().unwrap_or(false)
    }

    pub(crate) fn snapshot(&self) -> Option<Snapshot> {
        let (tx, rx) = std::sync::mpsc::channel();
        self.commands.send(Command::Snapshot(tx)).ok()?;
        rx.recv().ok()
    }

    /// Frees blocks held for a P/D consumer.
    pub(crate) fn release_blocks(&self, blocks: Vec<BlockId>) {
        let _ = self.commands.send(Command::ReleaseBlocks(blocks));
    }

    pub(crate) fn shutdown(&self) {
        let _ = self.commands.send(Command::Shutdown);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Waiting,
    Prefill,
    Decode,
}

struct Sequence {
    submission: Submission,
    /// Prompt plus generated tokens.
    tokens: Vec<u32>,
    hashes: Vec<BlockHash>,
    blocks: Vec<block_pool::BlockId>,
    /// Blocks of `blocks` registered in the prefix cache (or found there).
    cached_blocks: usize,
    phase: Phase,
    generated: u32,
    cached_tokens: u32,
    /// Bumped on preemption so stale timer entries are ignored.
    generation: u32,
    scheduled: Option<Instant>,
    first_token: Option<Instant>,
    last_token: Option<Instant>,
    preemptions: u32,
    rng: SmallRng,
}

struct Engine {
    receiver: Receiver<Command>,
    metrics: Metrics,
    pool: BlockPool,
    hasher: BlockHasher,
    block_size: usize,
    max_num_seqs: usize,
    prefix_caching: bool,
    timing: crate::config::Timing,
    output_vocabulary: Vec<u32>,
    event_sink: Option<EventSink>,
    sequences: HashMap<u64, Sequence>,
    waiting: VecDeque<u64>,
    /// Admission order; the last one is preempted first.
    running: Vec<u64>,
    timers: BinaryHeap<Reverse<(Instant, u64, u32)>>,
    next_id: u64,
    step_tokens: u64,
}

impl Engine {
    fn new(
        config: &Config,
        metrics: Metrics,
        output_vocabulary: Vec<u32>,
        event_sink: Option<EventSink>,
        receiver: Receiver<Command>,
    ) -> Engine {
        Engine {
            receiver,
            metrics,
            // vLLM's BlockPool takes block 0 as its null block: n - 1 blocks hold KV.
            pool: BlockPool::new(config.num_gpu_blocks.saturating_sub(1).max(1)),
            hasher: BlockHasher::from_python_hash_seed(
                config.hash_algo,
                config.hash_seed.as_deref(),
            ),
            block_size: config.block_size as usize,
            max_num_seqs: config.max_num_seqs,
            prefix_caching: config.enable_prefix_caching,
            timing: config.timing.clone(),
            output_vocabulary,
            event_sink,
            sequences: HashMap::new(),
            waiting: VecDeque::new(),
            running: Vec::new(),
            timers: BinaryHeap::new(),
            next_id: 0,
            step_tokens: 0,
        }
    }

    fn run(mut self) {
        loop {
            let command = match self.timers.peek() {
                None => self
                    .receiver
                    .recv()
                    .map_err(|_| RecvTimeoutError::Disconnected),
                Some(Reverse((deadline, _, _))) => self.receiver.recv_deadline(*deadline),
            };
            match command {
                Ok(Command::Submit(submission)) => self.enqueue(*submission),
                Ok(Command::ResetPrefixCache(reply)) => {
                    let _ = reply.send(self.pool.reset());
                }
                Ok(Command::Snapshot(reply)) => {
                    let _ = reply.send(self.snapshot());
                }
                Ok(Command::ReleaseBlocks(blocks)) => self.pool.release(&blocks),
                Ok(Command::Shutdown) | Err(RecvTimeoutError::Disconnected) => return,
                Err(RecvTimeoutError::Timeout) => {}
            }
            // Drain whatever else arrived, then run every due timer: one engine step.
            while let Ok(command) = self.receiver.try_recv() {
                match command {
                    Command::Submit(submission) => self.enqueue(*submission),
                    Command::ResetPrefixCache(reply) => {
                        let _ = reply.send(self.pool.reset());
                    }
                    Command::Snapshot(reply) => {
                        let _ = reply.send(self.snapshot());
                    }
                    Command::ReleaseBlocks(blocks) => self.pool.release(&blocks),
                    Command::Shutdown => return,
                }
            }
            self.step();
        }
    }

    fn snapshot(&self) -> Snapshot {
        let mut cached_hashes: Vec<u64> = self
            .pool
            .cached_hashes()
            .map(BlockHash::external_u64)
            .collect();
        cached_hashes.sort_unstable();
        Snapshot {
            running: self.running.len(),
            waiting: self.waiting.len(),
            free_blocks: self.pool.num_free(),
            cached_hashes,
        }
    }

    fn enqueue(&mut self, submission: Submission) {
        let id = self.next_id;
        self.next_id += 1;
        let mut tokens = submission.prompt_tokens.clone();
        tokens.reserve(submission.output_len as usize);
        let rng = SmallRng::seed_from_u64(submission.output_seed);
        self.sequences.insert(
            id,
            Sequence {
                submission,
                tokens,
                hashes: Vec::new(),
                blocks: Vec::new(),
                cached_blocks: 0,
                phase: Phase::Waiting,
                generated: 0,
                cached_tokens: 0,
                generation: 0,
                scheduled: None,
                first_token: None,
                last_token: None,
                preemptions: 0,
                rng,
            },
        );
        self.waiting.push_back(id);
    }

    /// One step: admit what fits, then fire every due timer.
    fn step(&mut self) {
        self.step_tokens = 0;
        self.admit(Instant::now());
        loop {
            let now = Instant::now();
            let Some(&Reverse((deadline, id, generation))) = self.timers.peek() else {
                break;
            };
            if deadline > now {
                break;
            }
            self.timers.pop();
            let current = self.sequences.get(&id).map(|seq| seq.generation);
            if current == Some(generation) {
                self.fire(id, deadline);
            }
            self.admit(Instant::now());
        }
        if self.step_tokens > 0 {
            self.metrics
                .iteration_tokens
                .observe(self.step_tokens as f64);
        }
        self.publish_gauges();
        self.flush_events();
    }

    fn load_factor(&self) -> f64 {
        let factor = self.timing.time_factor_under_load;
        if factor <= 1.0 || self.max_num_seqs <= 1 {
            return 1.0;
        }
        let running = self.running.len().max(1) as f64;
        1.0 + (factor - 1.0) * (running - 1.0) / (self.max_num_seqs as f64 - 1.0)
    }

    fn admit(&mut self, now: Instant) {
        while self.running.len() < self.max_num_seqs {
            let Some(&id) = self.waiting.front() else {
                return;
            };
            if !self.try_schedule(id, now) {
                return;
            }
            self.waiting.pop_front();
            self.running.push(id);
        }
    }

    /// Allocates blocks for the sequence's tokens plus one; false when the pool is short.
    fn try_schedule(&mut self, id: u64, now: Instant) -> bool {
        let block_size = self.block_size;
        let prefix_caching = self.prefix_caching;
        let factor = self.load_factor();
        let Some(seq) = self.sequences.get_mut(&id) else {
            return true;
        };
        if let Err(error) = self.hasher.extend_chain(
            &mut seq.hashes,
            &seq.tokens,
            block_size,
            &seq.submission.extras,
        ) {
            tracing::error!(%error, "Hashing a prompt failed.");
        }
        let n_tokens = seq.tokens.len();
        // vLLM always recomputes at least the last token.
        let max_hit_blocks = n_tokens.saturating_sub(1) / block_size;
        let mut hit = if prefix_caching {
            self.pool
                .lookup_prefix(&seq.hashes[..seq.hashes.len().min(max_hit_blocks)])
        } else {
            Vec::new()
        };
        hit.truncate(max_hit_blocks);
        // vLLM allocates slots for the tokens computed in this step only; the block for the
        // next token comes when decode needs it (see `emit_token`).
        let needed = n_tokens.div_ceil(block_size).saturating_sub(hit.len()) as u32;
        if self.pool.num_free() < needed + self.pool.count_free(&hit) {
            return false;
        }
        self.pool.touch(&hit);
        if seq.submission.report_cached_blocks && !hit.is_empty() {
            let n_hit = hit.len();
            self.pool.events.push(CacheEvent::Stored {
                hashes: seq.hashes[..n_hit].to_vec(),
                parent: None,
                token_ids: seq.tokens[..n_hit * block_size].to_vec(),
                extra_keys: (0..n_hit)
                    .map(|block_idx| seq.submission.event_extra_keys(block_idx, block_size))
                    .collect(),
                lora: seq.submission.event_lora(),
                session_id: seq.submission.session_id.clone(),
            });
        }
        let mut blocks = hit.clone();
        for _ in 0..needed {
            match self.pool.allocate() {
                Some(block) => blocks.push(block),
                None => {
                    // Counted above; a shortfall here is a bug, so undo and wait.
                    tracing::error!("Block pool ran dry during admission.");
                    self.pool.release(&blocks);
                    return false;
                }
            }
        }
        let cached_tokens = (hit.len() * block_size) as u32;
        seq.blocks = blocks;
        seq.cached_blocks = hit.len();
        seq.phase = Phase::Prefill;
        let first_admission = seq.scheduled.is_none();
        if first_admission {
            seq.scheduled = Some(now);
            seq.cached_tokens = cached_tokens;
            let prompt = seq.submission.prompt_tokens.len() as f64;
            self.metrics.prefix_cache_queries.inc_by(prompt);
            self.metrics
                .prefix_cache_hits
                .inc_by(f64::from(cached_tokens));
        }
        let computed = n_tokens as u32 - cached_tokens;
        let external = if first_admission {
            seq.submission.external_tokens.min(computed)
        } else {
            0
        };
        let prefill = {
            let timing = &self.timing;
            let base = match (timing.time_to_first_token, seq.generated) {
                (Some(ttft), 0) => ttft,
                _ => {
                    timing.prefill_overhead
                        + timing.prefill_time_per_token * (computed - external)
                        + timing.kv_transfer_time_per_token * external
                }
            };
            jitter(&mut seq.rng, base, timing.prefill_std_dev)
        };
        let deadline = now + prefill.mul_f64(factor);
        let generation = seq.generation;
        self.step_tokens += u64::from(computed);
        self.timers.push(Reverse((deadline, id, generation)));
        true
    }

    fn fire(&mut self, id: u64, deadline: Instant) {
        let phase = match self.sequences.get(&id) {
            Some(seq) => seq.phase,
            None => return,
        };
        match phase {
            Phase::Prefill => {
                self.register_full_blocks(id);
                if let Some(seq) = self.sequences.get_mut(&id) {
                    seq.phase = Phase::Decode;
                }
                self.emit_token(id, deadline);
            }
            Phase::Decode => self.emit_token(id, deadline),
            Phase::Waiting => {}
        }
    }

    /// Caches the sequence's full blocks not yet in the cache and reports them.
    fn register_full_blocks(&mut self, id: u64) {
        let block_size = self.block_size;
        let Some(seq) = self.sequences.get_mut(&id) else {
            return;
        };
        if let Err(error) = self.hasher.extend_chain(
            &mut seq.hashes,
            &seq.tokens,
            block_size,
            &seq.submission.extras,
        ) {
            tracing::error!(%error, "Hashing a block failed.");
            return;
        }
        let n_full = seq.hashes.len().min(seq.blocks.len());
        if !self.prefix_caching || seq.cached_blocks >= n_full {
            seq.cached_blocks = seq.cached_blocks.max(n_full);
            return;
        }
        let start = seq.cached_blocks;
        let mut stored = Vec::new();
        for block_idx in start..n_full {
            if self
                .pool
                .cache(seq.blocks[block_idx], seq.hashes[block_idx])
            {
                stored.push(seq.hashes[block_idx]);
            }
        }
        seq.cached_blocks = n_full;
        if !stored.is_empty() {
            let submission = &seq.submission;
            let event_keys = |block_idx: usize| submission.event_extra_keys(block_idx, block_size);
            // vLLM reports each run of newly cached blocks with its parent; a duplicate that
            // was already cached elsewhere splits the run.
            let mut block_idx = start;
            while block_idx < n_full {
                if !stored.contains(&seq.hashes[block_idx]) {
                    block_idx += 1;
                    continue;
                }
                let run_start = block_idx;
                while block_idx < n_full && stored.contains(&seq.hashes[block_idx]) {
                    block_idx += 1;
                }
                self.pool.events.push(CacheEvent::Stored {
                    hashes: seq.hashes[run_start..block_idx].to_vec(),
                    parent: run_start.checked_sub(1).map(|i| seq.hashes[i]),
                    token_ids: seq.tokens[run_start * block_size..block_idx * block_size].to_vec(),
                    extra_keys: (run_start..block_idx).map(event_keys).collect(),
                    lora: submission.event_lora(),
                    session_id: submission.session_id.clone(),
                });
            }
        }
    }

    fn emit_token(&mut self, id: u64, deadline: Instant) {
        let now = Instant::now();
        self.metrics
            .engine_timer_lateness
            .observe(now.saturating_duration_since(deadline).as_secs_f64());
        let vocabulary_len = self.output_vocabulary.len().max(1);
        let Some(seq) = self.sequences.get_mut(&id) else {
            return;
        };
        let pick = seq.rng.random_range(0..vocabulary_len);
        let token_id = self.output_vocabulary.get(pick).copied().unwrap_or(0);
        seq.tokens.push(token_id);
        seq.generated += 1;
        self.step_tokens += 1;
        if seq.first_token.is_none() {
            seq.first_token = Some(now);
            let ttft = now - seq.submission.arrival;
            self.metrics.time_to_first_token.observe(ttft.as_secs_f64());
        } else if let Some(last) = seq.last_token {
            self.metrics
                .inter_token_latency
                .observe((now - last).as_secs_f64());
        }
        seq.last_token = Some(now);
        self.metrics.generation_tokens.inc();
        // The last token travels in `Finished`, as vLLM sends it with the finish reason.
        if seq.generated >= seq.submission.output_len {
            let reason = seq.submission.finish_reason;
            self.finish(id, reason);
            return;
        }
        let delivered = !seq.submission.stream_tokens
            || seq
                .submission
                .events
                .send(EngineEvent::Token { token_id })
                .is_ok();
        if !delivered {
            self.finish(id, FinishReason::Abort);
            return;
        }
        // A block filled by generated tokens is cached too.
        if seq.tokens.len() % self.block_size == 0 {
            self.register_full_blocks(id);
        }
        let Some(seq) = self.sequences.get(&id) else {
            return;
        };
        // The next step computes the KV of the token just sampled: it needs a slot.
        if seq.tokens.len() > seq.blocks.len() * self.block_size && !self.grow(id) {
            return;
        }
        let Some(seq) = self.sequences.get_mut(&id) else {
            return;
        };
        let itl = jitter(
            &mut seq.rng,
            self.timing.inter_token_latency,
            self.timing.inter_token_latency_std_dev,
        );
        let generation = seq.generation;
        let factor = self.load_factor();
        // From the scheduled deadline, not from now, so lateness does not accumulate.
        let next = deadline.max(now - Duration::from_millis(1)) + itl.mul_f64(factor);
        self.timers.push(Reverse((next, id, generation)));
    }

    /// Gives the sequence one more block, preempting the newest running sequences if needed.
    /// Returns false when `id` itself was preempted.
    fn grow(&mut self, id: u64) -> bool {
        loop {
            if let Some(block) = self.pool.allocate() {
                if let Some(seq) = self.sequences.get_mut(&id) {
                    seq.blocks.push(block);
                }
                return true;
            }
            let Some(&victim) = self.running.last() else {
                return false;
            };
            self.preempt(victim);
            if victim == id {
                return false;
            }
        }
    }

    fn preempt(&mut self, id: u64) {
        self.running.retain(|&running| running != id);
        let Some(seq) = self.sequences.get_mut(&id) else {
            return;
        };
        self.pool.release(&seq.blocks);
        seq.blocks.clear();
        seq.cached_blocks = 0;
        seq.phase = Phase::Waiting;
        seq.generation += 1;
        seq.preemptions += 1;
        self.metrics.num_preemptions.inc();
        self.waiting.push_front(id);
    }

    fn finish(&mut self, id: u64, reason: FinishReason) {
        self.running.retain(|&running| running != id);
        let Some(seq) = self.sequences.remove(&id) else {
            return;
        };
        // A P/D producer keeps the prompt's blocks for the consumer's pull.
        let held_blocks = if seq.submission.hold_blocks && reason != FinishReason::Abort {
            let prompt_blocks = seq
                .submission
                .prompt_tokens
                .len()
                .div_ceil(self.block_size)
                .min(seq.blocks.len());
            self.pool.release(&seq.blocks[prompt_blocks..]);
            seq.blocks[..prompt_blocks].to_vec()
        } else {
            self.pool.release(&seq.blocks);
            Vec::new()
        };
        let arrival = seq.submission.arrival;
        let scheduled = seq.scheduled.unwrap_or(arrival);
        let first_token = seq.first_token.unwrap_or(scheduled);
        let last_token = seq.last_token.unwrap_or(first_token);
        let prompt_tokens = seq.submission.prompt_tokens.len() as u32;
        let metrics = &self.metrics;
        let secs = |d: Duration| d.as_secs_f64();
        metrics.request_success(reason.as_str()).inc();
        metrics.prompt_tokens.inc_by(f64::from(prompt_tokens));
        let external = seq
            .submission
            .external_tokens
            .min(prompt_tokens - seq.cached_tokens);
        metrics
            .prompt_tokens_local_compute
            .inc_by(f64::from(prompt_tokens - seq.cached_tokens - external));
        metrics
            .prompt_tokens_local_cache_hit
            .inc_by(f64::from(seq.cached_tokens));
        metrics.prompt_tokens_external.inc_by(f64::from(external));
        metrics
            .prompt_tokens_cached
            .inc_by(f64::from(seq.cached_tokens));
        metrics
            .prompt_tokens_cached_device
            .inc_by(f64::from(seq.cached_tokens));
        metrics
            .request_prompt_tokens
            .observe(f64::from(prompt_tokens));
        metrics
            .request_generation_tokens
            .observe(f64::from(seq.generated));
        metrics
            .request_max_num_generation_tokens
            .observe(f64::from(seq.generated));
        metrics.request_params_n.observe(1.0);
        if let Some(max_tokens) = seq.submission.max_tokens_param {
            metrics
                .request_params_max_tokens
                .observe(f64::from(max_tokens));
        }
        metrics
            .request_prefill_kv_computed_tokens
            .observe(f64::from(prompt_tokens - seq.cached_tokens));
        metrics
            .e2e_request_latency
            .observe(secs(last_token - arrival));
        metrics
            .request_queue_time
            .observe(secs(scheduled - arrival));
        metrics
            .request_prefill_time
            .observe(secs(first_token - scheduled));
        metrics
            .request_decode_time
            .observe(secs(last_token - first_token));
        metrics
            .request_inference_time
            .observe(secs(last_token - scheduled));
        metrics
            .request_num_preemptions
            .observe(f64::from(seq.preemptions));
        if seq.generated > 1 {
            let tpot = secs(last_token - first_token) / f64::from(seq.generated - 1);
            metrics.request_time_per_output_token.observe(tpot);
        }
        let finished = Finished {
            reason,
            prompt_tokens,
            cached_tokens: seq.cached_tokens,
            output_tokens: seq.tokens[prompt_tokens as usize..].to_vec(),
            arrival,
            scheduled,
            first_token,
            last_token,
            held_blocks,
        };
        if let Err(unsent) = seq
            .submission
            .events
            .send(EngineEvent::Finished(Box::new(finished)))
            && let EngineEvent::Finished(finished) = unsent.0
        {
            // Nobody will lease the held blocks: the client went away.
            self.pool.release(&finished.held_blocks);
        }
    }

    fn publish_gauges(&self) {
        let metrics = &self.metrics;
        metrics.num_requests_running.set(self.running.len() as f64);
        metrics.num_requests_waiting.set(self.waiting.len() as f64);
        metrics.waiting_capacity.set(self.waiting.len() as f64);
        metrics.waiting_deferred.set(0.0);
        metrics.kv_cache_usage_perc.set(self.pool.usage());
    }

    fn flush_events(&mut self) {
        if self.pool.events.is_empty() {
            return;
        }
        let events = std::mem::take(&mut self.pool.events);
        if let Some(sink) = &mut self.event_sink {
            sink(events);
        }
    }
}

/// `base` with Gaussian spread: the deviation is capped at 30 % of the mean and the result
/// kept within ±70 % of it, as llm-d-inference-sim does.
fn jitter(rng: &mut SmallRng, base: Duration, std_dev: Duration) -> Duration {
    if std_dev.is_zero() || base.is_zero() {
        return base;
    }
    let mean = base.as_secs_f64();
    let sigma = std_dev.as_secs_f64().min(0.3 * mean);
    let Ok(normal) = Normal::new(mean, sigma) else {
        return base;
    };
    let sample = normal.sample(rng).clamp(0.3 * mean, 1.7 * mean);
    Duration::from_secs_f64(sample)
}
