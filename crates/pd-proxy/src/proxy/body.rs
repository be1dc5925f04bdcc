//! Response bodies the sidecar hands to hyper: a whole buffer, a plain relay, or a tracked
//! SSE relay that marks the first token, ends the request's clock, and turns an upstream
//! that dies or stalls mid-stream into a vLLM-shaped error event instead of a hung or torn
//! connection.

use std::{
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use bytes::Bytes;
use hyper::body::{Body, Frame, Incoming, SizeHint};

use super::{sse::FirstToken, tracker::Tracker};
use crate::telemetry::Outcome;

/// Errors a relayed body can end with (the connection is then closed, as there is no
/// clean way to signal an error in a body of known length).
pub(super) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The body of every response the sidecar sends.
pub(crate) enum ProxyBody {
    /// A complete body.
    Full(Option<Bytes>),
    /// An untracked relay (routes the sidecar only forwards).
    Plain(Incoming),
    /// A tracked SSE relay of an inference response.
    Stream(Box<SseRelay>),
}

impl ProxyBody {
    pub(crate) fn full(bytes: impl Into<Bytes>) -> ProxyBody {
        ProxyBody::Full(Some(bytes.into()))
    }
}

impl Body for ProxyBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.get_mut() {
            ProxyBody::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            ProxyBody::Plain(incoming) => Pin::new(incoming)
                .poll_frame(cx)
                .map(|frame| frame.map(|f| f.map_err(BoxError::from))),
            ProxyBody::Stream(relay) => relay.poll(cx).map(|frame| frame.map(Ok)),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ProxyBody::Full(bytes) => bytes.is_none(),
            ProxyBody::Plain(incoming) => incoming.is_end_stream(),
            ProxyBody::Stream(relay) => relay.done,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ProxyBody::Full(Some(bytes)) => SizeHint::with_exact(bytes.len() as u64),
            ProxyBody::Full(None) => SizeHint::with_exact(0),
            ProxyBody::Plain(incoming) => incoming.size_hint(),
            ProxyBody::Stream(_) => SizeHint::default(),
        }
    }
}

/// An SSE decode response on its way to the client.
pub(crate) struct SseRelay {
    inner: Incoming,
    tracker: Tracker,
    first_token: FirstToken,
    idle: Pin<Box<tokio::time::Sleep>>,
    idle_timeout: Duration,
    done: bool,
}

impl SseRelay {
    pub(crate) fn new(inner: Incoming, tracker: Tracker, idle_timeout: Duration) -> SseRelay {
        SseRelay {
            inner,
            tracker,
            first_token: FirstToken::default(),
            idle: Box::pin(tokio::time::sleep(idle_timeout)),
            idle_timeout,
            done: false,
        }
    }

    fn fail(&mut self, message: &str) -> Poll<Option<Frame<Bytes>>> {
        self.done = true;
        self.tracker.error("decode_failed", message);
        self.tracker.first_token();
        self.tracker.finish(Outcome::DecodeError);
        let event = format!(
            "data: {}\n\ndata: [DONE]\n\n",
            super::error_json(502, "BadGatewayError", message)
        );
        Poll::Ready(Some(Frame::data(Bytes::from(event))))
    }

    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Option<Frame<Bytes>>> {
        if self.done {
            return Poll::Ready(None);
        }
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    let deadline = tokio::time::Instant::now() + self.idle_timeout;
                    self.idle.as_mut().reset(deadline);
                    if !self.first_token.found() && self.first_token.feed(data) {
                        self.tracker.first_token();
                    }
                }
                Poll::Ready(Some(frame))
            }
            Poll::Ready(Some(Err(error))) => {
                tracing::warn!(%error, "Decode stream broke mid-response.");
                self.fail(&format!("the decode engine's stream broke: {error}"))
            }
            Poll::Ready(None) => {
                self.done = true;
                // A stream that ended without a token event still reached the client.
                if !self.tracker.has_first_token() {
                    self.tracker.first_token();
                }
                self.tracker.finish(Outcome::Success);
                Poll::Ready(None)
            }
            Poll::Pending => match self.idle.as_mut().poll(cx) {
                Poll::Ready(()) => {
                    tracing::warn!(timeout = ?self.idle_timeout, "Decode stream went silent.");
                    let message =
                        format!("the decode engine sent nothing for {:?}", self.idle_timeout);
                    self.fail(&message)
                }
                Poll::Pending => Poll::Pending,
            },
        }
    }
}
