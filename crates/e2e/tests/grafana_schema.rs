//! The generated dashboards against Grafana's own types: `scripts/check-dashboards.sh` runs
//! `tsc` over each dashboard with npm `@grafana/schema`, so a misspelt key, a value of the
//! wrong type or an unknown enum value fails here. No Grafana server is available from the
//! registries; its schema package is the closest real check (tooling notes §5g).

#[test]
fn dashboards_match_grafana_schema() {
    let stdout = e2e::run_check_script(
        "check-dashboards.sh",
        "node and npm (apt-get install nodejs npm)",
    );
    assert!(
        stdout.contains("dashboards match @grafana/schema"),
        "{stdout}"
    );
}
