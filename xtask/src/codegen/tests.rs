//! Generated files are committed and fresh, so plain `cargo test` catches drift.

use std::fs;

use super::{Generator, ensure_file_contents, run};

#[test]
fn codegen_is_fresh() {
    for generator in Generator::ALL {
        if let Err(error) = generator.run(true) {
            panic!("{error:#}");
        }
    }
}

#[test]
fn generators_are_deterministic() {
    for generator in Generator::ALL {
        assert_eq!(
            generator.render(),
            generator.render(),
            "{generator:?} is not deterministic"
        );
    }
}

#[test]
fn ensure_file_contents_checks_then_writes() {
    let dir = std::env::temp_dir().join(format!("xtask-codegen-test-{}", std::process::id()));
    let path = dir.join("nested").join("file.md");
    let _ = fs::remove_dir_all(&dir);

    let missing = ensure_file_contents(&path, "a\n", true, "docs").unwrap_err();
    assert!(
        missing.to_string().contains("cargo xtask codegen docs"),
        "{missing}"
    );
    assert!(!path.exists(), "check mode wrote the file");

    ensure_file_contents(&path, "a\n", false, "docs").expect("write");
    assert_eq!(fs::read_to_string(&path).expect("read back"), "a\n");

    fs::write(&path, "a\r\n").expect("write CRLF");
    ensure_file_contents(&path, "a\n", true, "docs").expect("CRLF counts as fresh");

    assert!(
        ensure_file_contents(&path, "b\n", true, "docs").is_err(),
        "stale file passed"
    );
    fs::remove_dir_all(&dir).expect("clean up");
}

#[test]
fn cli_rejects_unknown_generators() {
    let error = run(&["dashboardz".to_owned(), "--check".to_owned()]).unwrap_err();
    assert!(error.to_string().contains("unknown generator"), "{error}");
}
