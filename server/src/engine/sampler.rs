//! Health samples for the charts: once per interval, every target in the pool of each active
//! campaign (and of each campaign that ended moments ago) is read back from the router (weight,
//! state, release) and asked of the health source (requests, errors, latency, probe). A round
//! is stored in one transaction and announced, so live charts redraw within the interval.
//!
//! Gates do not use these rows: they keep their own samples in the step run, so a chart can
//! never change a verdict.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use app::domain::environment::{BackendKind, Environment};
use chrono::{DateTime, Utc};

use super::Engine;
use super::calls::Adapters;
use crate::store::{NewSample, StoreError};

/// Campaigns that ended this recently are still sampled, so the chart shows traffic settle.
const AFTER_END_SECS: i64 = 30;
/// The longest a succeeded campaign is watched (its `rollback.watch_secs` is at most this).
const WATCH_MAX_SECS: i64 = 24 * 3600;

/// Frees a campaign for the next tick when its round ends, however it ends (a panic too).
struct Done(Arc<Mutex<HashSet<i64>>>, i64);

impl Drop for Done {
    fn drop(&mut self) {
        if let Ok(mut b) = self.0.lock() {
            b.remove(&self.1);
        }
    }
}

impl Engine {
    /// Samples every `every` until the server stops. Each campaign's round (sample, store,
    /// analyse) runs on its own task, so a slow one (a watched campaign whose router is far
    /// away or gone) never delays another's gates; a campaign whose previous round is still
    /// running skips this tick.
    pub fn watch_samples(&self, every: Duration) {
        let engine = self.clone();
        let handle = tokio::spawn(async move {
            let last: Arc<Mutex<HashMap<i64, DateTime<Utc>>>> = Arc::default();
            let busy: Arc<Mutex<HashSet<i64>>> = Arc::default();
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let ids = match engine
                    .store()
                    .campaigns_to_sample(AFTER_END_SECS, WATCH_MAX_SECS)
                    .await
                {
                    Ok(ids) => ids,
                    Err(e) => {
                        tracing::warn!(error = %e, "could not list campaigns to sample");
                        continue;
                    }
                };
                for &id in &ids {
                    if !busy.lock().is_ok_and(|mut b| b.insert(id)) {
                        continue;
                    }
                    let (engine, last) = (engine.clone(), last.clone());
                    let done = Done(busy.clone(), id);
                    tokio::spawn(async move {
                        let _done = done;
                        let now = engine.now();
                        let since =
                            last.lock().ok().and_then(|mut l| l.insert(id, now)).unwrap_or(
                                now - chrono::Duration::from_std(every).unwrap_or_default(),
                            );
                        match engine.sample_campaign(id, since, now).await {
                            Ok(Some(_)) => {
                                if let Err(e) = engine.analyse(id).await {
                                    tracing::warn!(campaign_id = id, error = %e, "continuous analysis failed");
                                }
                            }
                            Ok(None) => {}
                            Err(e) => {
                                tracing::warn!(campaign_id = id, error = %e, "health sample failed")
                            }
                        }
                    });
                }
                if let Ok(mut l) = last.lock() {
                    l.retain(|id, _| ids.contains(id));
                }
            }
        });
        self.keep_watcher(handle);
    }

    /// Active campaigns are sampled; ended ones for a short while (the chart shows traffic
    /// settle), succeeded ones for as long as their watch lasts.
    fn still_sampled(&self, row: &crate::store::CampaignRow, now: DateTime<Utc>) -> bool {
        if row.status.is_active() {
            return true;
        }
        let Some(finished) = row.finished_at else {
            return false;
        };
        let watch = match row.status {
            app::domain::lifecycle::CampaignState::Succeeded => {
                serde_json::from_str::<app::domain::campaign::CampaignSpec>(&row.spec)
                    .map(|s| i64::try_from(s.rollback.watch_secs).unwrap_or(0))
                    .unwrap_or(0)
            }
            _ => 0,
        };
        now < finished + chrono::Duration::seconds(watch.max(AFTER_END_SECS))
    }

    /// Takes and stores one round of samples for a campaign covering `since..now`; returns the
    /// id of the round's last row (`None` when there was nothing to sample).
    pub async fn sample_campaign(
        &self,
        id: i64,
        since: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Option<i64>, StoreError> {
        let store = self.store();
        let Some(row) = store.find_campaign(id).await? else { return Ok(None) };
        if !self.still_sampled(&row, now) {
            return Ok(None);
        }
        let env: Environment = match &row.env_snapshot {
            Some(e) => match serde_json::from_str(e) {
                Ok(env) => env,
                Err(_) => return Ok(None),
            },
            None => match store.find_environment_by_name(&row.environment).await? {
                Some(e) => match serde_json::from_str(&e.spec) {
                    Ok(env) => env,
                    Err(_) => return Ok(None),
                },
                None => return Ok(None),
            },
        };
        let factory = self.adapters();
        let created = super::observe::created_targets(&row);
        let traffic = super::observe::pool_traffic(
            factory,
            &env,
            &row.pool,
            &created,
            super::observe::Probe::Skip,
        )
        .await;
        if traffic.error.is_some() && traffic.members.is_empty() {
            return Ok(None);
        }
        let adapters = Adapters { env: &env, factory };
        let mut pairs = Vec::new();
        for m in &traffic.members {
            if let Ok(url) = adapters.health_url(&m.target).await {
                pairs.push((m.target.clone(), url));
            }
        }
        let figures =
            match env.first_backend(BackendKind::HealthSource).map(|cfg| factory.health(cfg)) {
                Some(Ok(h)) => h.chart_sample(&row.pool, &pairs, since).await.unwrap_or_else(|e| {
                    tracing::debug!(campaign_id = id, error = %e, "chart sample failed");
                    Vec::new()
                }),
                _ => Vec::new(),
            };
        let samples: Vec<NewSample> = traffic
            .members
            .iter()
            .map(|m| {
                let f = figures.iter().find(|f| f.target == m.target);
                NewSample {
                    target: m.target.clone(),
                    release: m.release.clone(),
                    weight_bp: Some((m.weight_pct * 100.0).round() as i64),
                    state: Some(m.state.clone()),
                    requests: f.and_then(|f| f.requests),
                    errors: f.and_then(|f| f.errors),
                    p50_ms: f.and_then(|f| f.p50_ms),
                    p99_ms: f.and_then(|f| f.p99_ms),
                    probe_ok: f.and_then(|f| f.probe_ok),
                    probe_ms: f.and_then(|f| f.probe_ms),
                }
            })
            .collect();
        if samples.is_empty() {
            return Ok(None);
        }
        let secs = ((now - since).num_milliseconds().max(1) as f64) / 1000.0;
        let last = store.insert_samples(id, now, secs, &samples).await?;
        self.announce_sample(id, last);
        Ok(Some(last))
    }
}
