//! The engine's "now". In a server it is the system clock; an engine test can make it follow
//! tokio's clock instead, so that a paused tokio clock (`tokio::time::pause` and `advance`)
//! moves the time the engine judges bakes, gate deadlines and timeouts by, and an hour can pass
//! in a test without anybody waiting for it.

use chrono::{DateTime, Utc};

#[derive(Debug, Clone, Copy, Default)]
pub enum Clock {
    /// `Utc::now()`.
    #[default]
    System,
    /// The wall time when it was made, plus the time tokio's clock has moved since.
    Tokio { wall: DateTime<Utc>, at: tokio::time::Instant },
}

impl Clock {
    /// A clock that follows tokio's from now on (call it inside the runtime).
    pub fn following_tokio() -> Self {
        Clock::Tokio { wall: Utc::now(), at: tokio::time::Instant::now() }
    }

    pub fn now(&self) -> DateTime<Utc> {
        match self {
            Clock::System => Utc::now(),
            Clock::Tokio { wall, at } => {
                let moved = tokio::time::Instant::now().saturating_duration_since(*at);
                *wall + chrono::Duration::from_std(moved).unwrap_or(chrono::Duration::MAX)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_tokio_clock_moves_with_tokio_and_only_then() {
        let clock = Clock::following_tokio();
        let t0 = clock.now();
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert_eq!(clock.now(), t0, "wall time passing does not move a paused clock");
        tokio::time::advance(std::time::Duration::from_secs(3600)).await;
        assert_eq!(clock.now() - t0, chrono::Duration::hours(1));
    }
}
