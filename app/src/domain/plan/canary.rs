//! Canary: provision a few new instances beside the old set, then raise the new release's share of
//! traffic step by step (bake, gate, optional pause or approval after each). Before the final 100 %
//! step the new set is grown to the old set's size so capacity never shrinks; after it the old set
//! is kept idle for the rollback hold time, then removed and destroyed.

use super::super::campaign::CanaryStep;
use super::super::ids::{Name, Secs, Weight};
use super::blue_green::shares;
use super::{Builder, list, new_instances};

pub(super) fn plan(b: &mut Builder<'_>, steps: &[CanaryStep], canary_count: u32) {
    let (pool, to) = (b.pool().clone(), b.to().clone());
    let old: Vec<Name> = b.v.targets().iter().map(|t| t.name.clone()).collect();
    let new_set = new_instances(b.v);
    let count = usize::try_from(canary_count).unwrap_or(usize::MAX).clamp(1, new_set.len().max(1));
    let (first, rest) = new_set.split_at(count.min(new_set.len()));
    let mut live: Vec<Name> = first.iter().map(|(n, _)| n.clone()).collect();

    b.provision(
        first,
        &to,
        format!(
            "Provision {} canary target{} on {to}: {}",
            live.len(),
            plural(live.len()),
            list(&live)
        ),
    );
    b.wait_healthy(&live, &to);
    let zero: Vec<(Name, Weight)> = live.iter().map(|n| (n.clone(), Weight::ZERO)).collect();
    b.add_members(
        &zero,
        format!("Add {} to {pool} at 0 % (no live traffic yet)", list(&live)),
        true,
    );

    for (i, step) in steps.iter().enumerate() {
        let w = step.weight;
        if w.is_full() && !rest.is_empty() {
            let more: Vec<Name> = rest.iter().map(|(n, _)| n.clone()).collect();
            b.provision(
                rest,
                &to,
                format!(
                    "Provision {} more target{} on {to} so the new set matches the old set's {} \
                     before taking all traffic: {}",
                    more.len(),
                    plural(more.len()),
                    old.len(),
                    list(&more)
                ),
            );
            b.wait_healthy(&more, &to);
            let zero: Vec<(Name, Weight)> =
                more.iter().map(|n| (n.clone(), Weight::ZERO)).collect();
            b.add_members(&zero, format!("Add {} to {pool} at 0 %", list(&more)), false);
            live.extend(more);
        }
        b.set_weights(
            &shares(&live, &old, w),
            if w.is_full() {
                format!("Shift all {pool} traffic to {to}; {} takes none", b.from())
            } else {
                format!(
                    "Shift {w} of {pool} traffic to {to}; {} stays on {}",
                    w.complement(),
                    b.from()
                )
            },
        );
        b.bake(
            step.bake_secs,
            format!("Bake {to} at {w} of {pool} traffic for {}", Secs(step.bake_secs)),
        );
        b.gate(&live, &format!("at {w} (step {} of {})", i + 1, steps.len()));
        b.pause(step.pause, &format!("before going beyond {w}"));
    }

    let hold = b.v.spec().rollback.hold_secs;
    b.bake(
        hold,
        format!(
            "Keep the old targets ({}) idle for {} so a rollback is instant",
            list(&old),
            Secs(hold)
        ),
    );
    b.remove_members(&old, format!("Remove the old targets ({}) from {pool}", list(&old)), true);
    b.decommission(&old, format!("Destroy the old targets ({}) running {}", list(&old), b.from()));
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}
