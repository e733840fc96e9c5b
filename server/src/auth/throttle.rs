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

#[cfg(test)]
mod tests {
    use super::*;

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
