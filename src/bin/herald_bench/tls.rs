//! `--tls`: the receiver's certificate and the CA herald is told to trust. Made once with
//! openssl (a CA, and a leaf for IP 127.0.0.1 and localhost that it signed; P-256, valid
//! 2020 to 2120) and built in, so a run needs neither a tool nor a network. They protect
//! nothing but a benchmark on 127.0.0.1: the private key is public on purpose.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// A CA and a leaf it signed, the shape webpki verifies: it refuses a CA certificate as the
/// server's own, and one self-signed certificate as both anchor and leaf is a corner case.
const CA_PEM: &[u8] = include_bytes!("tls/ca.pem");
/// The leaf, then the CA.
const CERT_PEM: &[u8] = include_bytes!("tls/cert.pem");
/// PKCS#8.
const KEY_PEM: &[u8] = include_bytes!("tls/key.pem");

/// What the receiver serves HTTPS with.
pub fn server_config() -> Result<rustls::ServerConfig, String> {
    let certs = CertificateDer::pem_slice_iter(CERT_PEM)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("the built-in certificate: {e}"))?;
    let key = PrivateKeyDer::from_pem_slice(KEY_PEM).map_err(|e| format!("the built-in key: {e}"))?;
    // Named, not the process-wide default: the unit tests run without the one the bench installs.
    rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .and_then(|builder| builder.with_no_client_auth().with_single_cert(certs, key))
        .map_err(|e| format!("the receiver's TLS configuration: {e}"))
}

/// Writes the CA into `dir` for herald's `security.trusted_ca_file`.
pub fn write_ca(dir: &Path) -> Result<PathBuf, String> {
    let path = dir.join("bench-ca.pem");
    std::fs::write(&path, CA_PEM).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    use rustls::client::WebPkiServerVerifier;
    use rustls::client::danger::ServerCertVerifier;
    use rustls::pki_types::{ServerName, UnixTime};

    #[test]
    fn builtin_certificate_and_key_make_a_server_config() {
        server_config().unwrap();
    }

    /// What herald's client will check: the leaf chains to the CA for https://127.0.0.1.
    #[test]
    fn the_ca_vouches_for_the_leaf_on_127_0_0_1() {
        let mut roots = rustls::RootCertStore::empty();
        for ca in CertificateDer::pem_slice_iter(CA_PEM) {
            roots.add(ca.unwrap()).unwrap();
        }
        assert_eq!(roots.len(), 1);
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier =
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider).build().unwrap();
        let chain: Vec<CertificateDer<'static>> =
            CertificateDer::pem_slice_iter(CERT_PEM).map(Result::unwrap).collect();
        for host in ["127.0.0.1", "localhost"] {
            let name = ServerName::try_from(host).unwrap();
            verifier.verify_server_cert(&chain[0], &chain[1..], &name, &[], UnixTime::now()).unwrap();
        }
    }
}
