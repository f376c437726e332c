//! Secrets at rest. Credentials are sealed with XChaCha20-Poly1305 (random
//! 24-byte nonces, so no nonce bookkeeping) under a 256-bit key taken from
//! `INLET_SECRET_KEY` (base64) or from `<data dir>/secret.key`, which is created
//! with mode 0600 on first start. Losing the key loses the credentials:
//! groups then need reconnecting, nothing else.

use anyhow::{Context, Result, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use std::path::Path;

const SEALED_PREFIX: &str = "v1:";
const NONCE_BYTES: usize = 24;

/// The key that seals credentials. Deliberately not `Debug`.
pub struct SecretKey(Key);

impl SecretKey {
    pub fn generate() -> SecretKey {
        SecretKey(XChaCha20Poly1305::generate_key(&mut OsRng))
    }

    pub fn from_base64(text: &str) -> Result<SecretKey> {
        let bytes = STANDARD.decode(text.trim()).context("the secret key is not base64")?;
        if bytes.len() != 32 {
            bail!("the secret key must be 32 bytes (44 base64 characters), got {} bytes", bytes.len());
        }
        let bytes: [u8; 32] = bytes.try_into().expect("length checked above");
        Ok(SecretKey(Key::from(bytes)))
    }

    /// The key from `INLET_SECRET_KEY` when set, else from `path`, which is
    /// created (readable by this user only) if it does not exist.
    pub fn load_or_create(from_env: Option<&str>, path: &Path) -> Result<SecretKey> {
        if let Some(key) = SecretKey::load(from_env, path)? {
            return Ok(key);
        }
        let key = SecretKey::generate();
        key.save_new(path)?;
        Ok(key)
    }

    /// The key from `INLET_SECRET_KEY` when set, else from `path`; `None`
    /// when neither exists.
    pub fn load(from_env: Option<&str>, path: &Path) -> Result<Option<SecretKey>> {
        if let Some(text) = from_env {
            return SecretKey::from_base64(text).context("INLET_SECRET_KEY").map(Some);
        }
        match std::fs::read_to_string(path) {
            Ok(text) => SecretKey::from_base64(&text).with_context(|| format!("key file {}", path.display())).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("reading key file {}", path.display())),
        }
    }

    /// Write this key to `path`, which must not exist, readable by this user only.
    pub fn save_new(&self, path: &Path) -> Result<()> {
        crate::private_files::write_new(path, STANDARD.encode(self.0).as_bytes()).context("creating the key file")?;
        tracing::warn!(path = %path.display(), "created a new secret key; back it up: without it, stored credentials cannot be read");
        Ok(())
    }

    /// Encrypt and authenticate `plaintext`: `v1:` + base64(nonce ‖ ciphertext).
    pub fn seal(&self, plaintext: &[u8]) -> String {
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let ciphertext =
            XChaCha20Poly1305::new(&self.0).encrypt(&nonce, plaintext).expect("encrypting into memory does not fail");
        let mut sealed = nonce.to_vec();
        sealed.extend_from_slice(&ciphertext);
        format!("{SEALED_PREFIX}{}", STANDARD.encode(sealed))
    }

    /// A tag of `text` for `purpose` that only the holder of the key can
    /// make: HMAC-SHA256 under the key, 128 bits in hex.
    pub fn tag(&self, purpose: &str, text: &str) -> String {
        use hmac::{Hmac, Mac};
        let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(&self.0).expect("HMAC takes a key of any length");
        mac.update(purpose.as_bytes());
        mac.update(&[0]);
        mac.update(text.as_bytes());
        hex::encode(&mac.finalize().into_bytes()[..16])
    }

    /// Reverse [`SecretKey::seal`]; fails on a wrong key or altered data.
    pub fn open(&self, sealed: &str) -> Result<Vec<u8>> {
        let encoded = sealed.strip_prefix(SEALED_PREFIX).context("the stored value is not sealed")?;
        let bytes = STANDARD.decode(encoded).context("the sealed value is not base64")?;
        if bytes.len() < NONCE_BYTES {
            bail!("the sealed value is too short");
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_BYTES);
        let nonce: [u8; NONCE_BYTES] = nonce.try_into().expect("split at the nonce length");
        XChaCha20Poly1305::new(&self.0).decrypt(&XNonce::from(nonce), ciphertext).map_err(|_| {
            anyhow::anyhow!("cannot decrypt: the secret key is not the one it was sealed with, or the data was altered")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_with_their_key_and_unaltered() {
        let key = SecretKey::generate();
        let sealed = key.seal(b"refresh-token-123");
        assert!(!sealed.contains("refresh-token-123"));
        assert_ne!(sealed, key.seal(b"refresh-token-123"), "a fresh nonce every time");
        assert_eq!(key.open(&sealed).unwrap(), b"refresh-token-123");
        assert!(SecretKey::generate().open(&sealed).is_err(), "another key cannot open it");
        let mut altered = sealed.clone().into_bytes();
        let last = altered.len() - 2;
        altered[last] = if altered[last] == b'A' { b'B' } else { b'A' };
        assert!(key.open(std::str::from_utf8(&altered).unwrap()).is_err(), "tampering is detected");
    }

    #[test]
    fn the_key_file_is_created_once_and_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret.key");
        let first = SecretKey::load_or_create(None, &path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let again = SecretKey::load_or_create(None, &path).unwrap();
        assert_eq!(again.open(&first.seal(b"x")).unwrap(), b"x", "the same key is read back");
        let from_env = SecretKey::load_or_create(Some(&STANDARD.encode([7u8; 32])), &path).unwrap();
        assert!(from_env.open(&first.seal(b"x")).is_err(), "INLET_SECRET_KEY wins over the file");
        assert!(SecretKey::from_base64("c2hvcnQ=").err().unwrap().to_string().contains("32 bytes"));
    }
}
