//! The stack's flags and its report's parsers.

use super::report::Exposition;
use super::*;

#[test]
fn flags_parse_and_bad_ones_are_named() {
    let args = |s: &str| s.split_whitespace().map(str::to_owned).collect::<Vec<_>>();
    let config = StackConfig::parse(&args("--decode 3 --minutes 0.1")).unwrap();
    assert_eq!(
        (
            config.decode,
            config.prefill,
            config.minutes,
            config.workers
        ),
        (3, 2, 0.1, 6)
    );
    let err = StackConfig::parse(&args("--pods 3"))
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("unknown flag --pods"), "{err}");
    assert!(StackConfig::parse(&args("--prefill 0")).is_err());
    assert!(StackConfig::parse(&args("--decode")).is_err());
}

#[test]
fn expositions_sum_by_labels_and_interpolate_quantiles() {
    let text = "\
# TYPE x counter
x{a=\"1\",b=\"q\\\"uote\"} 2
x{a=\"2\"} 3.5
h_bucket{le=\"0.1\"} 50
h_bucket{le=\"0.2\"} 100
h_bucket{le=\"+Inf\"} 100
h_sum 12
h_count 100
bad line here x
";
    let exposition = Exposition::parse(text);
    assert_eq!(exposition.sum("x", &[]), 5.5);
    assert_eq!(exposition.sum("x", &[("a", "2")]), 3.5);
    assert_eq!(exposition.sum("x", &[("b", "q\"uote")]), 2.0);
    assert_eq!(exposition.sum("missing", &[]), 0.0);
    let p75 = exposition.quantile("h", 0.75).unwrap();
    assert!((p75 - 0.15).abs() < 1e-9, "{p75}");
    assert_eq!(exposition.mean("h"), Some(0.12));
    assert_eq!(exposition.quantile("missing", 0.5), None);
}

#[test]
fn the_otlp_receiver_reads_keep_alive_and_chunked_exports() {
    use std::io::{BufRead, BufReader, Read, Write};

    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
    use prost::Message;

    let export = |name: &str| {
        let text = |s: &str| AnyValue {
            value: Some(any_value::Value::StringValue(s.to_owned())),
        };
        ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![KeyValue {
                        key: "service.name".into(),
                        value: Some(text("svc")),
                        ..Default::default()
                    }],
                    ..Default::default()
                }),
                scope_spans: vec![ScopeSpans {
                    spans: vec![Span {
                        trace_id: vec![0xab; 16],
                        span_id: vec![1; 8],
                        name: name.into(),
                        start_time_unix_nano: 1_000_000,
                        end_time_unix_nano: 3_500_000,
                        attributes: vec![KeyValue {
                            key: "k".into(),
                            value: Some(AnyValue {
                                value: Some(any_value::Value::DoubleValue(2.5)),
                            }),
                            ..Default::default()
                        }],
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
        .encode_to_vec()
    };
    let sink = super::otlp::Sink::start().unwrap();
    let mut stream = std::net::TcpStream::connect(sink.addr()).unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let expect_ok = |reader: &mut BufReader<std::net::TcpStream>| {
        let mut status = String::new();
        reader.read_line(&mut status).unwrap();
        assert!(status.starts_with("HTTP/1.1 200"), "{status}");
        let mut line = String::new();
        while reader.read_line(&mut line).unwrap() > 0 && line != "\r\n" {
            line.clear();
        }
    };
    let body = export("first");
    write!(
        stream,
        "POST /v1/traces HTTP/1.1\r\nhost: x\r\ncontent-type: application/x-protobuf\r\ncontent-length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    stream.write_all(&body).unwrap();
    expect_ok(&mut reader);
    let body = export("second");
    let (a, b) = body.split_at(body.len() / 2);
    write!(
        stream,
        "POST /v1/traces HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n{:x}\r\n",
        a.len()
    )
    .unwrap();
    stream.write_all(a).unwrap();
    write!(stream, "\r\n{:x}\r\n", b.len()).unwrap();
    stream.write_all(b).unwrap();
    stream.write_all(b"\r\n0\r\n\r\n").unwrap();
    expect_ok(&mut reader);
    // Garbage is refused with a 400 and counts as nothing.
    stream
        .write_all(b"POST /v1/traces HTTP/1.1\r\ncontent-length: 3\r\n\r\n\xff\xff\xff")
        .unwrap();
    let mut status = String::new();
    reader.read_line(&mut status).unwrap();
    assert!(status.starts_with("HTTP/1.1 400"), "{status}");
    stream.shutdown(std::net::Shutdown::Write).unwrap();
    let _ = reader.read_to_end(&mut Vec::new());
    let spans = sink.spans();
    let names: Vec<&str> = spans.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["first", "second"]);
    assert_eq!(spans[0].service, "svc");
    assert_eq!(spans[0].trace_id, "ab".repeat(16));
    assert_eq!(spans[0].attr_f64("k"), Some(2.5));
    assert_eq!(spans[0].duration_ms(), 2.5);
}
