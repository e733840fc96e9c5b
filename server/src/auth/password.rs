//! Password hashing with argon2id, always off the async runtime (it is deliberately slow), and
//! through a bounded pool: at most `auth.hash_concurrency` hashes at once and a short queue, so
//! a flood of sign-ins costs the attacker time, not the server its memory and every core.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use rand::RngCore;
use tokio::sync::Semaphore;

/// The pool is per process; the first server to start sizes it.
static POOL: OnceLock<Pool> = OnceLock::new();

struct Pool {
    slots: Semaphore,
    waiting: AtomicUsize,
    max_waiting: usize,
}

/// How long a hash may wait for a slot before the caller is told the server is busy.
const MAX_WAIT: Duration = Duration::from_secs(10);

/// Sizes the pool (at startup; later calls change nothing).
pub fn set_concurrency(n: usize) {
    let n = n.max(1);
    let _ = POOL.set(Pool {
        slots: Semaphore::new(n),
        waiting: AtomicUsize::new(0),
        max_waiting: n * 8,
    });
}

fn pool() -> &'static Pool {
    POOL.get_or_init(|| Pool {
        slots: Semaphore::new(2),
        waiting: AtomicUsize::new(0),
        max_waiting: 16,
    })
}

/// Too many hashes are queued already: answer "busy, try again" instead of queueing more.
#[derive(Debug, thiserror::Error)]
#[error("the server is busy checking other passwords; try again in a few seconds")]
pub struct Busy;

/// Runs `f` on a blocking thread once a pool slot is free.
async fn in_pool<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, Busy> {
    let pool = pool();
    if pool.waiting.fetch_add(1, Ordering::SeqCst) >= pool.max_waiting {
        pool.waiting.fetch_sub(1, Ordering::SeqCst);
        return Err(Busy);
    }
    let permit = tokio::time::timeout(MAX_WAIT, pool.slots.acquire()).await;
    pool.waiting.fetch_sub(1, Ordering::SeqCst);
    let Ok(Ok(_permit)) = permit else { return Err(Busy) };
    tokio::task::spawn_blocking(f).await.map_err(|_| Busy)
}

/// Hashes a password on a blocking thread.
pub async fn hash(password: String) -> anyhow::Result<String> {
    in_pool(move || hash_blocking(&password)).await?
}

pub fn hash_blocking(password: &str) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("hashing the password failed: {e}"))
}

/// Verifies on a blocking thread. With no stored hash it still does the same work, so the
/// response time does not reveal whether the user exists.
pub async fn verify(password: String, stored: Option<String>) -> bool {
    try_verify(password, stored).await.unwrap_or(false)
}

/// Like [`verify`], saying when the pool is too busy to try.
pub async fn try_verify(password: String, stored: Option<String>) -> Result<bool, Busy> {
    in_pool(move || {
        let stored = stored.unwrap_or_else(|| dummy_hash().to_string());
        match PasswordHash::new(&stored) {
            Ok(parsed) => Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok(),
            Err(_) => false,
        }
    })
    .await
}

/// An argon2id hash of a random string nobody knows, made once per process.
fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| hash_blocking(&generate_one_time()).unwrap_or_default())
}

/// A random password for first-run admins and resets: 20 characters from an unambiguous set.
pub fn generate_one_time() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
    let mut bytes = [0_u8; 20];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    bytes.iter().map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hash_verifies_only_its_own_password() {
        let h = hash("correct horse battery".into()).await.expect("hash");
        assert!(h.starts_with("$argon2id$"));
        assert!(verify("correct horse battery".into(), Some(h.clone())).await);
        assert!(!verify("wrong horse battery".into(), Some(h)).await);
        assert!(!verify("anything".into(), None).await);
    }

    #[test]
    fn one_time_passwords_differ() {
        assert_ne!(generate_one_time(), generate_one_time());
        assert_eq!(generate_one_time().len(), 20);
    }
}
