//! Header parsing and first-token detection.

use http::HeaderMap;

use super::{prefill_targets, sse::FirstToken};

#[test]
fn prefill_targets_come_from_every_header_line_and_comma() {
    let mut headers = HeaderMap::new();
    headers.append(
        "x-prefiller-host-port",
        "10.0.0.1:8000, http://10.0.0.2:8000".parse().unwrap(),
    );
    headers.append("x-prefiller-host-port", "10.0.0.3:8000".parse().unwrap());
    headers.append("x-prefiller-url", "http://10.0.0.4:8000/".parse().unwrap());
    assert_eq!(
        prefill_targets(&headers),
        [
            "10.0.0.1:8000",
            "10.0.0.2:8000",
            "10.0.0.3:8000",
            "10.0.0.4:8000"
        ]
    );
    headers.clear();
    headers.append("x-prefiller-host-port", " ".parse().unwrap());
    assert!(prefill_targets(&headers).is_empty());
}

#[test]
fn the_first_token_is_the_first_event_with_text() {
    let role = "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}]}\n\n";
    let token = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"},\"finish_reason\":null}]}\n\n";
    let text = "data: {\"choices\":[{\"index\":0,\"text\":\" there\",\"finish_reason\":null}]}\n\n";
    // (chunks, index of the chunk that carries the first token)
    let cases: Vec<(Vec<String>, Option<usize>)> = vec![
        (vec![role.into(), token.into()], Some(1)),
        (vec![format!("{role}{token}")], Some(0)),
        (vec![token[..20].into(), token[20..].into()], Some(1)),
        (vec![text.into()], Some(0)),
        (vec![role.into(), "data: [DONE]\n\n".into()], Some(1)),
        (vec!["data: {\"error\":{\"code\":500}}\n\n".into()], Some(0)),
        (
            vec![
                role.replace("\n\n", "\r\n\r\n"),
                token.replace("\n\n", "\r\n\r\n"),
            ],
            Some(1),
        ),
        (vec![role.into(), ": keep-alive\n\n".into()], None),
    ];
    for (chunks, expected) in cases {
        let mut scanner = FirstToken::default();
        let found = chunks
            .iter()
            .position(|chunk| scanner.feed(chunk.as_bytes()));
        assert_eq!(found, expected, "{chunks:?}");
    }
}
