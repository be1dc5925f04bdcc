//! The simulated NIXL side channel: the producer's TCP listener and the consumer's pooled
//! connections to producers.
//!
//! vLLM's side channel is a ZMQ ROUTER used only for the handshake; the blocks then move by
//! RDMA READ and a NIXL notification frees them. Here the same three steps run on one TCP
//! connection, as frames of a big-endian `u32` length and a JSON header:
//!
//! | consumer sends | producer answers |
//! |---|---|
//! | `{"op":"handshake"}` | `{"ok":true,"engine_id":…,"compatibility":…}` |
//! | `{"op":"read","remote_request_id":…,"block_ids":[…],"block_bytes":N}` | `{"ok":true,"bytes":B}` then `B` raw bytes, block by block; or `{"ok":false,"error":…}` |
//! | `{"op":"notify","remote_request_id":…}` | `{"ok":true}` (the blocks are freed) |
//!
//! Every byte of block `id` is [`fill_byte`]`(id)`, so the consumer checks that it received
//! each block whole and in order. Connections are kept and reused per producer address.

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};

use super::{Shaper, Shared};
use crate::engine::BlockId;

/// Largest JSON header accepted.
const MAX_FRAME: u32 = 4 * 1024 * 1024;
/// Largest block a consumer may ask for (1 GiB: far beyond any real model's block).
const MAX_BLOCK_BYTES: u64 = 1 << 30;
/// Copy buffer of both ends.
const CHUNK: usize = 256 * 1024;

/// Side-channel failures.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    #[error("cannot connect")]
    Connect(#[source] std::io::Error),
    #[error("connection failed")]
    Io(#[from] std::io::Error),
    #[error("protocol violation: {0}")]
    Protocol(String),
    #[error("handshake mismatch: {0}")]
    Handshake(String),
    #[error("producer refused the read: {0}")]
    Refused(String),
    #[error("block {block_id} arrived corrupted")]
    Corrupt { block_id: BlockId },
    #[error("notification failed")]
    Notify(#[source] Box<Error>),
}

/// A read of leased blocks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ReadRequest {
    pub(crate) remote_request_id: String,
    pub(crate) block_ids: Vec<BlockId>,
    /// Bytes of one block on one consumer worker.
    pub(crate) block_bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
enum Message {
    Handshake,
    Read(ReadRequest),
    Notify { remote_request_id: String },
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Reply {
    ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    engine_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    compatibility: Option<String>,
    #[serde(default)]
    bytes: u64,
}

/// The byte every position of block `block_id` holds.
pub(crate) fn fill_byte(block_id: BlockId) -> u8 {
    (block_id % 251) as u8 + 1
}

/// What the consumer expects of the producer.
pub(crate) struct Expected<'a> {
    pub(crate) engine_id: &'a str,
    pub(crate) compatibility: &'a str,
}

/// Timings of one successful pull.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stats {
    /// Getting a connection (and handshake) and posting the read.
    pub(crate) post: Duration,
    /// From the posted read to the last byte (link latency included).
    pub(crate) xfer: Duration,
    pub(crate) bytes: u64,
}

async fn write_frame<T: Serialize>(stream: &mut TcpStream, message: &T) -> Result<(), Error> {
    let body = serde_json::to_vec(message).map_err(|err| Error::Protocol(err.to_string()))?;
    let mut frame = Vec::with_capacity(4 + body.len());
    frame.extend_from_slice(&(body.len() as u32).to_be_bytes());
    frame.extend_from_slice(&body);
    stream.write_all(&frame).await?;
    Ok(())
}

/// The next frame, or `None` at a clean end of stream.
async fn read_frame<T: for<'de> Deserialize<'de>>(
    stream: &mut TcpStream,
) -> Result<Option<T>, Error> {
    let mut len = [0u8; 4];
    match stream.read_exact(&mut len).await {
        Ok(_) => {}
        Err(error) if error.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(error) => return Err(error.into()),
    }
    let len = u32::from_be_bytes(len);
    if len > MAX_FRAME {
        return Err(Error::Protocol(format!("frame of {len} bytes")));
    }
    let mut body = vec![0u8; len as usize];
    stream.read_exact(&mut body).await?;
    serde_json::from_slice(&body)
        .map(Some)
        .map_err(|err| Error::Protocol(err.to_string()))
}

async fn expect_reply(stream: &mut TcpStream) -> Result<Reply, Error> {
    read_frame(stream)
        .await?
        .ok_or_else(|| Error::Io(std::io::ErrorKind::UnexpectedEof.into()))
}

/// The producer: accepts consumers until the task is aborted.
pub(crate) async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    // Connection tasks end with this one (a stopped producer drops its consumers).
    let mut connections = tokio::task::JoinSet::new();
    loop {
        while connections.try_join_next().is_some() {}
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(error) => {
                tracing::warn!(%error, "Accepting a side-channel connection failed.");
                continue;
            }
        };
        let shared = shared.clone();
        connections.spawn(async move {
            if let Err(error) = producer_connection(stream, &shared).await {
                tracing::warn!(%error, "Side-channel connection ended with an error.");
            }
        });
    }
}

async fn producer_connection(mut stream: TcpStream, shared: &Shared) -> Result<(), Error> {
    let _ = stream.set_nodelay(true);
    let mut buffer = vec![0u8; CHUNK];
    while let Some(message) = read_frame::<Message>(&mut stream).await? {
        match message {
            Message::Handshake => {
                let reply = Reply {
                    ok: true,
                    engine_id: Some(shared.engine_id.clone()),
                    compatibility: Some(shared.compatibility.clone()),
                    ..Reply::default()
                };
                write_frame(&mut stream, &reply).await?;
            }
            Message::Read(request) => {
                let refusal = {
                    let leases = shared.leases.lock();
                    match leases.get(&request.remote_request_id) {
                        None => Some("request is not leased (expired or never prefilled)"),
                        Some(lease) if lease.expires <= tokio::time::Instant::now() => {
                            Some("lease expired")
                        }
                        Some(lease)
                            if !request.block_ids.iter().all(|id| lease.blocks.contains(id)) =>
                        {
                            Some("block ids are not part of the lease")
                        }
                        Some(_) if request.block_bytes > MAX_BLOCK_BYTES => {
                            Some("block size too large")
                        }
                        Some(_) => None,
                    }
                };
                if let Some(reason) = refusal {
                    let reply = Reply {
                        ok: false,
                        error: Some(reason.to_owned()),
                        ..Reply::default()
                    };
                    write_frame(&mut stream, &reply).await?;
                    continue;
                }
                let bytes = request.block_bytes * request.block_ids.len() as u64;
                let reply = Reply {
                    ok: true,
                    bytes,
                    ..Reply::default()
                };
                write_frame(&mut stream, &reply).await?;
                for &block_id in &request.block_ids {
                    buffer.fill(fill_byte(block_id));
                    let mut remaining = request.block_bytes;
                    while remaining > 0 {
                        let n = remaining.min(CHUNK as u64) as usize;
                        stream.write_all(&buffer[..n]).await?;
                        remaining -= n as u64;
                    }
                }
            }
            Message::Notify { remote_request_id } => {
                if !shared.release(&remote_request_id) {
                    shared.metrics.notifications_after_expiry.inc();
                }
                write_frame(
                    &mut stream,
                    &Reply {
                        ok: true,
                        ..Reply::default()
                    },
                )
                .await?;
            }
        }
    }
    Ok(())
}

/// One consumer connection, handshaken.
struct Conn {
    stream: TcpStream,
    engine_id: String,
}

impl Conn {
    async fn open(host: &str, port: u16, expected: &Expected<'_>) -> Result<Conn, Error> {
        let mut stream = TcpStream::connect((host, port))
            .await
            .map_err(Error::Connect)?;
        let _ = stream.set_nodelay(true);
        write_frame(&mut stream, &Message::Handshake).await?;
        let reply = expect_reply(&mut stream).await?;
        let engine_id = reply.engine_id.unwrap_or_default();
        if engine_id != expected.engine_id {
            return Err(Error::Handshake(format!(
                "engine id is {engine_id:?}, kv_transfer_params name {:?}",
                expected.engine_id
            )));
        }
        let compatibility = reply.compatibility.unwrap_or_default();
        if compatibility != expected.compatibility {
            return Err(Error::Handshake(format!(
                "producer is {compatibility:?}, consumer is {:?}",
                expected.compatibility
            )));
        }
        Ok(Conn { stream, engine_id })
    }
}

/// The consumer's idle connections, per producer address.
#[derive(Default)]
pub(crate) struct Pool {
    idle: Mutex<HashMap<(String, u16), Vec<Conn>>>,
}

impl Pool {
    fn take(&self, host: &str, port: u16, engine_id: &str) -> Option<Conn> {
        let mut idle = self.idle.lock();
        let conns = idle.get_mut(&(host.to_owned(), port))?;
        // A producer that restarted has a new engine id: its old connections are dropped.
        conns.retain(|conn| conn.engine_id == engine_id);
        conns.pop()
    }

    fn put(&self, host: &str, port: u16, conn: Conn) {
        self.idle
            .lock()
            .entry((host.to_owned(), port))
            .or_default()
            .push(conn);
    }

    /// Reads `request`'s blocks and notifies the producer. A pooled connection that turns out
    /// dead is replaced once by a fresh one.
    pub(crate) async fn read(
        &self,
        host: &str,
        port: u16,
        expected: &Expected<'_>,
        request: &ReadRequest,
        shaper: Shaper,
    ) -> Result<Stats, Error> {
        let start = Instant::now();
        if let Some(conn) = self.take(host, port, expected.engine_id) {
            match read_on(conn, start, request, shaper).await {
                Ok((conn, stats)) => {
                    self.put(host, port, conn);
                    return Ok(stats);
                }
                Err((error, true)) => {
                    tracing::debug!(%error, "Pooled side-channel connection was dead; reconnecting.");
                }
                Err((error, false)) => return Err(error),
            }
        }
        let conn = Conn::open(host, port, expected).await?;
        match read_on(conn, start, request, shaper).await {
            Ok((conn, stats)) => {
                self.put(host, port, conn);
                Ok(stats)
            }
            Err((error, _)) => Err(error),
        }
    }
}

/// One read and notification on `conn`. On error, the flag says whether nothing was received
/// yet (a retry on a fresh connection is safe).
async fn read_on(
    mut conn: Conn,
    start: Instant,
    request: &ReadRequest,
    shaper: Shaper,
) -> Result<(Conn, Stats), (Error, bool)> {
    let stream = &mut conn.stream;
    write_frame(stream, &Message::Read(request.clone()))
        .await
        .map_err(|error| (error, true))?;
    let post = start.elapsed();
    let xfer_start = Instant::now();
    if !shaper.latency.is_zero() {
        tokio::time::sleep(shaper.latency).await;
    }
    let reply = match read_frame::<Reply>(stream).await {
        Ok(Some(reply)) => reply,
        Ok(None) => return Err((Error::Io(std::io::ErrorKind::UnexpectedEof.into()), true)),
        Err(error) => return Err((error, true)),
    };
    if !reply.ok {
        return Err((Error::Refused(reply.error.unwrap_or_default()), false));
    }
    let expected_bytes = request.block_bytes * request.block_ids.len() as u64;
    if reply.bytes != expected_bytes {
        return Err((
            Error::Protocol(format!(
                "producer sends {} bytes, {expected_bytes} expected",
                reply.bytes
            )),
            false,
        ));
    }
    let mut buffer = vec![0u8; CHUNK];
    let mut received: u64 = 0;
    while received < expected_bytes {
        let want = (expected_bytes - received).min(CHUNK as u64) as usize;
        let n = stream
            .read(&mut buffer[..want])
            .await
            .map_err(|error| (Error::Io(error), false))?;
        if n == 0 {
            return Err((Error::Io(std::io::ErrorKind::UnexpectedEof.into()), false));
        }
        verify(&buffer[..n], received, request).map_err(|error| (error, false))?;
        received += n as u64;
        if let Some(bytes_per_second) = shaper.bytes_per_second {
            let due = xfer_start
                + shaper.latency
                + Duration::from_secs_f64(received as f64 / bytes_per_second);
            tokio::time::sleep_until(due.into()).await;
        }
    }
    let xfer = xfer_start.elapsed();
    let notify = Message::Notify {
        remote_request_id: request.remote_request_id.clone(),
    };
    let notified = async {
        write_frame(stream, &notify).await?;
        let reply = expect_reply(stream).await?;
        if reply.ok {
            Ok(())
        } else {
            Err(Error::Refused(reply.error.unwrap_or_default()))
        }
    }
    .await;
    if let Err(error) = notified {
        return Err((Error::Notify(Box::new(error)), false));
    }
    Ok((
        conn,
        Stats {
            post,
            xfer,
            bytes: received,
        },
    ))
}

/// Checks that `chunk`, starting at byte `offset` of the transfer, holds each block's fill.
pub(super) fn verify(chunk: &[u8], offset: u64, request: &ReadRequest) -> Result<(), Error> {
    let block_bytes = request.block_bytes.max(1);
    let mut position = offset;
    let mut rest = chunk;
    while !rest.is_empty() {
        let block_idx = (position / block_bytes) as usize;
        let block_id = request
            .block_ids
            .get(block_idx)
            .copied()
            .unwrap_or_default();
        let in_block = (block_bytes - position % block_bytes).min(rest.len() as u64) as usize;
        let expected = fill_byte(block_id);
        if rest[..in_block].iter().any(|&byte| byte != expected) {
            return Err(Error::Corrupt { block_id });
        }
        rest = &rest[in_block..];
        position += in_block as u64;
    }
    Ok(())
}
