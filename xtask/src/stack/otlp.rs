//! An OTLP/HTTP trace receiver (`POST /v1/traces`, protobuf) for the local stack: Envoy, the
//! EPP, the sidecars and the simulators all export here, so the report can show one request's
//! spans across every hop. Plain threads and HTTP/1.1 with keep-alive, Content-Length or
//! chunked bodies: what Envoy's and the OpenTelemetry SDK's HTTP exporters send.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use anyhow::Context;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use prost::Message;

/// Bodies above this are refused, so a confused client cannot exhaust memory.
const MAX_BODY_BYTES: usize = 64 << 20;

/// One received span, flattened.
#[derive(Debug, Clone)]
pub(crate) struct SpanRecord {
    pub(crate) service: String,
    pub(crate) name: String,
    pub(crate) trace_id: String,
    pub(crate) span_id: String,
    pub(crate) parent_id: String,
    pub(crate) start_ns: u64,
    pub(crate) end_ns: u64,
    pub(crate) attributes: BTreeMap<String, String>,
}

impl SpanRecord {
    pub(crate) fn duration_ms(&self) -> f64 {
        self.end_ns.saturating_sub(self.start_ns) as f64 / 1e6
    }

    pub(crate) fn attr(&self, key: &str) -> Option<&str> {
        self.attributes.get(key).map(String::as_str)
    }

    pub(crate) fn attr_f64(&self, key: &str) -> Option<f64> {
        self.attr(key)?.parse().ok()
    }
}

/// The receiver; it serves until the process ends.
pub(crate) struct Sink {
    addr: SocketAddr,
    spans: Arc<Mutex<Vec<SpanRecord>>>,
    rejected: Arc<Mutex<u64>>,
}

impl Sink {
    pub(crate) fn start() -> anyhow::Result<Sink> {
        let listener = TcpListener::bind("127.0.0.1:0").context("binding the OTLP receiver")?;
        let addr = listener.local_addr()?;
        let spans = Arc::new(Mutex::new(Vec::new()));
        let rejected = Arc::new(Mutex::new(0));
        let (accepted_spans, accepted_rejected) = (Arc::clone(&spans), Arc::clone(&rejected));
        std::thread::Builder::new()
            .name("otlp-accept".into())
            .spawn(move || {
                for stream in listener.incoming().flatten() {
                    let spans = Arc::clone(&accepted_spans);
                    let rejected = Arc::clone(&accepted_rejected);
                    let _ = std::thread::Builder::new()
                        .name("otlp-conn".into())
                        .spawn(move || {
                            if serve(stream, &spans).is_err() {
                                *rejected.lock().unwrap_or_else(|e| e.into_inner()) += 1;
                            }
                        });
                }
            })?;
        Ok(Sink {
            addr,
            spans,
            rejected,
        })
    }

    /// The base URL exporters append `/v1/traces` to.
    pub(crate) fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub(crate) fn spans(&self) -> Vec<SpanRecord> {
        self.spans.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Connections that sent something this receiver could not read.
    pub(crate) fn rejected(&self) -> u64 {
        *self.rejected.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn serve(stream: TcpStream, spans: &Mutex<Vec<SpanRecord>>) -> anyhow::Result<()> {
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line)? == 0 {
            return Ok(());
        }
        let mut content_length = 0usize;
        let mut chunked = false;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line)? == 0 {
                return Ok(());
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                let value = value.trim();
                match name.trim().to_ascii_lowercase().as_str() {
                    "content-length" => content_length = value.parse()?,
                    "transfer-encoding" => chunked = value.eq_ignore_ascii_case("chunked"),
                    _ => {}
                }
            }
        }
        let body = if chunked {
            read_chunked(&mut reader)?
        } else {
            anyhow::ensure!(content_length <= MAX_BODY_BYTES, "body too large");
            let mut body = vec![0; content_length];
            reader.read_exact(&mut body)?;
            body
        };
        let status = if request_line.starts_with("POST /v1/traces") {
            match ExportTraceServiceRequest::decode(body.as_slice()) {
                Ok(export) => {
                    let mut spans = spans.lock().unwrap_or_else(|e| e.into_inner());
                    spans.extend(flatten(&export));
                    "200 OK"
                }
                Err(_) => "400 Bad Request",
            }
        } else {
            "404 Not Found"
        };
        // An empty protobuf body is an ExportTraceServiceResponse with nothing rejected.
        write!(
            writer,
            "HTTP/1.1 {status}\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n"
        )?;
        writer.flush()?;
    }
}

fn read_chunked(reader: &mut impl BufRead) -> anyhow::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let mut size_line = String::new();
        reader.read_line(&mut size_line)?;
        let size = usize::from_str_radix(size_line.trim().split(';').next().unwrap_or("0"), 16)?;
        anyhow::ensure!(body.len() + size <= MAX_BODY_BYTES, "body too large");
        let mut chunk = vec![0; size + 2];
        reader.read_exact(&mut chunk)?;
        if size == 0 {
            return Ok(body);
        }
        body.extend_from_slice(&chunk[..size]);
    }
}

fn flatten(export: &ExportTraceServiceRequest) -> Vec<SpanRecord> {
    let mut out = Vec::new();
    for resource_spans in &export.resource_spans {
        let service = resource_spans
            .resource
            .iter()
            .flat_map(|resource| &resource.attributes)
            .find(|kv| kv.key == "service.name")
            .and_then(|kv| kv.value.as_ref())
            .map(|value| any_value_text(value.value.as_ref()))
            .unwrap_or_default();
        for scope in &resource_spans.scope_spans {
            for span in &scope.spans {
                out.push(SpanRecord {
                    service: service.clone(),
                    name: span.name.clone(),
                    trace_id: hex(&span.trace_id),
                    span_id: hex(&span.span_id),
                    parent_id: hex(&span.parent_span_id),
                    start_ns: span.start_time_unix_nano,
                    end_ns: span.end_time_unix_nano,
                    attributes: span
                        .attributes
                        .iter()
                        .map(|kv| {
                            let value = kv.value.as_ref().and_then(|v| v.value.as_ref());
                            (kv.key.clone(), any_value_text(value))
                        })
                        .collect(),
                });
            }
        }
    }
    out
}

fn any_value_text(value: Option<&Value>) -> String {
    match value {
        Some(Value::StringValue(text)) => text.clone(),
        Some(Value::IntValue(n)) => n.to_string(),
        Some(Value::DoubleValue(x)) => x.to_string(),
        Some(Value::BoolValue(b)) => b.to_string(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}
