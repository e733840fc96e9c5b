//! API token secrets: 32 random bytes, shown once; only their SHA-256 is stored. (A slow hash
//! is unnecessary for 256 bits of entropy and would slow every API request.)

use base64::Engine as _;
use rand::RngCore;
use sha2::{Digest, Sha256};

pub const TOKEN_PREFIX: &str = "swy_";

pub struct Generated {
    pub secret: String,
    pub hash: String,
    pub prefix: String,
}

pub fn generate() -> Generated {
    let mut bytes = [0_u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let secret =
        format!("{TOKEN_PREFIX}{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes));
    let prefix = secret.chars().take(TOKEN_PREFIX.len() + 6).collect();
    Generated { hash: hash(&secret), secret, prefix }
}

pub fn hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_are_unique_and_hash_to_what_is_stored() {
        let a = generate();
        let b = generate();
        assert_ne!(a.secret, b.secret);
        assert_eq!(hash(&a.secret), a.hash);
        assert!(a.secret.starts_with(TOKEN_PREFIX) && a.secret.starts_with(&a.prefix));
    }
}
