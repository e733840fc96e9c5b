//! One computation at a time per key: when many viewers ask for the same campaign's chart in
//! the same instant (they all heard the same `sample` event), the first draws it and the rest
//! wait for it and read the cache, instead of every one of them drawing it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

type Turns = HashMap<(&'static str, i64), Arc<tokio::sync::Mutex<()>>>;

#[derive(Clone, Default)]
pub struct Flights(Arc<Mutex<Turns>>);

impl Flights {
    /// Waits for the turn of `(what, id)`; the turn lasts as long as the guard.
    pub async fn enter(&self, what: &'static str, id: i64) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = {
            let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
            map.entry((what, id)).or_default().clone()
        };
        lock.lock_owned().await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[tokio::test]
    async fn concurrent_callers_of_one_key_take_turns_and_other_keys_do_not_wait() {
        let flights = Flights::default();
        let inside = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let (f, inside, most) = (flights.clone(), inside.clone(), most.clone());
                tokio::spawn(async move {
                    let _turn = f.enter("chart", 1).await;
                    let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                    inside.fetch_sub(1, Ordering::SeqCst);
                })
            })
            .collect();
        let _held = flights.enter("chart", 2).await;
        for t in tasks {
            t.await.expect("task");
        }
        assert_eq!(most.load(Ordering::SeqCst), 1, "one at a time for one key");
    }
}
