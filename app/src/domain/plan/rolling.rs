//! Rolling: replace the release on the existing targets a batch at a time — drain, wait for
//! in-flight requests, take out of the pool, replace, wait healthy, put back, bake, gate. The batch
//! is capped so the pool never has fewer than `min_healthy` (and never zero) serving targets.

use super::super::campaign::BatchSize;
use super::super::ids::{Name, Secs};
use super::super::plan::{MemberState, RouterCall, StepKind};
use super::{Builder, list};

pub(crate) struct Params {
    pub batch: BatchSize,
    pub max_unavailable: u32,
    pub min_healthy: u32,
    pub drain_timeout_secs: u64,
    pub bake_secs: u64,
}

/// The batch size actually used for a pool of `pool_size`, and why it differs from the request.
pub(crate) fn effective_batch(
    batch: BatchSize,
    max_unavailable: u32,
    min_healthy: u32,
    pool_size: usize,
) -> (usize, Option<String>) {
    let to_usize = |n: u32| usize::try_from(n).unwrap_or(usize::MAX);
    let requested = match batch {
        BatchSize::Count(n) => to_usize(n),
        BatchSize::Percent(p) => (pool_size * usize::from(p)).div_ceil(100),
    }
    .max(1);
    let keep = to_usize(min_healthy).max(1);
    let room = pool_size.saturating_sub(keep).max(1);
    let effective = requested.min(to_usize(max_unavailable).max(1)).min(room);
    let note = (effective < requested).then(|| {
        format!(
            "batch of {requested} reduced to {effective} so at most {} target{} out of service \
             and at least {keep} keep serving",
            effective,
            if effective == 1 { " is" } else { "s are" }
        )
    });
    (effective, note)
}

pub(super) fn plan(b: &mut Builder<'_>, p: &Params) {
    let (pool, to) = (b.pool().clone(), b.to().clone());
    let targets: Vec<Name> = b.v.targets().iter().map(|t| t.name.clone()).collect();
    let (size, note) = effective_batch(p.batch, p.max_unavailable, p.min_healthy, targets.len());
    b.notes.extend(note);
    let batches: Vec<&[Name]> = targets.chunks(size).collect();
    let total = batches.len();
    let mut done: Vec<Name> = Vec::new();
    for (i, batch) in batches.into_iter().enumerate() {
        let of = format!("(batch {} of {total})", i + 1);
        let serving = targets.len() - batch.len();
        drain(b, batch, &format!("{of}; {serving} of {} keep serving", targets.len()));
        await_drained(b, batch, p.drain_timeout_secs);
        b.remove_members(batch, format!("Take {} out of {pool} {of}", list(batch)), false);
        b.replace(batch, &to);
        b.wait_healthy(batch, &to);
        let weights: Vec<_> = batch.iter().map(|t| (t.clone(), b.initial_weight(t))).collect();
        b.add_members(
            &weights,
            format!("Put {} back into {pool} on {to} {of}", list(batch)),
            false,
        );
        done.extend(batch.iter().cloned());
        b.bake(
            p.bake_secs,
            format!(
                "Bake {to} on {} of {} targets for {}",
                done.len(),
                targets.len(),
                Secs(p.bake_secs)
            ),
        );
        b.gate(&done, &format!("on {} after batch {} of {total}", list(&done), i + 1));
    }
}

pub(crate) fn drain(b: &mut Builder<'_>, batch: &[Name], context: &str) {
    let pool = b.pool().clone();
    let calls = batch
        .iter()
        .map(|t| {
            b.router(RouterCall::SetState {
                pool: pool.clone(),
                target: t.clone(),
                state: MemberState::Drain,
            })
        })
        .collect();
    let description = format!("Drain {} in {pool}: no new connections {context}", list(batch));
    b.push(StepKind::Drain, description, calls, super::timing::ROUTER);
}

pub(crate) fn await_drained(b: &mut Builder<'_>, batch: &[Name], timeout_secs: u64) {
    let pool = b.pool().clone();
    let calls = batch
        .iter()
        .map(|t| {
            b.router(RouterCall::AwaitDrained {
                pool: pool.clone(),
                target: t.clone(),
                timeout_secs,
            })
        })
        .collect();
    let description = format!(
        "Wait up to {} for in-flight requests on {} to finish",
        Secs(timeout_secs),
        list(batch)
    );
    b.push(StepKind::WaitDrained, description, calls, (timeout_secs, timeout_secs));
}
