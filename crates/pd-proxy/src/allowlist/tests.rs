//! The allow-list's verdicts.

use std::time::Duration;

use super::*;

fn list(enabled: bool, entries: &[&str]) -> AllowList {
    AllowList::new(&SsrfConfig {
        enabled,
        allowed_hosts: entries.iter().map(|e| (*e).to_owned()).collect(),
        pool_file: None,
        pool_refresh: Duration::from_secs(5),
        inference_pool: None,
    })
}

#[test]
fn targets_are_checked_by_host_or_host_and_port() {
    let allow = list(
        true,
        &[
            "10.0.0.1",
            "prefill-0.pool:8000",
            "[fd00::1]",
            "http://10.0.0.9:8200/",
        ],
    );
    let cases = [
        ("10.0.0.1:8000", Verdict::Allowed),
        ("10.0.0.1:9999", Verdict::Allowed),
        ("http://10.0.0.1:8000", Verdict::Allowed),
        ("PREFILL-0.pool:8000", Verdict::Allowed),
        ("prefill-0.pool:8001", Verdict::Denied),
        ("[fd00::1]:8000", Verdict::Allowed),
        ("10.0.0.9:8200", Verdict::Allowed),
        ("10.0.0.9:8201", Verdict::Denied),
        ("10.0.0.2:8000", Verdict::Denied),
        ("169.254.169.254:80", Verdict::Denied),
        ("10.0.0.1", Verdict::Malformed),
        ("10.0.0.1:0", Verdict::Malformed),
        ("10.0.0.1:8000/path?x=1", Verdict::Malformed),
        ("user@10.0.0.1:8000", Verdict::Malformed),
        ("fd00::1:8000", Verdict::Malformed),
    ];
    for (target, verdict) in cases {
        assert_eq!(allow.check(target), verdict, "{target}");
    }
}

#[test]
fn secure_by_default_and_explicitly_open() {
    let empty = list(true, &[]);
    assert!(empty.is_empty());
    assert_eq!(empty.check("10.0.0.1:8000"), Verdict::Denied);
    let open = list(false, &[]);
    assert_eq!(open.check("10.0.0.1:8000"), Verdict::Allowed);
    assert_eq!(open.check("nonsense"), Verdict::Malformed);
}

#[test]
fn pool_file_lines_allow_comments_and_blanks() {
    let allow = list(true, &[]);
    let len = allow.replace(Some("# pods\n\n10.0.0.5:8000  # prefill-0\n10.0.0.6\n"));
    assert_eq!(len, 2);
    assert_eq!(allow.check("10.0.0.5:8000"), Verdict::Allowed);
    assert_eq!(allow.check("10.0.0.6:1"), Verdict::Allowed);
    assert_eq!(allow.check("10.0.0.5:8001"), Verdict::Denied);
}
