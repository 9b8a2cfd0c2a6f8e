//! Secrets at rest: endpoint signing secrets (current and previous), source secrets and
//! endpoint header values are stored encrypted with XChaCha20-Poly1305 (RustCrypto).
//!
//! Keys come from `security.encryption_keys` (comma-separated base64 of 32 bytes): the first
//! encrypts, every one decrypts. Without the setting, herald makes `herald.key` (mode 0600)
//! in its data directory on first start and uses it. A stored value is
//! `enc1:<key id>:<base64 of nonce and ciphertext>`; the key id is the first 8 hex digits of
//! the key's SHA-256, so each ciphertext names the key that opens it. What a value is for
//! (an endpoint secret, a source secret, header values, a stored answer) is bound in as
//! associated data, so a ciphertext copied into another column does not open.

use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};

/// How every stored value that is encrypted begins.
pub const PREFIX: &str = "enc1:";
const KEY_FILE: &str = "herald.key";
/// The setting named when keys are missing or wrong.
pub const SETTING: &str = "security.encryption_keys (HERALD_SECURITY__ENCRYPTION_KEYS)";

/// What a value is, bound into its ciphertext.
#[derive(Debug, Clone, Copy)]
pub enum Purpose {
    EndpointSecret,
    EndpointHeaders,
    SourceSecret,
    StoredAnswer,
}

impl Purpose {
    fn aad(self) -> &'static [u8] {
        match self {
            Purpose::EndpointSecret => b"herald endpoint secret",
            Purpose::EndpointHeaders => b"herald endpoint headers",
            Purpose::SourceSecret => b"herald source secret",
            Purpose::StoredAnswer => b"herald stored answer",
        }
    }
}

struct Key {
    id: String,
    cipher: XChaCha20Poly1305,
}

/// The node's keys: the first encrypts, all decrypt.
pub struct Cipher {
    keys: Vec<Key>,
}

impl std::fmt::Debug for Cipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ids: Vec<&str> = self.keys.iter().map(|k| k.id.as_str()).collect();
        write!(f, "Cipher({ids:?})")
    }
}

/// A new key, as `herald keygen` prints it.
pub fn generate_key() -> String {
    B64.encode(crate::ids::random::<32>())
}

fn key_id(bytes: &[u8]) -> String {
    crate::ids::sha256_hex(bytes)[..8].to_string()
}

impl Cipher {
    /// From the setting's comma-separated base64 keys.
    pub fn from_keys(list: &str) -> Result<Self, String> {
        let mut keys = Vec::new();
        for (i, text) in list.split(',').map(str::trim).filter(|s| !s.is_empty()).enumerate() {
            let bytes = B64.decode(text).ok().filter(|b| b.len() == 32).ok_or_else(|| {
                format!("{SETTING}: key {} is not the base64 of 32 bytes (herald keygen makes one)", i + 1)
            })?;
            let cipher = XChaCha20Poly1305::new_from_slice(&bytes).map_err(|e| format!("{SETTING}: {e}"))?;
            keys.push(Key { id: key_id(&bytes), cipher });
        }
        if keys.is_empty() {
            return Err(format!("{SETTING}: no key given"));
        }
        Ok(Self { keys })
    }

    /// The configured keys or, when there are none, the key file in `data_dir`, made on
    /// first use (readable by its owner only).
    pub fn load(configured: &str, data_dir: &Path) -> Result<Self, String> {
        if !configured.trim().is_empty() {
            return Self::from_keys(configured);
        }
        let path: PathBuf = data_dir.join(KEY_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => Self::from_keys(text.trim()).map_err(|e| format!("{}: {e}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir_all(data_dir)
                    .map_err(|e| format!("cannot create {}: {e}", data_dir.display()))?;
                let key = generate_key();
                match write_private(&path, &format!("{key}\n")) {
                    Ok(()) => {
                        log::info!(
                            "made a new encryption key in {} (back it up with the database)",
                            path.display()
                        );
                        Self::from_keys(&key)
                    }
                    // Another node starting in the same directory made it first: use theirs.
                    Err(_) if path.exists() => Self::read_when_written(&path),
                    Err(e) => Err(e),
                }
            }
            Err(e) => Err(format!("cannot read {}: {e}", path.display())),
        }
    }

    /// A key file another process is writing: read once it holds a key (at most 1 s).
    fn read_when_written(path: &Path) -> Result<Self, String> {
        for _ in 0..50 {
            if let Ok(text) = std::fs::read_to_string(path)
                && !text.trim().is_empty()
            {
                return Self::from_keys(text.trim()).map_err(|e| format!("{}: {e}", path.display()));
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        Err(format!("{} stays empty", path.display()))
    }

    pub fn key_ids(&self) -> Vec<&str> {
        self.keys.iter().map(|k| k.id.as_str()).collect()
    }

    /// Encrypts under the first key.
    pub fn seal(&self, purpose: Purpose, plaintext: &str) -> String {
        let key = &self.keys[0];
        let nonce_bytes = crate::ids::random::<24>();
        let nonce = XNonce::from(nonce_bytes);
        let sealed = key
            .cipher
            .encrypt(&nonce, Payload { msg: plaintext.as_bytes(), aad: purpose.aad() })
            .expect("encrypting in memory does not fail");
        let mut blob = nonce_bytes.to_vec();
        blob.extend_from_slice(&sealed);
        format!("{PREFIX}{}:{}", key.id, B64.encode(blob))
    }

    /// Decrypts a stored value with the key it names.
    pub fn open(&self, purpose: Purpose, stored: &str) -> Result<String, String> {
        let rest = stored.strip_prefix(PREFIX).ok_or("not an encrypted value")?;
        let (id, body) = rest.split_once(':').ok_or("a malformed encrypted value")?;
        let key =
            self.keys.iter().find(|k| k.id == id).ok_or_else(|| {
                format!("encrypted with key {id}, which is not among the keys in {SETTING}")
            })?;
        let blob = B64.decode(body).map_err(|_| "a malformed encrypted value".to_string())?;
        if blob.len() < 24 {
            return Err("a malformed encrypted value".into());
        }
        let (nonce, sealed) = blob.split_at(24);
        let nonce = XNonce::try_from(nonce).map_err(|_| "a malformed encrypted value".to_string())?;
        let plain = key
            .cipher
            .decrypt(&nonce, Payload { msg: sealed, aad: purpose.aad() })
            .map_err(|_| format!("a value encrypted with key {id} does not open (damaged, or moved)"))?;
        String::from_utf8(plain).map_err(|_| "a decrypted value is not text".to_string())
    }

    /// Whether a stored value is encrypted (rather than plaintext from before encryption).
    pub fn is_sealed(stored: &str) -> bool {
        stored.starts_with(PREFIX)
    }

    /// Whether the value is sealed under the first key already.
    pub fn is_current(&self, stored: &str) -> bool {
        stored.strip_prefix(PREFIX).is_some_and(|rest| rest.starts_with(&format!("{}:", self.keys[0].id)))
    }

    /// A stored value as plaintext: decrypted, or as it is if it was never encrypted.
    pub fn reveal(&self, purpose: Purpose, stored: &str) -> Result<String, String> {
        if Self::is_sealed(stored) { self.open(purpose, stored) } else { Ok(stored.to_string()) }
    }
}

#[cfg(unix)]
fn write_private(path: &Path, text: &str) -> Result<(), String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    file.write_all(text.as_bytes()).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

#[cfg(not(unix))]
fn write_private(path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_with_their_key_and_purpose_only() {
        let (a, b) = (generate_key(), generate_key());
        let first = Cipher::from_keys(&a).unwrap();
        let sealed = first.seal(Purpose::EndpointSecret, "whsec_abc");
        assert!(!sealed.contains("whsec_abc"));
        assert_eq!(first.open(Purpose::EndpointSecret, &sealed).unwrap(), "whsec_abc");
        assert!(first.open(Purpose::SourceSecret, &sealed).is_err(), "bound to its purpose");
        assert_ne!(sealed, first.seal(Purpose::EndpointSecret, "whsec_abc"), "a fresh nonce each time");
        // A rotation: the new key first, the old one still opens what it sealed.
        let rotated = Cipher::from_keys(&format!("{b},{a}")).unwrap();
        assert_eq!(rotated.open(Purpose::EndpointSecret, &sealed).unwrap(), "whsec_abc");
        assert!(!rotated.is_current(&sealed) && first.is_current(&sealed));
        let only_b = Cipher::from_keys(&b).unwrap();
        assert!(only_b.open(Purpose::EndpointSecret, &sealed).unwrap_err().contains("not among the keys"));
        assert_eq!(first.reveal(Purpose::EndpointSecret, "plain").unwrap(), "plain");
    }

    #[test]
    fn bad_keys_are_refused_naming_the_setting() {
        assert!(Cipher::from_keys("").unwrap_err().contains("HERALD_SECURITY__ENCRYPTION_KEYS"));
        assert!(Cipher::from_keys("c2hvcnQ=").unwrap_err().contains("32 bytes"));
    }

    #[test]
    fn the_key_file_is_made_once_and_private() {
        let dir = tempfile::tempdir().unwrap();
        let made = Cipher::load("", dir.path()).unwrap();
        let again = Cipher::load("", dir.path()).unwrap();
        assert_eq!(made.key_ids(), again.key_ids());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(KEY_FILE)).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
