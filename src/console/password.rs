//! Console passwords: argon2id with the crate's default (OWASP) parameters and a random salt,
//! kept as a PHC string so the parameters travel with the hash.

use std::sync::LazyLock;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};

/// Shorter passwords are refused: the console shows people's consent history.
pub const MIN_LENGTH: usize = 12;

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("a password needs at least {MIN_LENGTH} characters")]
    TooShort,
    #[error("cannot hash the password: {0}")]
    Hash(String),
}

pub fn hash(password: &str) -> Result<String, PasswordError> {
    if password.chars().count() < MIN_LENGTH {
        return Err(PasswordError::TooShort);
    }
    let salt = SaltString::encode_b64(&rand::random::<[u8; 16]>())
        .map_err(|e| PasswordError::Hash(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| PasswordError::Hash(e.to_string()))
}

/// False for a wrong password and for a hash that cannot be read.
pub fn verify(stored: &str, password: &str) -> bool {
    PasswordHash::new(stored).is_ok_and(|h| {
        Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

/// Checked when the user name is unknown, so that answer takes as long as a wrong password
/// and the time does not tell which names exist.
pub fn verify_nobody(password: &str) {
    static NOBODY: LazyLock<String> =
        LazyLock::new(|| hash("no user has this password").unwrap_or_default());
    let _ = verify(&NOBODY, password);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_differ_by_salt() {
        let a = hash("doğru parola 123").unwrap();
        let b = hash("doğru parola 123").unwrap();
        assert!(a.starts_with("$argon2id$"), "{a}");
        assert_ne!(a, b, "each hash has its own salt");
        assert!(verify(&a, "doğru parola 123"));
        assert!(!verify(&a, "yanlış parola 123"));
        assert!(!verify("not a hash", "doğru parola 123"));
        assert!(matches!(hash("kısa"), Err(PasswordError::TooShort)));
    }
}
