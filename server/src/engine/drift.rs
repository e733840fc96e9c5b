//! Drift: a router whose real state differs from what Switchyard last set and read back.
//!
//! After every verified router change the engine stores the pool as read back (the
//! expectation). Before the next change to that pool in a campaign it reads the pool again: a
//! difference pauses the campaign with the difference in words instead of overwriting what
//! someone else did. Resuming the campaign accepts the router's state as the new expectation
//! (audited). A rollback never waits on drift: putting traffic back wins, and the drift is
//! still reported. A watcher also reads every expected pool periodically and reports drift as
//! an audit event and in `GET /api/v1/drift`, whether or not a campaign runs.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::Engine;
use crate::adapters::{AdapterResult, MemberReadback, Router};
use crate::audit::system_record;
use crate::store::{ExpectationRow, Expected, Store};

/// A pool whose router differs from Switchyard's expectation.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct DriftFinding {
    pub environment: String,
    pub backend: String,
    pub pool: String,
    /// Each difference, in words.
    pub differences: Vec<String>,
    pub since: DateTime<Utc>,
}

fn pct(bp: i64) -> String {
    format!("{:.2} %", bp as f64 / 100.0)
}

/// The differences between the expectation and the router's read-back, in words.
pub fn compare(expected: &[ExpectationRow], actual: &[MemberReadback]) -> Vec<String> {
    let mut out = Vec::new();
    for e in expected {
        match actual.iter().find(|m| m.target == e.target) {
            None => out.push(format!(
                "{} is no longer in the pool (Switchyard last set it {} at {})",
                e.target,
                e.state,
                pct(e.weight_bp)
            )),
            Some(m) => {
                let bp = i64::from(m.weight.basis_points());
                if bp != e.weight_bp {
                    out.push(format!(
                        "{} has weight {} on the router; Switchyard last set {}",
                        e.target,
                        pct(bp),
                        pct(e.weight_bp)
                    ));
                }
                if m.state.to_string() != e.state {
                    out.push(format!(
                        "{} is {} on the router; Switchyard last set {}",
                        e.target, m.state, e.state
                    ));
                }
                if m.address != e.address {
                    out.push(format!(
                        "{} points at {} on the router; Switchyard last set {}",
                        e.target, m.address, e.address
                    ));
                }
            }
        }
    }
    for m in actual {
        if !expected.iter().any(|e| e.target == m.target) {
            out.push(format!("{} ({}) was added outside Switchyard", m.target, m.address));
        }
    }
    out
}

pub fn expected_from(members: &[MemberReadback]) -> Vec<Expected> {
    members
        .iter()
        .map(|m| Expected {
            target: m.target.clone(),
            address: m.address.clone(),
            weight_bp: i64::from(m.weight.basis_points()),
            state: m.state.to_string(),
        })
        .collect()
}

/// Reads the pool and compares it with the stored expectation (none stored: no drift). A
/// change `by` this campaign that was begun and never recorded (a crash in between) is its
/// own, not drift: the campaign redoes it.
pub async fn check_pool(
    store: &Store,
    environment: &str,
    backend: &str,
    pool: &str,
    router: &dyn Router,
    by: Option<i64>,
) -> AdapterResult<Vec<String>> {
    if let Some(id) = by
        && store.pending_router_change(environment, backend, pool).await.ok().flatten() == Some(id)
    {
        return Ok(Vec::new());
    }
    let expected = store.expectations(environment, backend, pool).await.unwrap_or_default();
    if expected.is_empty() {
        return Ok(Vec::new());
    }
    Ok(compare(&expected, &router.read_pool(pool).await?))
}

/// Stores the pool as the router reads it back now, as the new expectation.
pub async fn record_pool(
    store: &Store,
    environment: &str,
    backend: &str,
    pool: &str,
    campaign_id: Option<i64>,
    router: &dyn Router,
) -> AdapterResult<()> {
    let members = router.read_pool(pool).await?;
    if let Err(e) = store
        .set_expectations(environment, backend, pool, campaign_id, &expected_from(&members))
        .await
    {
        tracing::warn!(error = %e, pool, "could not store the router expectation");
    }
    Ok(())
}

impl Engine {
    /// The drift found by the last look at every expected pool.
    pub fn drift(&self) -> Vec<DriftFinding> {
        self.inner.drift.lock().map(|d| d.values().cloned().collect()).unwrap_or_default()
    }

    /// Reads every pool Switchyard has expectations for; new drift and drift that went away
    /// are written to the audit trail.
    pub async fn look_for_drift(&self) {
        let store = self.store();
        let Ok(pools) = store.watched_pools().await else { return };
        let mut found = BTreeMap::new();
        for (environment, backend, pool) in pools {
            let Ok(Some(row)) = store.find_environment_by_name(&environment).await else {
                continue;
            };
            let Ok(env) = serde_json::from_str::<app::domain::environment::Environment>(&row.spec)
            else {
                continue;
            };
            let Some(cfg) = env.backends.iter().find(|b| b.name.as_str() == backend) else {
                continue;
            };
            let Ok(router) = self.adapters().router(cfg) else { continue };
            match check_pool(store, &environment, &backend, &pool, &*router, None).await {
                Ok(diffs) if !diffs.is_empty() => {
                    found.insert((environment.clone(), backend.clone(), pool.clone()), diffs);
                }
                Ok(_) => {}
                // An unreachable router is not drift; the campaign steps report it.
                Err(e) => tracing::debug!(error = %e, pool, "drift check could not read the pool"),
            }
        }
        let now = Utc::now();
        let (new, gone) = {
            let mut current = self.inner.drift.lock().unwrap_or_else(|p| p.into_inner());
            let mut new = Vec::new();
            let mut next = BTreeMap::new();
            for ((environment, backend, pool), differences) in found {
                let key = (environment.clone(), backend.clone(), pool.clone());
                let since = match current.get(&key) {
                    Some(f) if f.differences == differences => f.since,
                    _ => {
                        new.push(key.clone());
                        now
                    }
                };
                next.insert(key, DriftFinding { environment, backend, pool, differences, since });
            }
            let gone: Vec<_> = current.keys().filter(|k| !next.contains_key(*k)).cloned().collect();
            let new: Vec<DriftFinding> = new.iter().filter_map(|k| next.get(k).cloned()).collect();
            *current = next;
            (new, gone)
        };
        for f in new {
            tracing::warn!(environment = %f.environment, pool = %f.pool, differences = ?f.differences, "router drift");
            let _ = store
                .append_audit(system_record(
                    "router.drift",
                    format!("pool:{}/{}", f.environment, f.pool),
                    serde_json::json!({ "backend": f.backend, "differences": f.differences }),
                ))
                .await;
        }
        for (environment, backend, pool) in gone {
            let _ = store
                .append_audit(system_record(
                    "router.drift_cleared",
                    format!("pool:{environment}/{pool}"),
                    serde_json::json!({ "backend": backend }),
                ))
                .await;
        }
    }

    /// Looks for drift every `every` until the server stops.
    pub fn watch_drift(&self, every: Duration) {
        let engine = self.clone();
        let handle = tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                engine.look_for_drift().await;
            }
        });
        self.keep_watcher(handle);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use app::domain::ids::Weight;
    use app::domain::plan::MemberState;

    fn row(target: &str, bp: i64, state: &str) -> ExpectationRow {
        ExpectationRow {
            environment: "prod".into(),
            backend: "edge".into(),
            pool: "web".into(),
            target: target.into(),
            address: format!("10.0.0.1:{}", 80),
            weight_bp: bp,
            state: state.into(),
            campaign_id: None,
            set_at: chrono::DateTime::UNIX_EPOCH,
        }
    }

    fn member(target: &str, bp: u32, state: MemberState, address: &str) -> MemberReadback {
        MemberReadback {
            target: target.into(),
            address: address.into(),
            weight: Weight::from_basis_points(bp).expect("w"),
            state,
        }
    }

    #[test]
    fn every_kind_of_difference_is_named_and_equal_state_is_no_drift() {
        let expected = [row("a", 5000, "ready"), row("b", 5000, "ready"), row("c", 0, "drain")];
        let same = [
            member("a", 5000, MemberState::Ready, "10.0.0.1:80"),
            member("b", 5000, MemberState::Ready, "10.0.0.1:80"),
            member("c", 0, MemberState::Drain, "10.0.0.1:80"),
        ];
        assert!(compare(&expected, &same).is_empty());
        let changed = [
            member("a", 7000, MemberState::Ready, "10.0.0.1:80"),
            member("c", 0, MemberState::Ready, "10.0.0.9:80"),
            member("x", 3000, MemberState::Ready, "10.0.0.7:80"),
        ];
        let d = compare(&expected, &changed);
        assert_eq!(d.len(), 5, "{d:#?}");
        assert!(d[0].contains("a has weight 70.00 % on the router; Switchyard last set 50.00 %"));
        assert!(d[1].contains("b is no longer in the pool"));
        assert!(d[2].contains("c is ready on the router; Switchyard last set drain"));
        assert!(d[3].contains("c points at 10.0.0.9:80"));
        assert!(d[4].contains("x (10.0.0.7:80) was added outside Switchyard"));
    }
}
