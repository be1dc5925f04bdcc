//! Building the ext_proc replies.

use envoy_types::pb::envoy::config::core::v3::{
    HeaderValue, HeaderValueOption, header_value_option::HeaderAppendAction,
};
use envoy_types::pb::envoy::service::ext_proc::v3::{
    BodyMutation, BodyResponse, CommonResponse, HeaderMutation, HeadersResponse, ImmediateResponse,
    ProcessingResponse, StreamedBodyResponse, TrailersResponse, body_mutation::Mutation,
    processing_response::Response,
};
use envoy_types::pb::envoy::r#type::v3::HttpStatus;
use envoy_types::pb::google::protobuf::{Struct, Value, value::Kind};

use crate::telemetry::ErrorKind;

/// The header (and `envoy.lb` metadata key) naming the chosen endpoint.
pub const DESTINATION_HEADER: &str = "x-gateway-destination-endpoint";
/// The dynamic-metadata namespace Envoy's load balancers read.
pub const ENVOY_LB_NAMESPACE: &str = "envoy.lb";
/// Why a request was refused.
pub const DROPPED_REASON_HEADER: &str = "x-llm-d-request-dropped-reason";
/// Upstream's streamed chunk cap ("some Envoy implementations cap a chunk at 64 KiB").
pub const BODY_CHUNK_LIMIT: usize = 62_000;

fn wrap(response: Response) -> ProcessingResponse {
    ProcessingResponse {
        response: Some(response),
        ..Default::default()
    }
}

fn header(key: &str, value: &str) -> HeaderValueOption {
    HeaderValueOption {
        header: Some(HeaderValue {
            key: key.to_owned(),
            raw_value: value.as_bytes().to_vec(),
            ..Default::default()
        }),
        append_action: HeaderAppendAction::OverwriteIfExistsOrAdd as i32,
        ..Default::default()
    }
}

fn streamed(body: Vec<u8>, end_of_stream: bool) -> Option<CommonResponse> {
    Some(CommonResponse {
        body_mutation: Some(BodyMutation {
            mutation: Some(Mutation::StreamedResponse(StreamedBodyResponse {
                body,
                end_of_stream,
                ..Default::default()
            })),
        }),
        ..Default::default()
    })
}

/// The request-headers reply: destination header and metadata, other header changes, and a
/// cleared route cache so the destination is honoured.
pub(crate) fn route(
    destination: &str,
    set: Vec<(String, String)>,
    remove: Vec<String>,
) -> ProcessingResponse {
    let mut lb = Struct::default();
    lb.fields.insert(
        DESTINATION_HEADER.to_owned(),
        Value {
            kind: Some(Kind::StringValue(destination.to_owned())),
        },
    );
    let mut metadata = Struct::default();
    metadata.fields.insert(
        ENVOY_LB_NAMESPACE.to_owned(),
        Value {
            kind: Some(Kind::StructValue(lb)),
        },
    );
    ProcessingResponse {
        response: Some(Response::RequestHeaders(HeadersResponse {
            response: Some(CommonResponse {
                header_mutation: Some(HeaderMutation {
                    set_headers: set.iter().map(|(k, v)| header(k, v)).collect(),
                    remove_headers: remove,
                }),
                clear_route_cache: true,
                ..Default::default()
            }),
        })),
        dynamic_metadata: Some(metadata),
        ..Default::default()
    }
}

/// The request body sent back in chunks of at most [`BODY_CHUNK_LIMIT`]; an empty body is
/// one empty chunk with end-of-stream.
pub(crate) fn request_body_chunks(body: Vec<u8>) -> Vec<ProcessingResponse> {
    if body.is_empty() {
        return vec![wrap(Response::RequestBody(BodyResponse {
            response: streamed(Vec::new(), true),
        }))];
    }
    let n_chunks = body.len().div_ceil(BODY_CHUNK_LIMIT);
    body.chunks(BODY_CHUNK_LIMIT)
        .enumerate()
        .map(|(chunk_idx, chunk)| {
            wrap(Response::RequestBody(BodyResponse {
                response: streamed(chunk.to_vec(), chunk_idx + 1 == n_chunks),
            }))
        })
        .collect()
}

pub(crate) fn response_headers() -> ProcessingResponse {
    wrap(Response::ResponseHeaders(HeadersResponse::default()))
}

pub(crate) fn response_body(body: Vec<u8>, end_of_stream: bool) -> ProcessingResponse {
    wrap(Response::ResponseBody(BodyResponse {
        response: streamed(body, end_of_stream),
    }))
}

pub(crate) fn request_trailers() -> ProcessingResponse {
    wrap(Response::RequestTrailers(TrailersResponse::default()))
}

pub(crate) fn response_trailers() -> ProcessingResponse {
    wrap(Response::ResponseTrailers(TrailersResponse::default()))
}

/// An immediate response: `inference error: <Kind> - <message>` as upstream words it.
pub(crate) fn immediate(
    kind: ErrorKind,
    message: &str,
    dropped_reason: Option<&str>,
) -> ProcessingResponse {
    let mut set = vec![header("content-type", "text/plain")];
    if let Some(reason) = dropped_reason {
        set.push(header(DROPPED_REASON_HEADER, reason));
    }
    wrap(Response::ImmediateResponse(ImmediateResponse {
        status: Some(HttpStatus {
            code: i32::from(kind.http_status()),
        }),
        headers: Some(HeaderMutation {
            set_headers: set,
            remove_headers: Vec::new(),
        }),
        body: format!("inference error: {} - {message}", kind.as_str()).into_bytes(),
        ..Default::default()
    }))
}
