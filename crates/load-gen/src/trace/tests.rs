//! Unit tests of `trace`: the `traceparent` format.

use rand::{SeedableRng, rngs::StdRng};

use super::TraceContext;

#[test]
fn traceparent_is_w3c_version_00_sampled() {
    let mut rng = StdRng::seed_from_u64(1);
    let trace = TraceContext::generate(&mut rng);
    let header = trace.traceparent();
    let parts: Vec<&str> = header.split('-').collect();
    assert_eq!(parts.len(), 4, "{header}");
    assert_eq!(parts[0], "00");
    assert_eq!(parts[1], trace.trace_id_hex());
    assert_eq!(parts[1].len(), 32);
    assert_eq!(parts[2].len(), 16);
    assert_eq!(parts[3], "01");
    assert!(
        header[3..]
            .chars()
            .all(|c| c == '-' || c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
    );
    assert_ne!(parts[1], "0".repeat(32));
    assert_ne!(parts[2], "0".repeat(16));
}

#[test]
fn trace_ids_differ_between_requests() {
    let mut rng = StdRng::seed_from_u64(2);
    let a = TraceContext::generate(&mut rng);
    let b = TraceContext::generate(&mut rng);
    assert_ne!(a.trace_id, b.trace_id);
    assert_ne!(a.span_id, b.span_id);
}
