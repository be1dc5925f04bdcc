//! Unit tests of `sse`: events assembled from arbitrary chunk boundaries.

use super::SseParser;

fn events(chunks: &[&[u8]]) -> (Vec<String>, bool) {
    let mut parser = SseParser::new();
    let mut out = Vec::new();
    for chunk in chunks {
        parser.push(chunk, |data| {
            out.push(String::from_utf8_lossy(data).into_owned())
        });
    }
    (out, parser.has_partial_event())
}

const STREAM: &[u8] = b"data: {\"a\":1}\n\n: keep-alive\n\ndata: {\"b\":2}\n\ndata: [DONE]\n\n";

#[test]
fn whole_stream_in_one_chunk() {
    let (out, partial) = events(&[STREAM]);
    assert_eq!(out, ["{\"a\":1}", "{\"b\":2}", "[DONE]"]);
    assert!(!partial);
}

#[test]
fn every_split_point_gives_the_same_events() {
    for split in 0..=STREAM.len() {
        let (out, partial) = events(&[&STREAM[..split], &STREAM[split..]]);
        assert_eq!(
            out,
            ["{\"a\":1}", "{\"b\":2}", "[DONE]"],
            "split at {split}"
        );
        assert!(!partial);
    }
}

#[test]
fn byte_by_byte() {
    let chunks: Vec<&[u8]> = STREAM.chunks(1).collect();
    let (out, _) = events(&chunks);
    assert_eq!(out.len(), 3);
}

#[test]
fn crlf_and_no_space_after_colon() {
    let (out, _) = events(&[b"data:{\"x\":1}\r\n\r\ndata: [DONE]\r\n\r\n"]);
    assert_eq!(out, ["{\"x\":1}", "[DONE]"]);
}

#[test]
fn multi_line_data_is_joined_with_newline() {
    let (out, _) = events(&[b"event: message\ndata: one\ndata: two\nid: 3\n\n"]);
    assert_eq!(out, ["one\ntwo"]);
}

#[test]
fn a_cut_event_is_reported_as_partial() {
    let (out, partial) = events(&[b"data: {\"a\":1}\n\ndata: {\"b\""]);
    assert_eq!(out, ["{\"a\":1}"]);
    assert!(partial);
    let (_, partial) = events(&[b"data: {\"a\":1}\n"]);
    assert!(partial, "a data line without its blank line is unfinished");
}
