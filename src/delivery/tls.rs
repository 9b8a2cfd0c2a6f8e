//! Certificate authorities delivery trusts besides the webpki roots
//! (`security.trusted_ca_file`): a private CA, or a test receiver's own.

use std::sync::Arc;

use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

const SETTING: &str = "security.trusted_ca_file";

/// Read and checked once, when the settings are loaded; every client built later shares them.
#[derive(Clone, Default)]
pub struct TrustedCas(Arc<Vec<CertificateDer<'static>>>);

impl std::fmt::Debug for TrustedCas {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TrustedCas({} certificate(s))", self.0.len())
    }
}

impl TrustedCas {
    /// An empty path adds nothing. A file that cannot be read, holds no certificate, or one
    /// that cannot serve as a trust anchor is an error: herald must not start and then fail
    /// every HTTPS delivery to the receivers it was meant to trust.
    pub fn load(path: &str) -> Result<Self, String> {
        if path.is_empty() {
            return Ok(Self::default());
        }
        let invalid = |what: String| format!("invalid setting: {SETTING} ({path}): {what}");
        let certs = CertificateDer::pem_file_iter(path)
            .map_err(|e| invalid(format!("cannot open it: {e}")))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| invalid(format!("cannot read it as PEM: {e}")))?;
        if certs.is_empty() {
            return Err(invalid("it holds no PEM certificate (-----BEGIN CERTIFICATE-----)".into()));
        }
        let mut roots = RootCertStore::empty();
        for (n, cert) in certs.iter().enumerate() {
            roots
                .add(cert.clone())
                .map_err(|e| invalid(format!("certificate {} cannot be a trust anchor: {e}", n + 1)))?;
        }
        Ok(Self(Arc::new(certs)))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// What awc builds by default (webpki roots, h2 and http/1.1 offered), plus these CAs.
    /// Uses the process-wide crypto provider, as awc's default does.
    pub fn client_config(&self) -> rustls::ClientConfig {
        let mut roots = actix_tls::connect::rustls_0_23::webpki_roots_cert_store();
        // Every one was accepted by `load`.
        roots.add_parsable_certificates(self.0.iter().cloned());
        let mut config = rustls::ClientConfig::builder().with_root_certificates(roots).with_no_client_auth();
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        config
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// herald-bench's test CA: a real CA certificate (CA:TRUE), P-256, valid until 2120.
    const BENCH_CA: &str = include_str!("../bin/herald_bench/tls/ca.pem");

    fn file(dir: &tempfile::TempDir, name: &str, text: &str) -> String {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    }

    #[test]
    fn empty_path_trusts_nothing_more() {
        assert!(TrustedCas::load("").unwrap().is_empty());
    }

    #[test]
    fn reads_every_certificate_of_the_file() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(TrustedCas::load(&file(&dir, "one.pem", BENCH_CA)).unwrap().len(), 1);
        let two = format!("# a comment\n{BENCH_CA}\n{BENCH_CA}");
        assert_eq!(TrustedCas::load(&file(&dir, "two.pem", &two)).unwrap().len(), 2);
    }

    #[test]
    fn unreadable_or_certificate_less_files_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem").display().to_string();
        let e = TrustedCas::load(&missing).unwrap_err();
        assert!(e.contains("security.trusted_ca_file") && e.contains("missing.pem"), "{e}");
        let e = TrustedCas::load(&file(&dir, "empty.pem", "")).unwrap_err();
        assert!(e.contains("no PEM certificate"), "{e}");
        let key_only = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
        let e = TrustedCas::load(&file(&dir, "key.pem", key_only)).unwrap_err();
        assert!(e.contains("no PEM certificate"), "{e}");
        let garbage = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        assert!(TrustedCas::load(&file(&dir, "bad.pem", garbage)).is_err());
    }
}
