//! The generated dashboards against Grafana's own types: `scripts/check-dashboards.sh` runs
//! `tsc` over each dashboard with npm `@grafana/schema`, so a misspelt key, a value of the
//! wrong type or an unknown enum value fails here. No Grafana server is available from the
//! registries; its schema package is the closest real check (tooling notes §5g).

use std::process::Command;

use e2e::workspace_root;

#[test]
fn dashboards_match_grafana_schema() {
    let script = workspace_root().join("scripts/check-dashboards.sh");
    let output = Command::new("bash")
        .arg(&script)
        .output()
        .unwrap_or_else(|error| panic!("running {}: {error}", script.display()));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{} failed ({}); it needs node and npm (apt-get install nodejs npm):\n{stdout}\n{stderr}",
        script.display(),
        output.status
    );
    assert!(
        stdout.contains("dashboards match @grafana/schema"),
        "{stdout}"
    );
}
