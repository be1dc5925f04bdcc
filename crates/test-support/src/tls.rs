//! TLS for tests: a self-signed certificate (as a cluster's cert-manager or a Secret would
//! mount it), and a TLS front that terminates TLS on loopback and forwards the plaintext to a
//! server that speaks only HTTP, so a client's TLS is tested against a real handshake.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// A certificate for `localhost` and 127.0.0.1 with its key.
pub struct SelfSigned {
    pub cert_pem: String,
    pub key_pem: String,
    pub cert_der: CertificateDer<'static>,
    key_der: Vec<u8>,
}

impl SelfSigned {
    pub fn generate() -> SelfSigned {
        let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
        let generated = rcgen::generate_simple_self_signed(names).expect("a certificate");
        SelfSigned {
            cert_pem: generated.cert.pem(),
            key_pem: generated.signing_key.serialize_pem(),
            cert_der: generated.cert.der().clone(),
            key_der: generated.signing_key.serialize_der(),
        }
    }

    /// Writes `tls.crt` and `tls.key` into a fresh directory, as a mounted Secret.
    pub fn write_secret_dir(&self) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("test-tls-{}-{}", std::process::id(), rand_suffix()));
        std::fs::create_dir_all(&dir).expect("secret dir");
        std::fs::write(dir.join("tls.crt"), &self.cert_pem).expect("tls.crt");
        std::fs::write(dir.join("tls.key"), &self.key_pem).expect("tls.key");
        dir
    }

    fn server_config(&self) -> Arc<rustls::ServerConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_no_client_auth()
            .with_single_cert(
                vec![self.cert_der.clone()],
                PrivateKeyDer::Pkcs8(self.key_der.clone().into()),
            )
            .expect("server config");
        Arc::new(config)
    }
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// Removes a directory written by [`SelfSigned::write_secret_dir`].
pub fn remove_secret_dir(dir: &Path) {
    let _ = std::fs::remove_dir_all(dir);
}

/// Terminates TLS on an ephemeral loopback port and forwards each connection's plaintext to
/// `backend`. Dropping it stops accepting.
pub struct TlsFront {
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TlsFront {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TlsFront {
    pub async fn start(certificate: &SelfSigned, backend: SocketAddr) -> TlsFront {
        let acceptor = tokio_rustls::TlsAcceptor::from(certificate.server_config());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the TLS front");
        let addr = listener.local_addr().expect("local address");
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(stream).await else {
                        return;
                    };
                    let Ok(mut plain) = tokio::net::TcpStream::connect(backend).await else {
                        return;
                    };
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
                });
            }
        });
        TlsFront { addr, task }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}
