//! The tidy checks, run over the repository and over inputs that break each rule.

use super::{check_manifest, check_repository, check_rust_file, is_member_manifest};
use crate::project_root;

#[test]
fn tidy() {
    let problems = check_repository(&project_root()).expect("walk the repository");
    assert!(
        problems.is_empty(),
        "tidy found problems:\n{}",
        problems.join("\n")
    );
}

#[test]
fn checks_catch_violations() {
    assert!(check_rust_file("a/lib.rs", "lib.rs", "//! Doc.\nfn f() {}\n").is_empty());
    assert_eq!(
        check_rust_file("a/lib.rs", "lib.rs", "// Not a doc.\n").len(),
        1
    );
    assert_eq!(
        check_rust_file("a/lib.rs", "lib.rs", "/// Item doc.\nfn f() {}\n").len(),
        1
    );
    assert_eq!(
        check_rust_file("a/foo/mod.rs", "mod.rs", "//! Doc.\n").len(),
        1
    );
    assert!(check_manifest("a/Cargo.toml", "[package]\n\n[lints]\nworkspace = true\n").is_empty());
    assert!(check_manifest("a/Cargo.toml", "[lints]\r\nworkspace = true\r\n").is_empty());
    assert_eq!(
        check_manifest("a/Cargo.toml", "[package]\nname = \"a\"\n").len(),
        1
    );
    assert_eq!(
        check_manifest("a/Cargo.toml", "[lints.rust]\nunsafe_code = \"forbid\"\n").len(),
        1
    );
}

#[test]
fn only_member_manifests_need_workspace_lints() {
    let root = std::path::Path::new("/repo");
    assert!(is_member_manifest(
        root,
        &root.join("crates/epp/Cargo.toml")
    ));
    assert!(is_member_manifest(root, &root.join("xtask/Cargo.toml")));
    assert!(!is_member_manifest(
        root,
        &root.join("crates/kv-index/fuzz/Cargo.toml")
    ));
}
