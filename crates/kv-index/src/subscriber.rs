//! The ZMQ subscriber: receives `[topic, seq, payload]` from vLLM publishers and applies
//! them to a [`KvIndex`].
//!
//! One SUB socket either binds (central mode: publishers connect to it) or connects to every
//! pod (per-pod mode). Topics `kv@<pod>@<model>` name the pod; any other topic is the pod id
//! itself. Per pod the subscriber tracks the last applied sequence number and the last one
//! seen live:
//! * first contact, or a gap, replays from the next expected seq through a DEALER to the
//!   pod's ROUTER (when its replay endpoint is known), before the live message;
//! * a seq at or below the last live one means the engine restarted: the pod's entries are
//!   cleared, then it replays from 0;
//! * a seq below the next expected one whose batch `ts` is newer than the last applied
//!   batch's is also a restart (a resumed subscriber has no live seq yet, and a restarted
//!   engine starts again at 0): clear and resync instead of dropping it as stale forever;
//! * live messages already covered by a replay are dropped.
//!
//! Replays are bounded: a pod whose replay failed (error or timeout) is not replayed again
//! before `replay_cooldown` has passed (its gaps are accepted meanwhile), and at most
//! `max_concurrent_replays` replays run at once in the process, across subscribers; a
//! replay that cannot get a slot within `replay_timeout` counts as failed.
//!
//! libzmq reconnects dropped TCP connections with exponential backoff
//! (`reconnect_ivl`..`reconnect_ivl_max`); a failing socket is recreated after a backoff.

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::events::{DropReason, decode_batch};
use crate::index::KvIndex;
use crate::metrics::Metrics;
use crate::publisher::{END_SEQ, shared_context};

/// llm-d's default subscription prefix.
pub const DEFAULT_TOPIC_FILTER: &str = "kv@";
/// How long a pod's replays pause after one failed.
pub const DEFAULT_REPLAY_COOLDOWN: Duration = Duration::from_secs(5);
/// Replays running at once in the process, across subscribers.
pub const DEFAULT_MAX_CONCURRENT_REPLAYS: usize = 4;

/// Replays running now in this process.
static ACTIVE_REPLAYS: AtomicUsize = AtomicUsize::new(0);

/// Errors of the subscriber module.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("zmq {operation} on {endpoint}")]
    Zmq {
        operation: &'static str,
        endpoint: String,
        #[source]
        source: zmq::Error,
    },
    #[error("spawning the subscriber thread")]
    Spawn(#[source] std::io::Error),
    #[error("replay from {endpoint}: no end marker within {timeout:?}")]
    ReplayTimeout { endpoint: String, timeout: Duration },
}

/// One message of a replay stream, as the publisher first sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayedMessage {
    pub topic: Vec<u8>,
    pub seq: u64,
    pub payload: Vec<u8>,
}

/// Asks a publisher's replay ROUTER for every buffered batch from `from` and returns them
/// byte for byte, up to the end marker (for operators and tests that compare payloads).
pub fn fetch_replay(
    endpoint: &str,
    from: u64,
    timeout: Duration,
) -> Result<Vec<ReplayedMessage>, Error> {
    let dealer = shared_context()
        .socket(zmq::DEALER)
        .map_err(zmq_error("socket", endpoint))?;
    dealer
        .set_linger(0)
        .and_then(|()| dealer.set_rcvtimeo(50))
        .map_err(zmq_error("setsockopt", endpoint))?;
    dealer
        .connect(endpoint)
        .map_err(zmq_error("connect", endpoint))?;
    dealer
        .send_multipart([&b""[..], &from.to_be_bytes()], 0)
        .map_err(zmq_error("send", endpoint))?;
    let deadline = Instant::now() + timeout;
    let mut messages = Vec::new();
    while Instant::now() < deadline {
        let frames = match dealer.recv_multipart(0) {
            Ok(frames) => frames,
            Err(zmq::Error::EAGAIN | zmq::Error::EINTR) => continue,
            Err(source) => return Err(zmq_error("recv", endpoint)(source)),
        };
        let [_empty, topic, seq, payload] = <[Vec<u8>; 4]>::try_from(frames)
            .map_err(|_| zmq_error("recv", endpoint)(zmq::Error::EPROTO))?;
        let Ok(seq) = <[u8; 8]>::try_from(seq.as_slice()).map(u64::from_be_bytes) else {
            continue;
        };
        if seq == END_SEQ && payload.is_empty() {
            return Ok(messages);
        }
        messages.push(ReplayedMessage {
            topic,
            seq,
            payload,
        });
    }
    Err(Error::ReplayTimeout {
        endpoint: endpoint.to_owned(),
        timeout,
    })
}

/// Where events come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// Bind the SUB socket here; publishers connect (central mode).
    Bind(String),
    /// Connect to each of these PUB endpoints (per-pod mode).
    Connect(Vec<String>),
}

/// Subscriber settings.
#[derive(Debug, Clone, PartialEq)]
pub struct SubscriberConfig {
    pub source: Source,
    /// SUB prefix filter (`""` for everything).
    pub topic_filter: String,
    /// Replay ROUTER endpoint per pod id.
    pub replay_endpoints: HashMap<String, String>,
    /// Pods whose replay is requested at start (from `resume` + 1, or 0).
    pub replay_on_start: Vec<String>,
    /// Where an earlier subscriber stopped, per pod (see [`SubscriberHandle::shutdown`]).
    pub resume: HashMap<String, ResumePoint>,
    /// Model for token-chain roots when the topic names none.
    pub default_model: String,
    /// Give up on one replay after this long without its end marker.
    pub replay_timeout: Duration,
    /// After a failed replay, the pod's gaps are accepted without replay for this long.
    pub replay_cooldown: Duration,
    /// Bound on replays running at once in the process (at least 1).
    pub max_concurrent_replays: usize,
    /// libzmq reconnect backoff, first and maximum interval.
    pub reconnect_backoff: (Duration, Duration),
}

impl SubscriberConfig {
    /// Defaults for `source`: filter `kv@`, no replay, 2 s replay timeout, 5 s cooldown
    /// after a failed replay, 4 concurrent replays, 100 ms..5 s backoff.
    pub fn new(source: Source) -> Self {
        SubscriberConfig {
            source,
            topic_filter: DEFAULT_TOPIC_FILTER.to_owned(),
            replay_endpoints: HashMap::new(),
            replay_on_start: Vec::new(),
            resume: HashMap::new(),
            default_model: String::new(),
            replay_timeout: Duration::from_secs(2),
            replay_cooldown: DEFAULT_REPLAY_COOLDOWN,
            max_concurrent_replays: DEFAULT_MAX_CONCURRENT_REPLAYS,
            reconnect_backoff: (Duration::from_millis(100), Duration::from_secs(5)),
        }
    }
}

/// `kv@<pod>@<model>` → (pod, model); any other shape is (topic, "").
pub fn parse_topic(topic: &str) -> (&str, &str) {
    let mut parts = topic.split('@');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(_), Some(pod), Some(model), None) => (pod, model),
        _ => (topic, ""),
    }
}

/// Where a subscriber stopped for one pod: the last applied seq and that batch's `ts`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ResumePoint {
    pub seq: u64,
    /// `None` when the batch's timestamp was unreadable.
    pub ts: Option<f64>,
}

/// Subscriber counters (also exported as metrics when a [`Metrics`] is given).
#[derive(Debug, Default)]
pub struct SubscriberStats {
    pub batches: AtomicU64,
    pub bad_frames: AtomicU64,
    pub events_applied: AtomicU64,
    pub events_dropped: AtomicU64,
    pub gaps: AtomicU64,
    pub replays: AtomicU64,
    pub replayed_batches: AtomicU64,
    pub restarts: AtomicU64,
    pub stale: AtomicU64,
    /// Replays not attempted: cooling down after a failure, or no free slot in time.
    pub replays_skipped: AtomicU64,
    pub replays_failed: AtomicU64,
}

/// Starts subscribers.
#[derive(Debug)]
pub struct Subscriber;

impl Subscriber {
    /// Opens the SUB socket and spawns the subscriber thread.
    pub fn start(
        config: SubscriberConfig,
        index: Arc<KvIndex>,
        metrics: Option<Metrics>,
    ) -> Result<SubscriberHandle, Error> {
        let socket = open_socket(&config)?;
        let bound = match &config.source {
            Source::Bind(_) => socket.get_last_endpoint().ok().and_then(Result::ok),
            Source::Connect(_) => None,
        };
        let stop = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(SubscriberStats::default());
        let seqs = Arc::new(Mutex::new(config.resume.clone()));
        let mut worker = Worker::new(
            config,
            index,
            metrics,
            Arc::clone(&stats),
            Arc::clone(&stop),
            Arc::clone(&seqs),
        );
        let thread = std::thread::Builder::new()
            .name("kv-index-subscriber".to_owned())
            .spawn(move || worker.run(socket))
            .map_err(Error::Spawn)?;
        Ok(SubscriberHandle {
            stop,
            thread: Some(thread),
            stats,
            seqs,
            bound_endpoint: bound,
        })
    }
}

/// A running subscriber; dropping it stops the thread.
#[derive(Debug)]
pub struct SubscriberHandle {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    stats: Arc<SubscriberStats>,
    seqs: Arc<Mutex<HashMap<String, ResumePoint>>>,
    bound_endpoint: Option<String>,
}

impl SubscriberHandle {
    pub fn stats(&self) -> &SubscriberStats {
        &self.stats
    }

    /// The bound endpoint in central mode (real port when bound to `*`).
    pub fn bound_endpoint(&self) -> Option<&str> {
        self.bound_endpoint.as_deref()
    }

    /// Last applied seq of `pod`.
    pub fn applied_seq(&self, pod: &str) -> Option<u64> {
        self.seqs.lock().ok()?.get(pod).map(|point| point.seq)
    }

    /// Stops the thread; returns where it stopped per pod, to resume from.
    pub fn shutdown(mut self) -> HashMap<String, ResumePoint> {
        self.stop_thread();
        self.seqs
            .lock()
            .map(|seqs| seqs.clone())
            .unwrap_or_default()
    }

    fn stop_thread(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!("The KV-event subscriber thread panicked.");
        }
    }
}

impl Drop for SubscriberHandle {
    fn drop(&mut self) {
        self.stop_thread();
    }
}

fn zmq_error(operation: &'static str, endpoint: &str) -> impl FnOnce(zmq::Error) -> Error {
    let endpoint = endpoint.to_owned();
    move |source| Error::Zmq {
        operation,
        endpoint,
        source,
    }
}

fn open_socket(config: &SubscriberConfig) -> Result<zmq::Socket, Error> {
    let socket = shared_context()
        .socket(zmq::SUB)
        .map_err(zmq_error("socket", "sub"))?;
    let (first, max) = config.reconnect_backoff;
    socket
        .set_reconnect_ivl(first.as_millis().try_into().unwrap_or(i32::MAX))
        .and_then(|()| socket.set_reconnect_ivl_max(max.as_millis().try_into().unwrap_or(i32::MAX)))
        .and_then(|()| socket.set_linger(0))
        .and_then(|()| socket.set_rcvtimeo(50))
        .and_then(|()| socket.set_rcvhwm(0))
        .and_then(|()| socket.set_subscribe(config.topic_filter.as_bytes()))
        .map_err(zmq_error("setsockopt", "sub"))?;
    match &config.source {
        Source::Bind(endpoint) => socket.bind(endpoint).map_err(zmq_error("bind", endpoint))?,
        Source::Connect(endpoints) => {
            for endpoint in endpoints {
                socket
                    .connect(endpoint)
                    .map_err(zmq_error("connect", endpoint))?;
            }
        }
    }
    Ok(socket)
}

#[derive(Debug, Clone, Copy, Default)]
struct PodSeq {
    applied: Option<u64>,
    /// `ts` of the last applied batch.
    applied_ts: Option<f64>,
    live: Option<u64>,
    /// When the pod's last replay failed.
    replay_failed_at: Option<Instant>,
}

struct Worker {
    config: SubscriberConfig,
    index: Arc<KvIndex>,
    metrics: Option<Metrics>,
    stats: Arc<SubscriberStats>,
    stop: Arc<AtomicBool>,
    pods: HashMap<String, PodSeq>,
    seqs: Arc<Mutex<HashMap<String, ResumePoint>>>,
}

/// A held slot of [`ACTIVE_REPLAYS`], released on drop.
struct ReplaySlot;

impl ReplaySlot {
    fn try_acquire(max: usize) -> Option<ReplaySlot> {
        ACTIVE_REPLAYS
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |active| {
                (active < max.max(1)).then_some(active + 1)
            })
            .ok()
            .map(|_| ReplaySlot)
    }
}

impl Drop for ReplaySlot {
    fn drop(&mut self) {
        ACTIVE_REPLAYS.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The `ts` of a batch payload without decoding it: `[ts, ...]` with `ts` a float64 (or a
/// float32 or an integer from other producers).
fn peek_ts(payload: &[u8]) -> Option<f64> {
    let (&header, rest) = payload.split_first()?;
    if !matches!(header, 0x92 | 0x93) {
        return None;
    }
    let (&marker, value) = rest.split_first()?;
    match marker {
        0xcb => Some(f64::from_be_bytes(value.get(..8)?.try_into().ok()?)),
        0xca => Some(f64::from(f32::from_be_bytes(
            value.get(..4)?.try_into().ok()?,
        ))),
        0x00..=0x7f => Some(f64::from(marker)),
        0xce => Some(f64::from(u32::from_be_bytes(
            value.get(..4)?.try_into().ok()?,
        ))),
        0xcf => Some(u64::from_be_bytes(value.get(..8)?.try_into().ok()?) as f64),
        _ => None,
    }
    .filter(|ts: &f64| ts.is_finite())
}

impl Worker {
    fn new(
        config: SubscriberConfig,
        index: Arc<KvIndex>,
        metrics: Option<Metrics>,
        stats: Arc<SubscriberStats>,
        stop: Arc<AtomicBool>,
        seqs: Arc<Mutex<HashMap<String, ResumePoint>>>,
    ) -> Worker {
        let pods = config
            .resume
            .iter()
            .map(|(pod, point)| {
                let state = PodSeq {
                    applied: Some(point.seq),
                    applied_ts: point.ts,
                    ..PodSeq::default()
                };
                (pod.clone(), state)
            })
            .collect();
        Worker {
            config,
            index,
            metrics,
            stats,
            stop,
            pods,
            seqs,
        }
    }

    fn run(&mut self, mut socket: zmq::Socket) {
        for pod in self.config.replay_on_start.clone() {
            let state = self.pods.entry(pod.clone()).or_default();
            let from = state.applied.map_or(0, |seq| seq + 1);
            self.replay(&pod, from);
        }
        let mut backoff = self.config.reconnect_backoff.0;
        while !self.stop.load(Ordering::Relaxed) {
            match socket.recv_multipart(0) {
                Ok(frames) => {
                    backoff = self.config.reconnect_backoff.0;
                    self.on_message(&frames);
                }
                Err(zmq::Error::EAGAIN | zmq::Error::EINTR) => {}
                Err(error) => {
                    tracing::warn!(%error, "The KV-event SUB socket failed; recreating it.");
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(self.config.reconnect_backoff.1);
                    match open_socket(&self.config) {
                        Ok(fresh) => socket = fresh,
                        Err(error) => tracing::warn!(%error, "Recreating the SUB socket failed."),
                    }
                }
            }
        }
    }

    fn on_message(&mut self, frames: &[Vec<u8>]) {
        let [topic, seq, payload] = frames else {
            self.bad_frame(DropReason::NotABatch);
            return;
        };
        let Ok(seq) = <[u8; 8]>::try_from(seq.as_slice()).map(u64::from_be_bytes) else {
            self.bad_frame(DropReason::NotABatch);
            return;
        };
        let topic = String::from_utf8_lossy(topic);
        let (pod, model) = parse_topic(&topic);
        let (pod, model) = (pod.to_owned(), model.to_owned());
        let state = self.pods.entry(pod.clone()).or_default();
        if let Some(live) = state.live
            && seq <= live
        {
            // The sequence went backwards: the engine restarted. Drop what it had.
            self.restart(&pod);
        }
        let state = self.pods.entry(pod.clone()).or_default();
        state.live = Some(seq);
        let expected = state.applied.map_or(0, |applied| applied + 1);
        if seq < expected {
            // Behind what was applied: a duplicate of an applied batch, or a restarted engine
            // (which starts at 0 again) seen by a subscriber that resumed from saved seqs.
            // Only the restart's batches are newer than the last one applied.
            let newer = match (peek_ts(payload), state.applied_ts) {
                (Some(ts), Some(applied_ts)) => ts > applied_ts,
                _ => false,
            };
            if !newer {
                self.stats.stale.fetch_add(1, Ordering::Relaxed);
                return;
            }
            tracing::info!(
                pod,
                seq,
                expected,
                "A pod's sequence restarted; resyncing it."
            );
            self.restart(&pod);
            let state = self.pods.entry(pod.clone()).or_default();
            state.live = Some(seq);
            if seq > 0 {
                self.replay(&pod, 0);
            }
            let applied = self.pods.get(&pod).and_then(|s| s.applied);
            if applied.is_none_or(|applied| seq > applied) {
                self.apply(&pod, &model, seq, payload);
            }
            return;
        }
        if seq > expected {
            if state.applied.is_some() {
                self.stats.gaps.fetch_add(1, Ordering::Relaxed);
                if let Some(metrics) = &self.metrics {
                    metrics.sequence_gaps.inc();
                }
            }
            self.replay(&pod, expected);
        }
        let applied = self.pods.get(&pod).and_then(|s| s.applied);
        if applied.is_some_and(|applied| seq <= applied) {
            return; // the replay covered it
        }
        self.apply(&pod, &model, seq, payload);
    }

    /// Forgets `pod`'s entries and sequence state (its replay cooldown stays).
    fn restart(&mut self, pod: &str) {
        self.stats.restarts.fetch_add(1, Ordering::Relaxed);
        if let Some(metrics) = &self.metrics {
            metrics.engine_restarts.inc();
        }
        self.index.clear_pod(pod);
        let state = self.pods.entry(pod.to_owned()).or_default();
        *state = PodSeq {
            replay_failed_at: state.replay_failed_at,
            ..PodSeq::default()
        };
    }

    fn bad_frame(&self, reason: DropReason) {
        self.stats.bad_frames.fetch_add(1, Ordering::Relaxed);
        if let Some(metrics) = &self.metrics {
            metrics.batch_dropped(reason);
        }
    }

    fn apply(&mut self, pod: &str, model: &str, seq: u64, payload: &[u8]) {
        let model = if model.is_empty() {
            self.config.default_model.as_str()
        } else {
            model
        };
        self.stats.batches.fetch_add(1, Ordering::Relaxed);
        if let Some(metrics) = &self.metrics {
            metrics.batches_received.inc();
        }
        match decode_batch(payload) {
            Ok(decoded) => {
                let outcome = self.index.apply_batch(pod, model, &decoded.batch);
                let n_dropped = (decoded.dropped.len() + outcome.dropped.len()) as u64;
                self.stats
                    .events_applied
                    .fetch_add(outcome.applied, Ordering::Relaxed);
                self.stats
                    .events_dropped
                    .fetch_add(n_dropped, Ordering::Relaxed);
                if let Some(metrics) = &self.metrics {
                    metrics
                        .events_received
                        .inc_by((decoded.batch.events.len() + decoded.dropped.len()) as f64);
                    metrics.events_applied.inc_by(outcome.applied as f64);
                    for error in &decoded.dropped {
                        metrics.event_dropped(error.reason);
                    }
                    for reason in &outcome.dropped {
                        metrics.event_dropped(*reason);
                    }
                    metrics.index_size.set(self.index.len() as f64);
                }
            }
            Err(error) => {
                tracing::debug!(%error, pod, seq, "Dropping an unreadable KV-event batch.");
                self.bad_frame(error.reason);
            }
        }
        let ts = peek_ts(payload);
        let state = self.pods.entry(pod.to_owned()).or_default();
        state.applied = Some(seq);
        state.applied_ts = ts;
        if let Ok(mut seqs) = self.seqs.lock() {
            seqs.insert(pod.to_owned(), ResumePoint { seq, ts });
        }
    }

    /// Replays `pod` from `from` unless it is cooling down after a failed replay or no
    /// replay slot frees up in time; a failure starts the cooldown.
    fn replay(&mut self, pod: &str, from: u64) {
        if !self.config.replay_endpoints.contains_key(pod) {
            return;
        }
        let cooling = self
            .pods
            .get(pod)
            .and_then(|state| state.replay_failed_at)
            .is_some_and(|failed| failed.elapsed() < self.config.replay_cooldown);
        if cooling {
            self.stats.replays_skipped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let deadline = Instant::now() + self.config.replay_timeout;
        let slot = loop {
            if let Some(slot) = ReplaySlot::try_acquire(self.config.max_concurrent_replays) {
                break Some(slot);
            }
            if Instant::now() >= deadline || self.stop.load(Ordering::Relaxed) {
                break None;
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        let succeeded = match slot {
            Some(_slot) => self.replay_now(pod, from),
            None => {
                self.stats.replays_skipped.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(pod, from, "No replay slot became free; accepting the gap.");
                false
            }
        };
        let state = self.pods.entry(pod.to_owned()).or_default();
        if succeeded {
            state.replay_failed_at = None;
        } else {
            state.replay_failed_at = Some(Instant::now());
            self.stats.replays_failed.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Requests `[b"", from]` from the pod's ROUTER and applies every reply in order until the
    /// end marker (true) or the timeout or an error (false).
    fn replay_now(&mut self, pod: &str, from: u64) -> bool {
        let Some(endpoint) = self.config.replay_endpoints.get(pod).cloned() else {
            return false;
        };
        self.stats.replays.fetch_add(1, Ordering::Relaxed);
        if let Some(metrics) = &self.metrics {
            metrics.replays.inc();
        }
        let dealer = match shared_context().socket(zmq::DEALER) {
            Ok(dealer) => dealer,
            Err(error) => {
                tracing::warn!(%error, pod, "Creating the replay DEALER failed.");
                return false;
            }
        };
        let setup = dealer
            .set_linger(0)
            .and_then(|()| dealer.set_rcvtimeo(100))
            .and_then(|()| dealer.connect(&endpoint))
            .and_then(|()| dealer.send_multipart([&b""[..], &from.to_be_bytes()], 0));
        if let Err(error) = setup {
            tracing::warn!(%error, pod, endpoint, "Sending a replay request failed.");
            return false;
        }
        let deadline = Instant::now() + self.config.replay_timeout;
        while Instant::now() < deadline && !self.stop.load(Ordering::Relaxed) {
            let frames = match dealer.recv_multipart(0) {
                Ok(frames) => frames,
                Err(zmq::Error::EAGAIN | zmq::Error::EINTR) => continue,
                Err(error) => {
                    tracing::warn!(%error, pod, "Receiving a replay reply failed.");
                    return false;
                }
            };
            let [_empty, topic, seq, payload] = frames.as_slice() else {
                self.bad_frame(DropReason::NotABatch);
                continue;
            };
            let Ok(seq) = <[u8; 8]>::try_from(seq.as_slice()).map(u64::from_be_bytes) else {
                self.bad_frame(DropReason::NotABatch);
                continue;
            };
            if seq == END_SEQ && payload.is_empty() {
                return true;
            }
            let applied = self.pods.get(pod).and_then(|s| s.applied);
            if applied.is_some_and(|applied| seq <= applied) {
                continue;
            }
            let topic = String::from_utf8_lossy(topic);
            let model = parse_topic(&topic).1.to_owned();
            self.stats.replayed_batches.fetch_add(1, Ordering::Relaxed);
            self.apply(pod, &model, seq, payload);
        }
        tracing::warn!(pod, from, "A replay timed out before its end marker.");
        false
    }
}
