//! An in-memory sliding-window rate limit per key (a client IP), for public endpoints that
//! anyone can call without signing in (the status page's sign-up). It forgets everything at a
//! restart, which is fine for throttling; it never decides who someone is.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// At most this many keys are remembered; beyond it the oldest-seen keys are dropped first.
const MAX_KEYS: usize = 10_000;

pub struct Throttle {
    max: usize,
    per: Duration,
    hits: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl Throttle {
    pub fn new(max: usize, per: Duration) -> Self {
        Self { max: max.max(1), per, hits: Mutex::new(HashMap::new()) }
    }

    /// Counts a request from `key`: `Ok(())` if it is within the limit, else how long until
    /// the next one would be.
    pub fn check(&self, key: &str) -> Result<(), Duration> {
        self.check_at(key, Instant::now())
    }

    fn check_at(&self, key: &str, now: Instant) -> Result<(), Duration> {
        let mut hits = self.hits.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if hits.len() >= MAX_KEYS && !hits.contains_key(key) {
            hits.retain(|_, q| q.back().is_some_and(|t| now.duration_since(*t) < self.per));
            if hits.len() >= MAX_KEYS {
                return Err(self.per);
            }
        }
        let q = hits.entry(key.to_string()).or_default();
        while q.front().is_some_and(|t| now.duration_since(*t) >= self.per) {
            q.pop_front();
        }
        if q.len() >= self.max {
            let oldest = q.front().copied().unwrap_or(now);
            return Err(self.per.saturating_sub(now.duration_since(oldest)));
        }
        q.push_back(now);
        Ok(())
    }
}

/// Sign-in attempts being checked right now, per (account, client address) and per address.
/// Added to the failures already recorded *before* any password is hashed, so a burst of
/// parallel guesses is throttled at the limit instead of all being hashed; released when the
/// attempt's outcome is recorded.
#[derive(Default)]
pub struct InFlight {
    counts: Mutex<HashMap<String, i64>>,
}

/// One attempt's reservation; dropping it releases the counts.
pub struct Reservation<'a> {
    owner: &'a InFlight,
    keys: [String; 2],
}

impl InFlight {
    /// The key of an account tried from an address (user names compare case-insensitively).
    pub fn account_key(username: &str, ip: &str) -> String {
        format!("{}\u{0}{ip}", username.to_lowercase())
    }

    /// Reserves an attempt unless `recorded` failures plus attempts in flight reach a limit:
    /// `(key, recorded failures, limit)` for the account+address and for the address.
    pub fn reserve(&self, limits: [(String, i64, i64); 2]) -> Option<Reservation<'_>> {
        let mut counts = self.counts.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if limits.iter().any(|(key, recorded, limit)| {
            recorded + counts.get(key).copied().unwrap_or(0) >= *limit
        }) {
            return None;
        }
        for (key, ..) in &limits {
            *counts.entry(key.clone()).or_insert(0) += 1;
        }
        let [(a, ..), (b, ..)] = limits;
        Some(Reservation { owner: self, keys: [a, b] })
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        let mut counts =
            self.owner.counts.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        for key in &self.keys {
            if let Some(n) = counts.get_mut(key) {
                *n -= 1;
                if *n <= 0 {
                    counts.remove(key);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attempts_in_flight_count_against_the_limit_until_released() {
        let f = InFlight::default();
        let limits = |recorded| [("a".to_string(), recorded, 2), ("ip".to_string(), 0, 10)];
        let first = f.reserve(limits(1)).expect("1 recorded + 0 in flight < 2");
        assert!(f.reserve(limits(1)).is_none(), "1 recorded + 1 in flight reaches 2");
        drop(first);
        assert!(f.reserve(limits(1)).is_some(), "released");
        assert_eq!(
            InFlight::account_key("Ada", "1.2.3.4"),
            InFlight::account_key("ada", "1.2.3.4")
        );
    }

    #[test]
    fn a_key_over_the_limit_waits_until_its_oldest_request_leaves_the_window() {
        let t = Throttle::new(2, Duration::from_secs(60));
        let t0 = Instant::now();
        assert!(t.check_at("a", t0).is_ok());
        assert!(t.check_at("a", t0 + Duration::from_secs(1)).is_ok());
        let wait = t.check_at("a", t0 + Duration::from_secs(10)).expect_err("third is refused");
        assert_eq!(wait, Duration::from_secs(50));
        assert!(t.check_at("b", t0 + Duration::from_secs(10)).is_ok(), "keys are independent");
        assert!(t.check_at("a", t0 + Duration::from_secs(61)).is_ok());
    }
}
