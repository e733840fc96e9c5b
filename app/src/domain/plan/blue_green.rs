//! Blue-green: provision a green set the size of blue, wait until it is healthy, let people verify
//! it through the preview route, move traffic (at once or in weighted steps), bake, keep blue idle
//! for the rollback hold time, then remove and destroy it. On a DNS router the switch rewrites the
//! record and the plan then waits out the old record's TTL, so the bake sees all traffic on green
//! and blue is not destroyed while resolvers still send to it.

use super::super::campaign::{Pause, Switch};
use super::super::ids::{Name, Secs, Weight};
use super::{Builder, list, new_instances};

pub(super) fn plan(b: &mut Builder<'_>, switch: &Switch, bake_secs: u64, verify_preview: bool) {
    let (pool, to) = (b.pool().clone(), b.to().clone());
    let blue: Vec<Name> = b.v.targets().iter().map(|t| t.name.clone()).collect();
    let green_spec = new_instances(b.v);
    let green: Vec<Name> = green_spec.iter().map(|(n, _)| n.clone()).collect();

    b.provision(
        &green_spec,
        &to,
        format!(
            "Provision {} green target{} on {to} beside blue ({}): {}",
            green.len(),
            if green.len() == 1 { "" } else { "s" },
            list(&blue),
            list(&green)
        ),
    );
    b.wait_healthy(&green, &to);

    if !b.is_dns() {
        let zero: Vec<(Name, Weight)> = green.iter().map(|g| (g.clone(), Weight::ZERO)).collect();
        let preview =
            b.v.spec()
                .preview_route
                .as_ref()
                .map_or_else(String::new, |r| format!("; requests with {r} reach them"));
        b.add_members(
            &zero,
            format!(
                "Add the green targets to {pool} at 0 % so they take no live traffic yet{preview}"
            ),
            true,
        );
    }
    if verify_preview {
        b.pause(Pause::Approval, &format!("after people verify {to} through the preview route"));
    }

    match switch {
        Switch::AtOnce => {
            if b.is_dns() {
                b.switch_dns(
                    &green,
                    format!(
                        "Point {}'s DNS record at the green targets, moving all traffic to {to}",
                        pool
                    ),
                );
                b.wait_out_ttl(&format!("blue ({})", list(&blue)));
            } else {
                let weights = shares(&green, &blue, Weight::FULL);
                b.set_weights(
                    &weights,
                    format!("Switch all {pool} traffic to {to}: green 100 %, blue 0 %"),
                );
            }
            b.bake(
                bake_secs,
                format!("Bake {to} at 100 % of {pool} traffic for {}", Secs(bake_secs)),
            );
            b.gate(&green, "on the green targets");
        }
        Switch::Steps(steps) => {
            for w in steps {
                b.set_weights(
                    &shares(&green, &blue, *w),
                    if w.is_full() {
                        format!("Shift all {pool} traffic to {to} (green); blue takes none")
                    } else {
                        format!(
                            "Shift {w} of {pool} traffic to {to} (green); {} stays on blue",
                            w.complement()
                        )
                    },
                );
                b.bake(
                    bake_secs,
                    format!("Bake {to} at {w} of {pool} traffic for {}", Secs(bake_secs)),
                );
                b.gate(&green, &format!("at {w} on the green targets"));
            }
        }
    }

    let hold = b.v.spec().rollback.hold_secs;
    b.bake(
        hold,
        format!(
            "Keep the blue targets ({}) idle for {} so a rollback is instant",
            list(&blue),
            Secs(hold)
        ),
    );
    if !b.is_dns() {
        b.remove_members(&blue, format!("Remove the blue targets from {pool}"), true);
    }
    b.decommission(
        &blue,
        format!("Destroy the blue targets ({}) running {}", list(&blue), b.from()),
    );
}

/// Green gets `green_share` split evenly, blue the rest; all members listed so each call is absolute.
pub(super) fn shares(new: &[Name], old: &[Name], new_share: Weight) -> Vec<(Name, Weight)> {
    new.iter()
        .cloned()
        .zip(new_share.split_even(new.len()))
        .chain(old.iter().cloned().zip(new_share.complement().split_even(old.len())))
        .collect()
}
