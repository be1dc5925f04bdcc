//! The handles match the schema: every outcome, the connector label, the families.

use metrics_schema::pd_proxy;

use super::*;

#[test]
fn every_schema_outcome_has_a_series_from_start_up() {
    let labels: Vec<&str> = Outcome::ALL.iter().map(|o| o.as_str()).collect();
    assert_eq!(labels, pd_proxy::outcome::ALL);
    let metrics = Metrics::new("nixlv2").unwrap();
    let text = String::from_utf8(::telemetry::encode_metrics(&metrics.registry)).unwrap();
    for outcome in pd_proxy::outcome::ALL {
        let series = format!(
            "{}{{connector=\"nixlv2\",outcome=\"{outcome}\"}} 0",
            pd_proxy::REQUESTS_TOTAL.name
        );
        assert!(text.contains(&series), "{series}");
    }
    for def in pd_proxy::ALL {
        assert!(
            text.contains(&format!("# TYPE {} ", def.name)),
            "{}",
            def.name
        );
    }
    metrics.request(Outcome::PrefillError).inc();
    assert_eq!(metrics.request(Outcome::PrefillError).get(), 1.0);
    assert_eq!(metrics.request(Outcome::Success).get(), 0.0);
}
