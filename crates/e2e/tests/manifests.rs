//! The guides' plain Kubernetes manifests against Kubernetes' own OpenAPI schemas:
//! `scripts/check-manifests.sh` runs PyPI's kubernetes-validate offline with `--strict`, and
//! checks that a misspelt field fails. No API server or helm binary is available from the
//! registries (tooling notes §5d–f); this is the closest real check of what `kubectl apply`
//! would accept.

#[test]
fn guide_manifests_match_kubernetes_schemas() {
    let stdout = e2e::run_check_script("check-manifests.sh", "python3 with venv");
    assert!(stdout.contains("guide manifests valid"), "{stdout}");
}
