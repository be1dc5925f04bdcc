//! TLS on both sides of the sidecar: upstream stages over real TLS handshakes (a TLS front
//! before each simulator), with and without certificate checks, and `--secure-proxy` serving
//! the listen port from a mounted Secret or a self-signed certificate.

use serde_json::json;
use test_support::tls::{SelfSigned, TlsFront, remove_secret_dir};

use crate::support::{
    CONSUMER, PRODUCER, post, requests, scrape_sidecar, scrape_sim, sidecar_with_env, sim,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prefill_and_decode_legs_run_over_tls() {
    let prefill = sim(Some(PRODUCER), &[]).await;
    let decode = sim(Some(CONSUMER), &[]).await;
    let certificate = SelfSigned::generate();
    let prefill_front = TlsFront::start(&certificate, prefill.addr()).await;
    let decode_front = TlsFront::start(&certificate, decode.addr()).await;
    let target = prefill_front.addr().to_string();
    let header = [("x-prefiller-host-port", target.clone())];
    let body = json!({"prompt": "Move my KV over TLS.", "max_tokens": 3});

    // Self-signed engines, as in most clusters: TLS on, certificate checks off.
    let unverified = sidecar_with_env(
        decode_front.addr().port(),
        &[
            "--enable-tls",
            "prefiller,decoder",
            "--tls-insecure-skip-verify",
            "prefiller,decoder",
            "--allowed-prefill-hosts",
            &target,
        ],
        &[],
    )
    .await;
    let (status, answer) = post(
        &format!("{}/v1/completions", unverified.url()),
        &body,
        &header,
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(requests(&scrape_sidecar(&unverified).await, "success"), 1.0);
    assert_eq!(
        scrape_sim(&decode)
            .await
            .sum("vllm:nixl_xfer_time_seconds_count", &[]),
        1.0,
        "the decode engine pulled the prefill's KV"
    );
    // The 2025 flag names mean the same.
    let legacy = sidecar_with_env(
        decode_front.addr().port(),
        &[
            "--prefiller-use-tls",
            "--decoder-use-tls",
            "--prefiller-tls-insecure-skip-verify",
            "--decoder-tls-insecure-skip-verify",
            "--allowed-prefill-hosts",
            &target,
        ],
        &[],
    )
    .await;
    let (status, answer) = post(&format!("{}/v1/completions", legacy.url()), &body, &header).await;
    assert_eq!(status, 200, "{answer}");

    // With checks on, the self-signed prefill pod is refused: a clear error, counted.
    let verified = sidecar_with_env(
        decode_front.addr().port(),
        &[
            "--enable-tls",
            "prefiller,decoder",
            "--tls-insecure-skip-verify",
            "decoder",
            "--allowed-prefill-hosts",
            &target,
        ],
        &[],
    )
    .await;
    let (status, error) = post(
        &format!("{}/v1/completions", verified.url()),
        &body,
        &header,
    )
    .await;
    assert_eq!(status, 502, "{error}");
    let message = error["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("certificate"), "{message}");
    assert_eq!(
        requests(&scrape_sidecar(&verified).await, "prefill_error"),
        1.0
    );
    for proxy in [unverified, legacy, verified] {
        proxy.shutdown().await;
    }
    prefill.shutdown().await.unwrap();
    decode.shutdown().await.unwrap();
}

fn https_client(trusted: Option<&SelfSigned>) -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let builder = reqwest::Client::builder();
    let builder = match trusted {
        Some(certificate) => {
            builder.tls_certs_only([reqwest::Certificate::from_der(&certificate.cert_der).unwrap()])
        }
        None => builder.tls_danger_accept_invalid_certs(true),
    };
    builder.build().expect("client")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secure_proxy_serves_tls_and_counts_failed_handshakes() {
    let decode = sim(None, &[]).await;
    let certificate = SelfSigned::generate();
    let secret = certificate.write_secret_dir();
    let port = decode.addr().port();
    let mounted = sidecar_with_env(
        port,
        &[
            "--secure-proxy",
            "--cert-path",
            secret.to_str().unwrap(),
            "--cert-reload-interval",
            "20ms",
        ],
        &[],
    )
    .await;
    let url = format!("https://localhost:{}/v1/completions", mounted.addr().port());
    let body = json!({"model": "test-model", "prompt": "Over TLS.", "max_tokens": 2});
    let response = https_client(Some(&certificate))
        .post(&url)
        .json(&body)
        .send()
        .await
        .expect("an HTTPS answer");
    assert_eq!(response.status(), 200);
    // Plain HTTP to the TLS port is not served, and the failed handshake is counted.
    let plain = reqwest::Client::new()
        .post(format!(
            "http://127.0.0.1:{}/v1/completions",
            mounted.addr().port()
        ))
        .json(&body)
        .send()
        .await;
    assert!(plain.is_err() || !plain.unwrap().status().is_success());
    let metrics = scrape_sidecar(&mounted).await;
    assert_eq!(
        metrics.sum(
            "llm_d_inference_scheduler_pd_proxy_tls_handshake_failures_total",
            &[]
        ),
        1.0
    );
    // A certificate nobody trusts is refused by a checking client.
    assert!(
        https_client(Some(&SelfSigned::generate()))
            .post(&url)
            .json(&body)
            .send()
            .await
            .is_err()
    );

    // A renewed Secret (cert-manager rewrites the mounted files) serves new handshakes
    // without a restart.
    let renewed = SelfSigned::generate();
    std::fs::write(secret.join("tls.crt"), &renewed.cert_pem).unwrap();
    std::fs::write(secret.join("tls.key"), &renewed.key_pem).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while https_client(Some(&renewed))
        .post(&url)
        .json(&body)
        .send()
        .await
        .is_err()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the renewed certificate serves"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(
        https_client(Some(&certificate))
            .post(&url)
            .json(&body)
            .send()
            .await
            .is_err(),
        "the old certificate no longer serves"
    );

    // Without --cert-path the sidecar makes its own certificate, as upstream.
    let generated = sidecar_with_env(port, &["--secure-proxy"], &[]).await;
    let url = format!(
        "https://127.0.0.1:{}/v1/completions",
        generated.addr().port()
    );
    let response = https_client(None)
        .post(&url)
        .json(&body)
        .send()
        .await
        .expect("HTTPS");
    assert_eq!(response.status(), 200);
    for proxy in [mounted, generated] {
        proxy.shutdown().await;
    }
    remove_secret_dir(&secret);
    decode.shutdown().await.unwrap();
}

#[test]
fn unknown_tls_stages_are_refused_by_name() {
    for (flag, value, expected) in [
        (
            "--enable-tls",
            "encoder",
            "--enable-tls: the encoder stage is not supported (no encode connector)",
        ),
        (
            "--enable-tls",
            "gateway",
            "--enable-tls: \"gateway\" is not a stage (prefiller, decoder)",
        ),
        (
            "--tls-insecure-skip-verify",
            "nope",
            "--tls-insecure-skip-verify: \"nope\" is not a stage (prefiller, decoder)",
        ),
    ] {
        let error = pd_proxy::Config::parse(
            ["pd-proxy", flag, value],
            &pd_proxy::env::TestEnv::from_pairs(&[]),
        )
        .unwrap_err();
        assert_eq!(error.to_string(), expected);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_secret_stops_start_up_with_the_file_named() {
    let dir = std::env::temp_dir().join(format!("pd-proxy-missing-secret-{}", std::process::id()));
    let config = pd_proxy::Config::parse(
        [
            "pd-proxy",
            "--port",
            "0",
            "--secure-proxy",
            "--cert-path",
            dir.to_str().unwrap(),
        ],
        &pd_proxy::env::TestEnv::from_pairs(&[]),
    )
    .unwrap();
    let error = pd_proxy::spawn(config).await.unwrap_err();
    let chain = format!(
        "{error}: {}",
        std::error::Error::source(&error)
            .map(ToString::to_string)
            .unwrap_or_default()
    );
    assert!(chain.contains("tls.crt"), "{chain}");
}
