//! Feature flag: raise a named flag's rollout percentage step by step, with a bake, a gate and an
//! optional pause after each. Instances are not touched: the new behaviour ships dark inside the
//! running release and the flag decides who sees it.

use super::super::campaign::FlagStep;
use super::super::ids::{Name, Secs};
use super::super::plan::{BackendCall, FlagCall, StepKind, timing};
use super::Builder;

pub(super) fn plan(b: &mut Builder<'_>, steps: &[FlagStep]) {
    let Some(flag) = b.v.flag().cloned() else {
        b.notes.push("no flag name; nothing to roll out".to_string());
        return;
    };
    let targets: Vec<Name> = b.v.targets().iter().map(|t| t.name.clone()).collect();
    for (i, step) in steps.iter().enumerate() {
        let p = step.percent;
        let call = BackendCall::Flag { call: FlagCall::Set { flag: flag.clone(), percent: p } };
        b.push(
            StepKind::SetFlag,
            format!("Turn flag {flag} on for {p} of requests ({} behaviour)", b.to()),
            vec![call],
            timing::FLAG,
        );
        b.bake(step.bake_secs, format!("Bake flag {flag} at {p} for {}", Secs(step.bake_secs)));
        b.gate(&targets, &format!("with flag {flag} at {p} (step {} of {})", i + 1, steps.len()));
        b.pause(step.pause, &format!("before raising flag {flag} beyond {p}"));
    }
}
