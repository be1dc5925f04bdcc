//! TLS on a server's listen port, shared by the EPP (ext_proc) and the P/D sidecar.
//!
//! [`ServeTls`] is what the flags ask for: nothing, a certificate generated at start-up, or
//! the `tls.crt`/`tls.key` of a mounted `kubernetes.io/tls` Secret. Mounted files are served
//! through a resolver that [`ServerTls::reload`] (or the task [`ServerTls::watch`] starts)
//! swaps when the files change, so cert-manager's renewals reach new handshakes without a
//! restart; a pair that does not load keeps the old one serving. One crypto provider, ring.

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

/// What the listen port serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServeTls {
    /// Plain TCP.
    Off,
    /// A certificate for `localhost` generated at start-up (upstream's default).
    SelfSigned,
    /// `tls.crt` (the chain) and `tls.key` in this directory.
    Files(PathBuf),
}

/// A TLS setting that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {reason}")]
    File { path: String, reason: String },
    #[error("generating the self-signed certificate")]
    SelfSigned(#[source] rcgen::Error),
    #[error("TLS configuration")]
    Rustls(#[from] rustls::Error),
}

/// A client that has not finished its handshake by then is dropped.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a connection's handshake did not complete.
#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    #[error("TLS handshake failed: {0}")]
    Failed(#[source] std::io::Error),
    #[error("TLS handshake timed out after {HANDSHAKE_TIMEOUT:?}")]
    TimedOut,
}

/// The TLS handshake of one accepted connection, bounded by [`HANDSHAKE_TIMEOUT`]; callers
/// count the failures.
pub async fn handshake(
    acceptor: &tokio_rustls::TlsAcceptor,
    tcp: tokio::net::TcpStream,
) -> Result<tokio_rustls::server::TlsStream<tokio::net::TcpStream>, HandshakeError> {
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
        Ok(Ok(stream)) => Ok(stream),
        Ok(Err(error)) => Err(HandshakeError::Failed(error)),
        Err(_) => Err(HandshakeError::TimedOut),
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A listen port's TLS: the rustls config, and for mounted files their reloader.
#[derive(Clone)]
pub struct ServerTls {
    config: Arc<rustls::ServerConfig>,
    files: Option<Arc<FileCert>>,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTls")
            .field("files", &self.files.as_ref().map(|files| &files.dir))
            .finish_non_exhaustive()
    }
}

impl ServerTls {
    /// The config for `serve` with the ALPN protocols to offer; `None` for plain TCP.
    pub fn new(serve: &ServeTls, alpn: &[&[u8]]) -> Result<Option<ServerTls>, Error> {
        let builder = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_no_client_auth();
        let (mut config, files) = match serve {
            ServeTls::Off => return Ok(None),
            ServeTls::SelfSigned => {
                let generated = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()])
                    .map_err(Error::SelfSigned)?;
                let key = PrivateKeyDer::Pkcs8(generated.signing_key.serialize_der().into());
                (
                    builder.with_single_cert(vec![generated.cert.der().clone()], key)?,
                    None,
                )
            }
            ServeTls::Files(dir) => {
                let files = Arc::new(FileCert::load(dir)?);
                (builder.with_cert_resolver(files.clone()), Some(files))
            }
        };
        config.alpn_protocols = alpn.iter().map(|protocol| protocol.to_vec()).collect();
        Ok(Some(ServerTls {
            config: Arc::new(config),
            files,
        }))
    }

    pub fn config(&self) -> Arc<rustls::ServerConfig> {
        Arc::clone(&self.config)
    }

    pub fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        tokio_rustls::TlsAcceptor::from(self.config())
    }

    /// Re-reads the mounted pair: `Ok(true)` when it changed and now serves, `Ok(false)` when
    /// it is unchanged (or nothing is mounted), an error when the new pair does not load
    /// (the old one keeps serving).
    pub fn reload(&self) -> Result<bool, Error> {
        match &self.files {
            Some(files) => files.reload(),
            None => Ok(false),
        }
    }

    /// Calls [`ServerTls::reload`] every `every` on the current runtime, logging each change
    /// and failure; `None` when nothing is mounted.
    pub fn watch(&self, every: Duration) -> Option<tokio::task::JoinHandle<()>> {
        let files = self.files.clone()?;
        Some(tokio::spawn(async move {
            let mut ticker = tokio::time::interval(every.max(Duration::from_millis(10)));
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticker.tick().await;
            loop {
                ticker.tick().await;
                match files.reload() {
                    Ok(true) => {
                        tracing::info!(dir = %files.dir.display(), "TLS certificate reloaded.");
                    }
                    Ok(false) => {}
                    Err(error) => {
                        tracing::warn!(%error, "TLS certificate not reloaded; the previous one keeps serving.");
                    }
                }
            }
        }))
    }
}

/// A mounted pair behind a swappable key.
struct FileCert {
    dir: PathBuf,
    provider: Arc<CryptoProvider>,
    /// The files' bytes the current key came from, to notice a change.
    current: parking_lot::RwLock<(Vec<u8>, Vec<u8>, Arc<CertifiedKey>)>,
}

impl std::fmt::Debug for FileCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileCert").field("dir", &self.dir).finish()
    }
}

impl FileCert {
    fn load(dir: &Path) -> Result<FileCert, Error> {
        let provider = provider();
        let (cert_pem, key_pem) = read_files(dir)?;
        let key = certified_key(&provider, dir, &cert_pem, &key_pem)?;
        Ok(FileCert {
            dir: dir.to_path_buf(),
            provider,
            current: parking_lot::RwLock::new((cert_pem, key_pem, key)),
        })
    }

    fn reload(&self) -> Result<bool, Error> {
        let (cert_pem, key_pem) = read_files(&self.dir)?;
        {
            let current = self.current.read();
            if current.0 == cert_pem && current.1 == key_pem {
                return Ok(false);
            }
        }
        let key = certified_key(&self.provider, &self.dir, &cert_pem, &key_pem)?;
        *self.current.write() = (cert_pem, key_pem, key);
        Ok(true)
    }
}

impl ResolvesServerCert for FileCert {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(&self.current.read().2))
    }
}

fn read_files(dir: &Path) -> Result<(Vec<u8>, Vec<u8>), Error> {
    let read = |name: &str| {
        let path = dir.join(name);
        std::fs::read(&path).map_err(|error| Error::File {
            path: path.display().to_string(),
            reason: error.to_string(),
        })
    };
    Ok((read("tls.crt")?, read("tls.key")?))
}

/// The chain and key of `tls.crt` and `tls.key`, checked to belong together.
fn certified_key(
    provider: &CryptoProvider,
    dir: &Path,
    cert_pem: &[u8],
    key_pem: &[u8],
) -> Result<Arc<CertifiedKey>, Error> {
    let file_error = |name: &str, reason: String| Error::File {
        path: dir.join(name).display().to_string(),
        reason,
    };
    let certs = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| file_error("tls.crt", error.to_string()))?;
    if certs.is_empty() {
        return Err(file_error(
            "tls.crt",
            "no certificate in the file".to_owned(),
        ));
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem)
        .map_err(|error| file_error("tls.key", error.to_string()))?;
    let key = CertifiedKey::from_der(certs, key, provider)
        .map_err(|error| file_error("tls.key", error.to_string()))?;
    Ok(Arc::new(key))
}
