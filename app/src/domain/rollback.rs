//! The rollback plan: the steps that put all of a pool's traffic back on the from-release from
//! wherever a campaign stopped. It is computed from the simulated state after the last step
//! reached, not by reversing the plan, so it works from any point — including mid-batch — and
//! every call in it is absolute, so the engine may rerun any step after a crash.
//!
//! Order matters for keeping traffic flowing: re-create what was destroyed first, then put the
//! traffic on targets that still run the old release, and only then touch the others. When too few
//! old-release targets remain (a rolling campaign near its end) the in-place targets are rolled
//! back in batches that respect `min_healthy`.

use super::campaign::Strategy;
use super::environment::Target;
use super::ids::{Name, Percent, Weight};
use super::plan::{
    BackendCall, Builder, FlagCall, MemberState, NotifyEvent, Plan, RouterCall, Step, StepKind,
    effective_batch, list, timing,
};
use super::traffic::{TrafficState, apply, initial_traffic};
use super::validate::ValidSpec;

/// The longest a rollback waits for requests in flight on the new release's members before
/// destroying them (canary and blue-green; rolling uses its own drain timeout).
pub const ROLLBACK_DRAIN_SECS: u64 = 30;

/// Steps to undo `plan` after steps `0..=reached` ran (a `reached` past the end means all of them).
/// Pass the step in progress when aborting mid-step: over-counting is safe because every rollback
/// call states the desired end, while under-counting could leave a half-made change behind.
pub fn rollback_plan(plan: &Plan, v: &ValidSpec, reached: usize) -> Vec<Step> {
    let mut state = initial_traffic(v);
    for step in plan.steps.iter().take(reached.saturating_add(1)) {
        apply(&mut state, step);
    }
    rollback_from(&state, v)
}

/// Steps that take the pool from `state` back to its original shape on the from-release.
pub fn rollback_from(state: &TrafficState, v: &ValidSpec) -> Vec<Step> {
    let mut b = Builder::new(v);
    let from = v.from_release().clone();
    let pool = v.pool().name.clone();
    let old: Vec<&Target> = v.targets().iter().collect();
    let is_old = |n: &Name| old.iter().any(|t| &t.name == n);

    reset_flags(&mut b, state);
    if matches!(v.strategy(), Strategy::FeatureFlag { .. }) {
        // A flag campaign never touched instances or weights; turning the flag off is the rollback.
        b.notify(NotifyEvent::RolledBack);
        return b.steps;
    }

    let missing: Vec<(Name, String)> = old
        .iter()
        .filter(|t| !state.instances.contains_key(&t.name))
        .map(|t| (t.name.clone(), t.group.clone()))
        .collect();
    if !missing.is_empty() {
        let names: Vec<Name> = missing.iter().map(|(n, _)| n.clone()).collect();
        b.provision(&missing, &from, format!("Re-create {} on {from}", list(&names)));
        b.wait_healthy(&names, &from);
    }

    // After re-creation every old target either runs `from` (avail) or was replaced in place.
    let (avail, in_place): (Vec<Name>, Vec<Name>) = old
        .iter()
        .map(|t| t.name.clone())
        .partition(|n| state.release_of(n).is_none_or(|r| r == &from));
    let (min_healthy, batch) = match v.strategy() {
        Strategy::Rolling { batch, max_unavailable, min_healthy, .. } => {
            let (size, _) = effective_batch(*batch, *max_unavailable, *min_healthy, old.len());
            (usize::try_from(*min_healthy).unwrap_or(usize::MAX).max(1), size)
        }
        _ => (1, old.len().max(1)),
    };

    if in_place.is_empty() || avail.len() >= min_healthy {
        restore_onto(&mut b, state, &avail);
        if !in_place.is_empty() {
            // They take no traffic since the restore, so they can go out all at once.
            b.remove_members(&in_place, format!("Take {} out of {pool}", list(&in_place)), false);
            roll_back_in_place(&mut b, &in_place);
        }
    } else {
        if !avail.is_empty() {
            let back: Vec<(Name, Weight)> =
                avail.iter().map(|n| (n.clone(), b.initial_weight(n))).collect();
            b.add_members(
                &back,
                format!("Return {} (still on {from}) to {pool}, ready", list(&avail)),
                false,
            );
        }
        // Targets already out of service go first, so the first batch takes nothing more away.
        let mut order = in_place.clone();
        order.sort_by_key(|n| serving(state, n));
        let drain_timeout = match v.strategy() {
            Strategy::Rolling { drain_timeout_secs, .. } => *drain_timeout_secs,
            _ => 0,
        };
        for chunk in order.chunks(batch) {
            super::plan::rolling_drain(&mut b, chunk, "to roll it back");
            super::plan::rolling_await_drained(&mut b, chunk, drain_timeout);
            b.remove_members(chunk, format!("Take {} out of {pool}", list(chunk)), false);
            roll_back_in_place(&mut b, chunk);
        }
    }

    let extra_members: Vec<Name> = state.members.keys().filter(|n| !is_old(n)).cloned().collect();
    if !b.is_dns() && !extra_members.is_empty() {
        // They take no new requests since the restore; let the ones in flight finish before
        // the instances go (a slow request would otherwise be cut off).
        let timeout = match v.strategy() {
            Strategy::Rolling { drain_timeout_secs, .. } => (*drain_timeout_secs).max(1),
            _ => ROLLBACK_DRAIN_SECS,
        };
        super::plan::rolling_drain(&mut b, &extra_members, "before it is removed");
        super::plan::rolling_await_drained(&mut b, &extra_members, timeout);
    }
    if !b.is_dns() && (!extra_members.is_empty() || !state.preview.is_empty()) {
        b.remove_members(
            &extra_members,
            format!("Remove {} (on {}) from {pool}", list(&extra_members), v.to_release()),
            true,
        );
    }
    let extra_instances: Vec<Name> =
        state.instances.keys().filter(|n| !is_old(n)).cloned().collect();
    if !extra_instances.is_empty() {
        b.decommission(
            &extra_instances,
            format!("Destroy {} (on {})", list(&extra_instances), v.to_release()),
        );
    }

    if v.provider().is_some() {
        final_weights(&mut b);
    }
    b.notify(NotifyEvent::RolledBack);
    b.steps
}

fn serving(state: &TrafficState, n: &Name) -> bool {
    state.members.get(n).is_some_and(|m| m.state == MemberState::Ready && !m.weight.is_zero())
}

fn reset_flags(b: &mut Builder<'_>, state: &TrafficState) {
    let mut flags: Vec<Name> = state.flags.keys().cloned().collect();
    if let Some(f) = b.v.flag()
        && !flags.contains(f)
    {
        flags.push(f.clone());
    }
    if flags.is_empty() {
        return;
    }
    let calls = flags
        .iter()
        .map(|flag| BackendCall::Flag {
            call: FlagCall::Set { flag: flag.clone(), percent: Percent::ZERO },
        })
        .collect();
    let description = format!("Turn flag {} off (0 %)", list(&flags));
    b.push(StepKind::SetFlag, description, calls, timing::FLAG);
}

/// One step that puts 100 % of the traffic on `avail` and 0 % on every other member.
fn restore_onto(b: &mut Builder<'_>, state: &TrafficState, avail: &[Name]) {
    if avail.is_empty() {
        return;
    }
    let (pool, from) = (b.pool().clone(), b.from().clone());
    if b.is_dns() {
        b.switch_dns(avail, format!("Point {pool}'s DNS record back at {} on {from}", list(avail)));
        // Whatever the record named before may be destroyed next, so let the old answer expire.
        let leaving: Vec<Name> =
            state.members.keys().filter(|n| !avail.contains(n)).cloned().collect();
        if !leaving.is_empty() {
            b.wait_out_ttl(&list(&leaving));
        }
        return;
    }
    let mut calls: Vec<BackendCall> = avail
        .iter()
        .zip(Weight::FULL.split_even(avail.len()))
        .map(|(t, weight)| {
            b.router(RouterCall::AddMember { pool: pool.clone(), target: t.clone(), weight })
        })
        .collect();
    let others: Vec<Name> = state.members.keys().filter(|n| !avail.contains(n)).cloned().collect();
    calls.extend(others.iter().map(|t| {
        b.router(RouterCall::SetWeight {
            pool: pool.clone(),
            target: t.clone(),
            weight: Weight::ZERO,
        })
    }));
    if b.v.spec().preview_route.is_some() {
        calls.push(b.router(RouterCall::ClearPreviewRoute { pool: pool.clone() }));
    }
    let zeroed =
        if others.is_empty() { String::new() } else { format!("; {} to 0 %", list(&others)) };
    b.push(
        StepKind::SetWeight,
        format!(
            "Put all {pool} traffic back on {from}: {} ready at 100 % between them{zeroed}",
            list(avail)
        ),
        calls,
        timing::ROUTER,
    );
}

fn roll_back_in_place(b: &mut Builder<'_>, targets: &[Name]) {
    let (pool, from) = (b.pool().clone(), b.from().clone());
    b.replace(targets, &from);
    b.wait_healthy(targets, &from);
    let back: Vec<(Name, Weight)> =
        targets.iter().map(|n| (n.clone(), b.initial_weight(n))).collect();
    b.add_members(&back, format!("Put {} back into {pool} on {from}", list(targets)), false);
}

/// Ends where the campaign began: every old target ready at its original even share.
fn final_weights(b: &mut Builder<'_>) {
    let (pool, from) = (b.pool().clone(), b.from().clone());
    let weights = b.initial_weights();
    let targets: Vec<Name> = weights.iter().map(|(n, _)| n.clone()).collect();
    if b.is_dns() {
        b.switch_dns(
            &targets,
            format!("Point {pool}'s DNS record at {} on {from}", list(&targets)),
        );
        return;
    }
    let mut calls = Vec::new();
    for (t, w) in &weights {
        calls.push(b.router(RouterCall::SetState {
            pool: pool.clone(),
            target: t.clone(),
            state: MemberState::Ready,
        }));
        calls.push(b.router(RouterCall::SetWeight {
            pool: pool.clone(),
            target: t.clone(),
            weight: *w,
        }));
    }
    b.push(
        StepKind::SetWeight,
        format!(
            "Restore {pool}'s original weights on {from}: {} ready at even shares",
            list(&targets)
        ),
        calls,
        timing::ROUTER,
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::campaign::{BatchSize, Switch};
    use crate::domain::plan::{Plan, compile};
    use crate::domain::testkit::{
        FROM, blue_green, canary, dns_env, env, flag, plan_for, release, rolling, spec,
    };
    use crate::domain::traffic::share_by_release;
    use StepKind as K;

    fn index_of(plan: &Plan, kind: StepKind, nth: usize) -> usize {
        plan.steps.iter().filter(|s| s.kind == kind).nth(nth).map(|s| s.index).expect("step exists")
    }

    fn kinds(steps: &[Step]) -> Vec<StepKind> {
        steps.iter().map(|s| s.kind).collect()
    }

    fn run(v: &ValidSpec, plan: &Plan, reached: usize, rollback: &[Step]) -> TrafficState {
        let mut state = initial_traffic(v);
        plan.steps.iter().take(reached + 1).chain(rollback).for_each(|s| apply(&mut state, s));
        state
    }

    #[test]
    fn abort_during_canary_puts_all_traffic_back_on_stable() {
        let (v, plan) = plan_for(&spec(canary(&["25", "100"])), &env(4));
        let reached = index_of(&plan, K::SetWeight, 0);
        let steps = rollback_plan(&plan, &v, reached);
        assert_eq!(
            kinds(&steps),
            [
                K::SetWeight,
                K::Drain,
                K::WaitDrained,
                K::RemoveFromPool,
                K::Decommission,
                K::SetWeight
            ],
            "the canary's requests in flight finish before it is destroyed"
        );
        assert_eq!(
            steps[0].description,
            "Put all web-pool traffic back on v1.0.0: web-1, web-2, web-3 and web-4 ready at 100 % between them; web-1-v2-1-0 to 0 %"
        );
        assert_eq!(
            steps[2].calls.iter().map(ToString::to_string).collect::<Vec<_>>(),
            ["router(haproxy-main).await_drained(web-pool, web-1-v2-1-0, 30s)"]
        );
        assert_eq!(
            steps[4].calls.iter().map(ToString::to_string).collect::<Vec<_>>(),
            ["provider(local).destroy(web-1-v2-1-0)"]
        );
        let end = run(&v, &plan, reached, &steps);
        assert_eq!(share_by_release(&end).get(&release(FROM)), Some(&Weight::FULL));
    }

    #[test]
    fn abort_mid_rolling_batch_restores_the_untouched_targets_first() {
        let (v, plan) = plan_for(&spec(rolling(BatchSize::Count(1), 1, 1)), &env(4));
        let reached = index_of(&plan, K::ReplaceRelease, 0);
        let steps = rollback_plan(&plan, &v, reached);
        assert_eq!(
            kinds(&steps),
            [
                K::SetWeight,
                K::RemoveFromPool,
                K::ReplaceRelease,
                K::WaitHealthy,
                K::AddToPool,
                K::SetWeight
            ]
        );
        assert_eq!(steps[2].description, "Replace the release on web-1 with v1.0.0");
    }

    #[test]
    fn abort_after_a_finished_rolling_campaign_rolls_back_in_batches() {
        let (v, plan) = plan_for(&spec(rolling(BatchSize::Count(1), 1, 1)), &env(3));
        let reached = plan.steps.len() - 1;
        let steps = rollback_plan(&plan, &v, reached);
        let batch = [
            K::Drain,
            K::WaitDrained,
            K::RemoveFromPool,
            K::ReplaceRelease,
            K::WaitHealthy,
            K::AddToPool,
        ];
        assert_eq!(kinds(&steps), [&batch[..], &batch, &batch, &[K::SetWeight]].concat());
        let mut state = initial_traffic(&v);
        plan.steps.iter().for_each(|s| apply(&mut state, s));
        for s in &steps {
            apply(&mut state, s);
            assert!(
                state.serving_count() >= 2,
                "{} leaves {} serving",
                s.description,
                state.serving_count()
            );
        }
    }

    #[test]
    fn abort_after_blue_was_destroyed_recreates_it_before_moving_traffic() {
        let (v, plan) = plan_for(&spec(blue_green(Switch::AtOnce)), &env(2));
        let reached = plan.steps.len() - 1;
        let steps = rollback_plan(&plan, &v, reached);
        assert_eq!(
            kinds(&steps),
            [
                K::Provision,
                K::WaitHealthy,
                K::SetWeight,
                K::Drain,
                K::WaitDrained,
                K::RemoveFromPool,
                K::Decommission,
                K::SetWeight
            ]
        );
        assert_eq!(steps[0].description, "Re-create web-1 and web-2 on v1.0.0");
        let end = run(&v, &plan, reached, &steps);
        assert_eq!(end, initial_traffic(&v));
    }

    #[test]
    fn abort_of_a_dns_blue_green_points_the_record_back() {
        let (v, plan) = plan_for(&spec(blue_green(Switch::AtOnce)), &dns_env(2));
        let reached = index_of(&plan, K::SwitchDns, 0);
        let steps = rollback_plan(&plan, &v, reached);
        assert_eq!(kinds(&steps), [K::SwitchDns, K::Bake, K::Decommission, K::SwitchDns]);
        assert_eq!(
            steps[0].calls.iter().map(ToString::to_string).collect::<Vec<_>>(),
            ["router(pdns).switch_dns(web.example.com, [web-1, web-2])"]
        );
        assert_eq!(
            steps[1].description,
            "Wait out the old record's TTL (60 s) so resolvers stop sending to web-1-v2-1-0 and web-2-v2-1-0"
        );
    }

    #[test]
    fn abort_of_a_dns_blue_green_before_the_switch_has_no_ttl_to_wait_out() {
        let (v, plan) = plan_for(&spec(blue_green(Switch::AtOnce)), &dns_env(2));
        let reached = index_of(&plan, K::WaitHealthy, 0);
        let steps = rollback_plan(&plan, &v, reached);
        assert_eq!(kinds(&steps), [K::SwitchDns, K::Decommission, K::SwitchDns]);
    }

    #[test]
    fn abort_of_a_flag_rollout_turns_the_flag_off() {
        let v = crate::domain::testkit::valid(&spec(flag(&["10", "100"])), &env(2));
        let plan = compile(&v);
        let steps = rollback_plan(&plan, &v, 0);
        assert_eq!(kinds(&steps), [K::SetFlag]);
        assert_eq!(
            steps[0].calls.iter().map(ToString::to_string).collect::<Vec<_>>(),
            ["flags.set(new-checkout, 0 %)"]
        );
    }

    #[test]
    fn a_reached_index_past_the_end_means_the_whole_plan_ran() {
        let (v, plan) = plan_for(&spec(canary(&["100"])), &env(2));
        assert_eq!(
            rollback_plan(&plan, &v, usize::MAX),
            rollback_plan(&plan, &v, plan.steps.len() - 1)
        );
    }

    #[test]
    fn a_rollback_announces_itself_when_notifications_are_on() {
        let mut s = spec(canary(&["100"]));
        s.communications.notify = true;
        s.communications.audiences = vec!["customers".into(), "staff".into()];
        let (v, plan) = plan_for(&s, &env(2));
        let steps = rollback_plan(&plan, &v, 3);
        let last = steps.last().expect("steps");
        assert_eq!(
            last.description,
            "Tell customers, staff that web v1.0.0 → v2.1.0 was rolled back to v1.0.0"
        );
    }
}
