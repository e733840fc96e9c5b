//! Property tests over generated campaigns: every plan and every rollback is run through the
//! traffic simulator to show that traffic keeps flowing and that an abort at any step ends with the
//! pool exactly as it started. Test-only.

use proptest::prelude::*;

use super::campaign::{
    BatchSize, CanaryStep, FlagStep, Pause, PreviewRoute, RouteMatch, Strategy as Rollout, Switch,
};
use super::environment::Environment;
use super::ids::{Percent, Weight};
use super::plan::{Plan, StepKind, compile};
use super::rollback::rollback_plan;
use super::testkit::{FROM, TO, dns_env, env, release, spec, valid};
use super::traffic::{TrafficState, apply, initial_traffic, share_by_release};
use super::validate::ValidSpec;

/// Strictly increasing shares in basis points that end at 100 %.
fn rising_steps() -> impl Strategy<Value = Vec<u32>> {
    proptest::collection::btree_set(1u32..10_000, 0..5).prop_map(|set| {
        let mut v: Vec<u32> = set.into_iter().collect();
        v.push(10_000);
        v
    })
}

fn pause() -> impl Strategy<Value = Pause> {
    prop_oneof![Just(Pause::None), Just(Pause::Manual), Just(Pause::Approval)]
}

fn weight(bp: u32) -> Weight {
    Weight::saturating_from_basis_points(bp)
}

fn rolling(n: usize) -> impl Strategy<Value = Rollout> {
    let n32 = u32::try_from(n).unwrap_or(2);
    (
        prop_oneof![
            (1u32..=7).prop_map(BatchSize::Count),
            (1u8..=100).prop_map(BatchSize::Percent)
        ],
        1u32..=7,
        0..n32,
        0u64..=60,
        0u64..=60,
    )
        .prop_map(|(batch, max_unavailable, min_healthy, drain_timeout_secs, bake_secs)| {
            Rollout::Rolling { batch, max_unavailable, min_healthy, drain_timeout_secs, bake_secs }
        })
}

fn canary(n: usize) -> impl Strategy<Value = Rollout> {
    let n32 = u32::try_from(n).unwrap_or(1);
    (rising_steps(), proptest::collection::vec(pause(), 6), 1..=n32).prop_map(
        |(bps, pauses, canary_count)| Rollout::Canary {
            steps: bps
                .iter()
                .zip(pauses)
                .map(|(&bp, pause)| CanaryStep { weight: weight(bp), bake_secs: 60, pause })
                .collect(),
            canary_count,
        },
    )
}

fn blue_green() -> impl Strategy<Value = Rollout> {
    (prop_oneof![Just(None), rising_steps().prop_map(Some)], any::<bool>()).prop_map(
        |(steps, verify_preview)| Rollout::BlueGreen {
            switch: steps
                .map_or(Switch::AtOnce, |s| Switch::Steps(s.into_iter().map(weight).collect())),
            bake_secs: 30,
            verify_preview,
        },
    )
}

fn feature_flag() -> impl Strategy<Value = Rollout> {
    rising_steps().prop_map(|bps| Rollout::FeatureFlag {
        flag: "new-checkout".into(),
        steps: bps
            .into_iter()
            .map(|bp| FlagStep {
                percent: Percent::saturating_from_basis_points(bp),
                bake_secs: 10,
                pause: Pause::None,
            })
            .collect(),
    })
}

/// A valid campaign of any strategy on a pool of 1–6 targets, sometimes behind DNS.
fn any_campaign() -> impl Strategy<Value = (ValidSpec, Plan)> {
    (1usize..=6, any::<bool>(), any::<bool>())
        .prop_flat_map(|(n, dns, notify)| {
            let strategy = if n >= 2 {
                prop_oneof![rolling(n), canary(n), blue_green(), feature_flag()].boxed()
            } else {
                prop_oneof![canary(n), blue_green(), feature_flag()].boxed()
            };
            (Just(n), Just(dns), Just(notify), strategy)
        })
        .prop_map(|(n, dns, notify, strategy)| {
            let dns_ok = matches!(
                strategy,
                Rollout::BlueGreen { switch: Switch::AtOnce, verify_preview: false, .. }
            );
            let e: Environment = if dns && dns_ok { dns_env(n) } else { env(n) };
            let mut s = spec(strategy);
            s.communications.notify = notify;
            s.communications.audiences = vec!["customers".into()];
            if !(dns && dns_ok) {
                s.preview_route = Some(PreviewRoute {
                    header: Some(RouteMatch { name: "x-preview".into(), value: "1".into() }),
                    cookie: None,
                });
            }
            let v = valid(&s, &e);
            let plan = compile(&v);
            (v, plan)
        })
}

fn states_after_each_step(v: &ValidSpec, plan: &Plan) -> Vec<TrafficState> {
    let mut state = initial_traffic(v);
    plan.steps
        .iter()
        .map(|step| {
            apply(&mut state, step);
            state.clone()
        })
        .collect()
}

fn weight_sum(state: &TrafficState) -> u32 {
    state.members.values().map(|m| m.weight.basis_points()).sum()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn a_rolling_plan_never_leaves_fewer_than_min_healthy_targets_serving(
        (v, plan) in (2usize..=7).prop_flat_map(|n| (Just(n), rolling(n))).prop_map(|(n, r)| {
            let v = valid(&spec(r), &env(n));
            let plan = compile(&v);
            (v, plan)
        })
    ) {
        let Rollout::Rolling { min_healthy, .. } = v.strategy() else { unreachable!() };
        let floor = usize::try_from(*min_healthy).unwrap_or(usize::MAX).max(1);
        for (i, state) in states_after_each_step(&v, &plan).iter().enumerate() {
            prop_assert!(state.serving_count() >= floor, "step {i} leaves {} serving, floor {floor}", state.serving_count());
        }
        let end = states_after_each_step(&v, &plan).pop().unwrap_or_else(|| initial_traffic(&v));
        prop_assert!(end.instances.values().all(|i| i.release == release(TO)));
    }

    #[test]
    fn canary_weights_only_ever_move_traffic_towards_the_new_release(
        (v, plan) in (1usize..=6).prop_flat_map(|n| (Just(n), canary(n))).prop_map(|(n, c)| {
            let v = valid(&spec(c), &env(n));
            let plan = compile(&v);
            (v, plan)
        })
    ) {
        let mut last = Weight::ZERO;
        for (step, state) in plan.steps.iter().zip(states_after_each_step(&v, &plan)) {
            let share = share_by_release(&state).get(&release(TO)).copied().unwrap_or(Weight::ZERO);
            prop_assert!(share >= last, "step {} lowers the new release from {last} to {share}", step.index);
            if step.kind == StepKind::SetWeight {
                prop_assert_eq!(weight_sum(&state), 10_000, "weights of step {} don't add up to 100 %", step.index);
            }
            last = share;
        }
        prop_assert_eq!(last, Weight::FULL);
    }

    #[test]
    fn aborting_at_any_step_puts_all_traffic_back_on_the_from_release((v, plan) in any_campaign()) {
        let start = initial_traffic(&v);
        let states = states_after_each_step(&v, &plan);
        for (k, reached) in states.iter().enumerate() {
            let rollback = rollback_plan(&plan, &v, k);
            let mut state = reached.clone();
            for step in &rollback {
                let before = state.serving_count();
                apply(&mut state, step);
                prop_assert!(before == 0 || state.serving_count() > 0,
                    "abort after step {k}: rollback step {} ({}) stops all traffic", step.index, step.description);
            }
            let shares = share_by_release(&state);
            prop_assert_eq!(shares.len(), 1, "abort after step {}: shares {:?}", k, shares);
            prop_assert_eq!(shares.get(&release(FROM)).copied(), Some(Weight::FULL));
            prop_assert!(state.serving().iter().all(|(_, r, _)| **r == release(FROM)));
            prop_assert_eq!(&state.members, &start.members, "abort after step {}: members differ", k);
            prop_assert_eq!(&state.instances, &start.instances, "abort after step {}: instances differ", k);
            prop_assert!(state.preview.is_empty());
            prop_assert!(state.flags.values().all(|p| p.is_zero()));
        }
    }

    #[test]
    fn every_step_of_a_plan_or_its_rollback_can_be_repeated_harmlessly((v, plan) in any_campaign()) {
        let mut state = initial_traffic(&v);
        let rollback = rollback_plan(&plan, &v, plan.steps.len() / 2);
        for step in plan.steps.iter().chain(&rollback) {
            apply(&mut state, step);
            let once = state.clone();
            apply(&mut state, step);
            prop_assert_eq!(&state, &once, "step {} ({}) is not idempotent", step.index, step.description);
        }
    }
}
