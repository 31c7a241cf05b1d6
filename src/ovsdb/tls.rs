//! TLS for `ssl:` remotes: rustls with the ring provider, PEM files as OVS's
//! tools take them (`--private-key`, `--certificate`, `--ca-cert`), mutual
//! TLS, and a server-certificate check that verifies the whole chain against
//! the given CA but not the host name: `ovs-pki` certificates carry a SAN of
//! `DNS:ovsdb id:<uuid>` that matches no address, and OVS itself does not
//! check names either.

use std::path::Path;
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use super::Error;

fn tls_err(path: &Path, what: &str, e: impl std::fmt::Display) -> Error {
    Error::Tls(format!("{what} {}: {e}", path.display()))
}

/// Builds a client configuration from PEM files.
pub fn client_config(private_key: &Path, certificate: &Path, ca_cert: &Path) -> Result<Arc<ClientConfig>, Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    let cas = CertificateDer::pem_file_iter(ca_cert)
        .map_err(|e| tls_err(ca_cert, "CA certificate", e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| tls_err(ca_cert, "CA certificate", e))?;
    if cas.is_empty() {
        return Err(tls_err(ca_cert, "CA certificate", "no certificate in file"));
    }
    for ca in cas {
        roots.add(ca).map_err(|e| tls_err(ca_cert, "CA certificate", e))?;
    }
    let chain = CertificateDer::pem_file_iter(certificate)
        .map_err(|e| tls_err(certificate, "certificate", e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| tls_err(certificate, "certificate", e))?;
    if chain.is_empty() {
        return Err(tls_err(certificate, "certificate", "no certificate in file"));
    }
    let key = PrivateKeyDer::from_pem_file(private_key).map_err(|e| tls_err(private_key, "private key", e))?;
    let inner = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| Error::Tls(format!("CA certificate {}: {e}", ca_cert.display())))?;
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Tls(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(IgnoreName(inner)))
        .with_client_auth_cert(chain, key)
        .map_err(|e| {
            Error::Tls(format!("certificate {} with key {}: {e}", certificate.display(), private_key.display()))
        })?;
    Ok(Arc::new(config))
}

/// Verifies the chain with webpki; accepts a name mismatch only.
#[derive(Debug)]
struct IgnoreName(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for IgnoreName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.0.verify_server_cert(end_entity, intermediates, server_name, ocsp, now) {
            // webpki checks the chain before the name, so reaching a name
            // error means the chain is good.
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}
