//! A vLLM-compatible KV-event publisher: ZMQ PUB with vLLM's bind-or-connect rule,
//! `[topic, seq, payload]` messages, and the optional replay ROUTER.
//!
//! [`Publisher::start`] spawns one std thread that owns both sockets. Callers hand it
//! batches through a bounded queue with [`PublisherHandle::publish`], which never blocks: a
//! full queue drops the batch and counts it (vLLM would block its scheduler instead).

mod config;
#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::Duration;

pub use config::{
    DEFAULT_BUFFER_STEPS, DEFAULT_ENDPOINT, DEFAULT_HWM, DEFAULT_MAX_QUEUE_SIZE, KvEventsConfig,
    PublisherKind, offset_endpoint_port,
};

use crate::events::{EventEncoding, KvEventBatch, encode_batch_with};

/// The sequence number of the replay end marker (`-1` as 8 big-endian bytes).
pub const END_SEQ: u64 = u64::MAX;

/// How often the publisher thread serves replay requests while no batch arrives.
const REPLAY_POLL_INTERVAL: Duration = Duration::from_millis(5);

/// Errors of the publisher module.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("zmq {operation} on {endpoint}")]
    Zmq {
        operation: &'static str,
        endpoint: String,
        #[source]
        source: zmq::Error,
    },
    #[error("invalid kv events config")]
    Config(#[source] serde_json::Error),
    #[error("invalid endpoint {0:?}: ipc cannot be used with data parallel rank > 0")]
    IpcWithDataParallel(String),
    #[error("invalid endpoint {0:?}: no port to offset")]
    NoPort(String),
    #[error("spawning the publisher thread")]
    Spawn(#[source] std::io::Error),
}

/// The process-wide ZMQ context (like pyzmq's `Context.instance()`), so `inproc://`
/// endpoints connect publishers and subscribers of one process.
pub fn shared_context() -> zmq::Context {
    static CONTEXT: OnceLock<zmq::Context> = OnceLock::new();
    CONTEXT.get_or_init(zmq::Context::new).clone()
}

/// vLLM's rule: the PUB socket binds when the endpoint has `*` or `::` or is `ipc://` or
/// `inproc://`, and connects otherwise.
pub fn pub_should_bind(endpoint: &str) -> bool {
    endpoint.contains('*')
        || endpoint.contains("::")
        || endpoint.starts_with("ipc://")
        || endpoint.starts_with("inproc://")
}

/// What one publisher does.
#[derive(Debug, Clone, PartialEq)]
pub struct PublisherConfig {
    /// PUB endpoint (bound or connected per [`pub_should_bind`]).
    pub endpoint: String,
    /// ROUTER endpoint for replay (always bound); `None` disables replay.
    pub replay_endpoint: Option<String>,
    /// First frame of every message, e.g. `kv@<pod>@<model>`.
    pub topic: String,
    /// Batches kept for replay.
    pub buffer_steps: usize,
    /// PUB send high-water mark.
    pub hwm: i32,
    /// Bound of the queue between callers and the publisher thread.
    pub max_queue_size: usize,
    /// Stamped into batches whose rank is `None`.
    pub data_parallel_rank: i64,
    /// Event encoding inside the batch (vLLM 0.33: maps).
    pub encoding: EventEncoding,
}

impl PublisherConfig {
    /// The publisher vLLM would create for `config` on DP rank `data_parallel_rank`
    /// (endpoints offset by the rank); `None` when events are off or the publisher is `null`.
    pub fn from_kv_events_config(
        config: &KvEventsConfig,
        data_parallel_rank: i64,
    ) -> Result<Option<Self>, Error> {
        if config.resolved_publisher() != PublisherKind::Zmq {
            return Ok(None);
        }
        let replay_endpoint = config
            .replay_endpoint
            .as_deref()
            .map(|endpoint| offset_endpoint_port(endpoint, data_parallel_rank))
            .transpose()?;
        Ok(Some(PublisherConfig {
            endpoint: offset_endpoint_port(&config.endpoint, data_parallel_rank)?,
            replay_endpoint,
            topic: config.topic.clone(),
            buffer_steps: config.buffer_steps,
            hwm: config.hwm,
            max_queue_size: config.max_queue_size,
            data_parallel_rank,
            encoding: EventEncoding::Map,
        }))
    }
}

/// Counters of one publisher.
#[derive(Debug, Default)]
pub struct PublisherStats {
    /// Batches accepted by [`PublisherHandle::publish`]; minus `published`, `dropped` and
    /// `send_errors`, those still queued.
    pub accepted: AtomicU64,
    /// Batches sent on the PUB socket.
    pub published: AtomicU64,
    /// Batches dropped because the queue was full or the thread had stopped.
    pub dropped: AtomicU64,
    /// Batches that failed to send.
    pub send_errors: AtomicU64,
    /// Replay requests served.
    pub replays: AtomicU64,
}

/// Starts publishers.
#[derive(Debug)]
pub struct Publisher;

impl Publisher {
    /// Creates and binds/connects the sockets, then spawns the publisher thread.
    pub fn start(config: PublisherConfig) -> Result<PublisherHandle, Error> {
        let context = shared_context();
        let zmq_err = |operation, endpoint: &str| {
            let endpoint = endpoint.to_owned();
            move |source| Error::Zmq {
                operation,
                endpoint,
                source,
            }
        };
        let publish_socket = context
            .socket(zmq::PUB)
            .map_err(zmq_err("socket", &config.endpoint))?;
        publish_socket
            .set_sndhwm(config.hwm)
            .and_then(|()| publish_socket.set_rcvhwm(config.hwm))
            .and_then(|()| publish_socket.set_linger(1000))
            .map_err(zmq_err("set_hwm", &config.endpoint))?;
        let endpoint = if pub_should_bind(&config.endpoint) {
            publish_socket
                .bind(&config.endpoint)
                .map_err(zmq_err("bind", &config.endpoint))?;
            last_endpoint(&publish_socket).unwrap_or_else(|| config.endpoint.clone())
        } else {
            publish_socket
                .connect(&config.endpoint)
                .map_err(zmq_err("connect", &config.endpoint))?;
            config.endpoint.clone()
        };
        let (replay_socket, replay_endpoint) = match &config.replay_endpoint {
            None => (None, None),
            Some(replay) => {
                let socket = context
                    .socket(zmq::ROUTER)
                    .map_err(zmq_err("socket", replay))?;
                let hwm = i32::try_from(2 * (config.buffer_steps + 1)).unwrap_or(i32::MAX);
                socket
                    .set_sndhwm(hwm)
                    .and_then(|()| socket.set_linger(0))
                    .map_err(zmq_err("set_hwm", replay))?;
                socket.bind(replay).map_err(zmq_err("bind", replay))?;
                let bound = last_endpoint(&socket).unwrap_or_else(|| replay.clone());
                (Some(socket), Some(bound))
            }
        };
        let (sender, receiver) = mpsc::sync_channel(config.max_queue_size.max(1));
        let stats = Arc::new(PublisherStats::default());
        let mut worker = Worker {
            publish_socket,
            replay_socket,
            topic: config.topic.into_bytes(),
            buffer_steps: config.buffer_steps,
            buffer: VecDeque::new(),
            next_seq: 0,
            data_parallel_rank: config.data_parallel_rank,
            encoding: config.encoding,
            stats: Arc::clone(&stats),
        };
        let thread = std::thread::Builder::new()
            .name("zmq-publisher".to_owned())
            .spawn(move || worker.run(&receiver))
            .map_err(Error::Spawn)?;
        Ok(PublisherHandle {
            sender: Some(sender),
            thread: Some(thread),
            endpoint,
            replay_endpoint,
            stats,
        })
    }
}

/// The caller's side of a running publisher; dropping it stops the thread after the queue
/// drains.
#[derive(Debug)]
pub struct PublisherHandle {
    sender: Option<SyncSender<KvEventBatch>>,
    thread: Option<JoinHandle<()>>,
    endpoint: String,
    replay_endpoint: Option<String>,
    stats: Arc<PublisherStats>,
}

impl PublisherHandle {
    /// Queues a batch; returns `false` (and counts a drop) when the queue is full.
    pub fn publish(&self, batch: KvEventBatch) -> bool {
        let Some(sender) = &self.sender else {
            return false;
        };
        // Counted before the send, so `accepted` is never behind what the thread publishes.
        self.stats.accepted.fetch_add(1, Ordering::Relaxed);
        match sender.try_send(batch) {
            Ok(()) => true,
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.stats.accepted.fetch_sub(1, Ordering::Relaxed);
                self.stats.dropped.fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    }

    /// The PUB endpoint after resolution (the real port when bound to `*` or `0`).
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The bound replay endpoint, if replay is on.
    pub fn replay_endpoint(&self) -> Option<&str> {
        self.replay_endpoint.as_deref()
    }

    /// Counters.
    pub fn stats(&self) -> &PublisherStats {
        &self.stats
    }

    /// Stops the thread after it has sent everything queued.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        self.sender = None;
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!("The KV-event publisher thread panicked.");
        }
    }
}

impl Drop for PublisherHandle {
    fn drop(&mut self) {
        self.stop();
    }
}

fn last_endpoint(socket: &zmq::Socket) -> Option<String> {
    socket.get_last_endpoint().ok().and_then(Result::ok)
}

struct Worker {
    publish_socket: zmq::Socket,
    replay_socket: Option<zmq::Socket>,
    topic: Vec<u8>,
    buffer_steps: usize,
    buffer: VecDeque<(u64, Vec<u8>)>,
    next_seq: u64,
    data_parallel_rank: i64,
    encoding: EventEncoding,
    stats: Arc<PublisherStats>,
}

impl Worker {
    fn run(&mut self, receiver: &mpsc::Receiver<KvEventBatch>) {
        loop {
            self.serve_replays();
            match receiver.recv_timeout(REPLAY_POLL_INTERVAL) {
                Ok(batch) => self.send(batch),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
    }

    fn send(&mut self, mut batch: KvEventBatch) {
        if batch.data_parallel_rank.is_none() {
            batch.data_parallel_rank = Some(self.data_parallel_rank);
        }
        let mut payload = Vec::with_capacity(256);
        encode_batch_with(&batch, self.encoding, &mut payload);
        let seq = self.next_seq;
        self.next_seq += 1;
        let frames: [&[u8]; 3] = [&self.topic, &seq.to_be_bytes(), &payload];
        match self.publish_socket.send_multipart(frames, 0) {
            Ok(()) => {
                self.stats.published.fetch_add(1, Ordering::Relaxed);
            }
            Err(error) => {
                self.stats.send_errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(%error, seq, "Sending a KV-event batch failed.");
            }
        }
        if self.replay_socket.is_some() && self.buffer_steps > 0 {
            if self.buffer.len() == self.buffer_steps {
                self.buffer.pop_front();
            }
            self.buffer.push_back((seq, payload));
        }
    }

    /// Serves every pending replay request: `[identity, "", start_seq]` gets every buffered
    /// batch with `seq >= start_seq`, then the end marker. Other shapes are ignored.
    fn serve_replays(&mut self) {
        let Some(socket) = &self.replay_socket else {
            return;
        };
        while let Ok(frames) = socket.recv_multipart(zmq::DONTWAIT) {
            let [identity, empty, start] = frames.as_slice() else {
                tracing::warn!(
                    n_frames = frames.len(),
                    "Ignoring a malformed replay request."
                );
                continue;
            };
            if !empty.is_empty() {
                tracing::warn!("Ignoring a replay request without the empty delimiter.");
                continue;
            }
            let start_seq = be_uint(start);
            self.stats.replays.fetch_add(1, Ordering::Relaxed);
            for (seq, payload) in &self.buffer {
                if start_seq.is_some_and(|start| *seq >= start) {
                    let frames: [&[u8]; 5] =
                        [identity, b"", &self.topic, &seq.to_be_bytes(), payload];
                    if let Err(error) = socket.send_multipart(frames, 0) {
                        tracing::warn!(%error, seq, "Replaying a KV-event batch failed.");
                    }
                }
            }
            let end: [&[u8]; 5] = [identity, b"", b"", &END_SEQ.to_be_bytes(), b""];
            if let Err(error) = socket.send_multipart(end, 0) {
                tracing::warn!(%error, "Sending the replay end marker failed.");
            }
        }
    }
}

/// `int.from_bytes(bytes, "big")`; `None` when the value exceeds u64 (matches nothing).
fn be_uint(bytes: &[u8]) -> Option<u64> {
    let significant = bytes
        .iter()
        .position(|&b| b != 0)
        .map_or(&[][..], |i| &bytes[i..]);
    if significant.len() > 8 {
        return None;
    }
    Some(
        significant
            .iter()
            .fold(0u64, |acc, &b| (acc << 8) | u64::from(b)),
    )
}
