//! W3C trace-context propagation over HTTP headers.

use opentelemetry::{
    Context,
    propagation::{Extractor, Injector, TextMapPropagator},
    trace::TraceContextExt,
};
use opentelemetry_sdk::propagation::TraceContextPropagator;

struct HeaderExtractor<'a>(&'a http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|name| name.as_str()).collect()
    }
}

struct HeaderInjector<'a>(&'a mut http::HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (
            http::HeaderName::try_from(key),
            http::HeaderValue::try_from(value),
        ) {
            self.0.insert(name, value);
        }
    }
}

/// The parent context carried by `traceparent`/`tracestate`; an empty context when absent or
/// malformed (a bad header never fails a request).
pub fn extract_context(headers: &http::HeaderMap) -> Context {
    TraceContextPropagator::new().extract(&HeaderExtractor(headers))
}

/// Writes `traceparent` (and `tracestate`) for `cx` into `headers`; nothing when `cx` has no
/// valid span.
pub fn inject_context(cx: &Context, headers: &mut http::HeaderMap) {
    TraceContextPropagator::new().inject_context(cx, &mut HeaderInjector(headers));
}

/// The 32-hex trace id of `cx`, if it carries a valid span context.
pub fn trace_id_hex(cx: &Context) -> Option<String> {
    let span = cx.span();
    let span_context = span.span_context();
    span_context
        .is_valid()
        .then(|| span_context.trace_id().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_a_traceparent() {
        let mut headers = http::HeaderMap::new();
        headers.insert(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
                .parse()
                .unwrap(),
        );
        let cx = extract_context(&headers);
        assert_eq!(
            trace_id_hex(&cx).as_deref(),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
        let mut out = http::HeaderMap::new();
        inject_context(&cx, &mut out);
        assert_eq!(out["traceparent"], headers["traceparent"]);
    }

    #[test]
    fn malformed_traceparent_gives_an_empty_context() {
        let mut headers = http::HeaderMap::new();
        headers.insert("traceparent", "00-zz-00f067aa0ba902b7-01".parse().unwrap());
        assert_eq!(trace_id_hex(&extract_context(&headers)), None);
        let mut out = http::HeaderMap::new();
        inject_context(&extract_context(&headers), &mut out);
        assert!(out.is_empty());
    }
}
