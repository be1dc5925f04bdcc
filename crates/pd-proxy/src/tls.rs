//! TLS for the sidecar: serving on the listen port (`--secure-proxy`, a mounted `tls.crt` and
//! `tls.key` or a certificate generated at start-up) and to each upstream stage
//! (`--enable-tls prefiller,decoder`, checked against the system's roots unless
//! `--tls-insecure-skip-verify` names the stage). One crypto provider, ring, for both.

use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

use crate::config::{ServeTls, UpstreamTls};

/// A TLS setting that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{path}: {reason}")]
    File { path: String, reason: String },
    #[error("generating the self-signed certificate")]
    SelfSigned(#[source] rcgen::Error),
    #[error("TLS configuration")]
    Rustls(#[from] rustls::Error),
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The listen port's server configuration, `None` for plain HTTP.
pub(crate) fn server_config(
    serve: &ServeTls,
) -> Result<Option<Arc<rustls::ServerConfig>>, TlsError> {
    let (certs, key) = match serve {
        ServeTls::Off => return Ok(None),
        ServeTls::SelfSigned => {
            let generated = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()])
                .map_err(TlsError::SelfSigned)?;
            let key = PrivateKeyDer::Pkcs8(generated.signing_key.serialize_der().into());
            (vec![generated.cert.der().clone()], key)
        }
        ServeTls::Files(dir) => read_pair(dir)?,
    };
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Some(Arc::new(config)))
}

/// `tls.crt` (the chain) and `tls.key` from a Secret mounted at `dir`.
fn read_pair(
    dir: &Path,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsError> {
    let file_error = |path: &Path, reason: String| TlsError::File {
        path: path.display().to_string(),
        reason,
    };
    let cert_path = dir.join("tls.crt");
    let certs = CertificateDer::pem_file_iter(&cert_path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|error| file_error(&cert_path, error.to_string()))?;
    if certs.is_empty() {
        return Err(file_error(
            &cert_path,
            "no certificate in the file".to_owned(),
        ));
    }
    let key_path = dir.join("tls.key");
    let key = PrivateKeyDer::from_pem_file(&key_path)
        .map_err(|error| file_error(&key_path, error.to_string()))?;
    Ok((certs, key))
}

/// The client configuration of one upstream stage (also used, unread, for plain stages).
pub(crate) fn client_config(mode: UpstreamTls) -> Result<rustls::ClientConfig, TlsError> {
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?;
    let config = match mode {
        UpstreamTls::Unverified => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider())))
            .with_no_client_auth(),
        UpstreamTls::Off | UpstreamTls::Verified => {
            let mut roots = rustls::RootCertStore::empty();
            if mode == UpstreamTls::Verified {
                let native = rustls_native_certs::load_native_certs();
                for error in &native.errors {
                    tracing::warn!(%error, "Loading a system root certificate failed.");
                }
                let (added, _) = roots.add_parsable_certificates(native.certs);
                if added == 0 {
                    tracing::warn!(
                        "No system root certificates: verified TLS upstreams will fail."
                    );
                }
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
    };
    Ok(config)
}

/// Accepts any server certificate but still checks the handshake signatures, as Go's
/// `InsecureSkipVerify`.
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
