//! The guides' plain Kubernetes manifests against Kubernetes' own OpenAPI schemas:
//! `scripts/check-manifests.sh` runs PyPI's kubernetes-validate offline with `--strict`, and
//! checks that a misspelt field fails. No API server or helm binary is available from the
//! registries (tooling notes §5d–f); this is the closest real check of what `kubectl apply`
//! would accept.

use std::process::Command;

use e2e::workspace_root;

#[test]
fn guide_manifests_match_kubernetes_schemas() {
    let script = workspace_root().join("scripts/check-manifests.sh");
    let output = Command::new("bash")
        .arg(&script)
        .output()
        .unwrap_or_else(|error| panic!("running {}: {error}", script.display()));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{} failed ({}); it needs python3 with venv:\n{stdout}\n{stderr}",
        script.display(),
        output.status
    );
    assert!(stdout.contains("guide manifests valid"), "{stdout}");
}
