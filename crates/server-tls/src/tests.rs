//! Real handshakes on loopback: a mounted pair serves, a renewed pair serves from the next
//! handshake after a reload, and a broken pair is refused while the old one keeps serving.

use std::sync::Arc;

use rustls::pki_types::ServerName;
use test_support::tls::SelfSigned;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::*;

/// Serves `tls` on 127.0.0.1:0, answering each connection's first byte with `ok`.
async fn serve(tls: &ServerTls) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let acceptor = tls.acceptor();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(mut stream) = acceptor.accept(tcp).await {
                    let mut byte = [0u8; 1];
                    if stream.read_exact(&mut byte).await.is_ok() {
                        let _ = stream.write_all(b"ok").await;
                    }
                }
            });
        }
    });
    addr
}

/// Whether a client that trusts only `trusted` completes a round trip with `addr`.
async fn handshake(addr: std::net::SocketAddr, trusted: &SelfSigned) -> bool {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(trusted.cert_der.clone()).expect("root");
    let config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(addr).await.expect("connect");
    let name = ServerName::try_from("localhost").expect("name");
    let Ok(mut stream) = connector.connect(name, tcp).await else {
        return false;
    };
    let mut answer = [0u8; 2];
    stream.write_all(b"?").await.is_ok()
        && stream.read_exact(&mut answer).await.is_ok()
        && &answer == b"ok"
}

fn write_pair(dir: &Path, cert: &SelfSigned, key_of: &SelfSigned) {
    std::fs::write(dir.join("tls.crt"), &cert.cert_pem).expect("tls.crt");
    std::fs::write(dir.join("tls.key"), &key_of.key_pem).expect("tls.key");
}

#[tokio::test]
async fn a_renewed_certificate_serves_after_reload_and_a_broken_one_never_does() {
    let (old, renewed) = (SelfSigned::generate(), SelfSigned::generate());
    let dir = old.write_secret_dir();
    let tls = ServerTls::new(&ServeTls::Files(dir.clone()), &[b"h2"])
        .expect("loads")
        .expect("TLS on");
    assert_eq!(tls.config().alpn_protocols, [b"h2".to_vec()]);
    let addr = serve(&tls).await;
    assert!(handshake(addr, &old).await);
    assert!(!tls.reload().expect("unchanged files"), "nothing changed");

    write_pair(&dir, &renewed, &renewed);
    assert!(tls.reload().expect("the renewed pair loads"));
    assert!(handshake(addr, &renewed).await);
    assert!(!handshake(addr, &old).await, "the old certificate is gone");

    // A key that does not match the certificate, then a key that is not PEM: refused, and
    // the renewed pair keeps serving.
    write_pair(&dir, &renewed, &old);
    let error = tls.reload().unwrap_err().to_string();
    assert!(error.contains("tls.key"), "{error}");
    std::fs::write(dir.join("tls.key"), "not a key").expect("write");
    assert!(tls.reload().is_err());
    assert!(handshake(addr, &renewed).await);
    test_support::tls::remove_secret_dir(&dir);
}

#[tokio::test]
async fn the_watch_task_picks_up_a_renewal() {
    let (old, renewed) = (SelfSigned::generate(), SelfSigned::generate());
    let dir = old.write_secret_dir();
    let tls = ServerTls::new(&ServeTls::Files(dir.clone()), &[])
        .expect("loads")
        .expect("TLS on");
    let addr = serve(&tls).await;
    let task = tls
        .watch(Duration::from_millis(20))
        .expect("files are watched");
    write_pair(&dir, &renewed, &renewed);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !handshake(addr, &renewed).await {
        assert!(
            std::time::Instant::now() < deadline,
            "the renewal is served"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    task.abort();
    test_support::tls::remove_secret_dir(&dir);
}

#[test]
fn missing_files_name_the_path_and_off_is_plain() {
    let error = ServerTls::new(&ServeTls::Files("/nonexistent/certs".into()), &[]).unwrap_err();
    assert!(
        error.to_string().contains("/nonexistent/certs/tls.crt"),
        "{error}"
    );
    assert!(ServerTls::new(&ServeTls::Off, &[]).expect("off").is_none());
    let generated = ServerTls::new(&ServeTls::SelfSigned, &[]).expect("generated");
    assert!(
        generated
            .expect("TLS on")
            .watch(Duration::from_secs(1))
            .is_none()
    );
}
