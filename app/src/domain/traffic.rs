//! A model of what the campaign's backends hold — pool members with weights and states, instances
//! with releases, flag percentages — and a simulator that applies a step's calls to it. The plan
//! preview uses it to show each step's effect; the rollback planner uses it to know what to undo;
//! tests use it to prove plans keep traffic flowing. It mirrors desired state only; the engine
//! reads the real state back from the backends.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::ids::{Name, Percent, Release, Weight};
use super::plan::{BackendCall, FlagCall, MemberState, ProviderCall, RouterCall, Step};
use super::validate::ValidSpec;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct TrafficState {
    pub pool: Name,
    /// Pool members (for a DNS router: the record's targets), by target name.
    pub members: BTreeMap<Name, Member>,
    /// Instances that exist at the provider, in the pool or not.
    pub instances: BTreeMap<Name, Instance>,
    /// Set when the pool's router is DNS: the record that stands for the pool.
    pub dns_record: Option<String>,
    pub flags: BTreeMap<Name, Percent>,
    /// Targets the preview route reaches; empty when there is no preview route.
    pub preview: Vec<Name>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Member {
    pub weight: Weight,
    pub state: MemberState,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Instance {
    pub release: Release,
    pub group: String,
}

impl TrafficState {
    /// Members that take new requests: ready, weighted above zero, and backed by an instance.
    pub fn serving(&self) -> Vec<(&Name, &Release, Weight)> {
        self.members
            .iter()
            .filter(|(_, m)| m.state == MemberState::Ready && !m.weight.is_zero())
            .filter_map(|(n, m)| self.instances.get(n).map(|i| (n, &i.release, m.weight)))
            .collect()
    }

    pub fn serving_count(&self) -> usize {
        self.serving().len()
    }

    pub fn release_of(&self, target: &Name) -> Option<&Release> {
        self.instances.get(target).map(|i| &i.release)
    }
}

/// The state before the campaign's first step: every pool target a member, ready, at an even
/// share, running the release the environment says it runs.
pub fn initial_traffic(v: &ValidSpec) -> TrafficState {
    let targets = v.targets();
    let members = targets
        .iter()
        .zip(Weight::FULL.split_even(targets.len()))
        .map(|(t, weight)| (t.name.clone(), Member { weight, state: MemberState::Ready }))
        .collect();
    let instances = targets
        .iter()
        .map(|t| (t.name.clone(), Instance { release: t.release.clone(), group: t.group.clone() }))
        .collect();
    let router = v.router();
    TrafficState {
        pool: v.pool().name.clone(),
        members,
        instances,
        dns_record: router.is_dns_router().then(|| router.dns_record(&v.pool().name)),
        flags: BTreeMap::new(),
        preview: Vec::new(),
    }
}

/// Applies a step's calls as the backends would. Calls for another pool or record are ignored,
/// and calls on things that don't exist change nothing, like the idempotent adapters they model.
pub fn apply(state: &mut TrafficState, step: &Step) {
    for call in &step.calls {
        apply_call(state, call);
    }
}

fn apply_call(state: &mut TrafficState, call: &BackendCall) {
    match call {
        BackendCall::Provider { call, .. } => match call {
            ProviderCall::Create { target, release, group } => {
                state.instances.insert(
                    target.clone(),
                    Instance { release: release.clone(), group: group.clone() },
                );
            }
            ProviderCall::Replace { target, release } => {
                if let Some(i) = state.instances.get_mut(target) {
                    i.release = release.clone();
                }
            }
            ProviderCall::Destroy { target } => {
                state.instances.remove(target);
            }
        },
        BackendCall::Router { call, .. } => apply_router(state, call),
        BackendCall::Flag { call: FlagCall::Set { flag, percent } } => {
            state.flags.insert(flag.clone(), *percent);
        }
        BackendCall::Health { .. } | BackendCall::Notify { .. } => {}
    }
}

fn apply_router(state: &mut TrafficState, call: &RouterCall) {
    let ours = |pool: &Name| pool == &state.pool;
    match call {
        RouterCall::SetWeight { pool, target, weight } if ours(pool) => {
            if let Some(m) = state.members.get_mut(target) {
                m.weight = *weight;
            }
        }
        RouterCall::SetState { pool, target, state: s } if ours(pool) => {
            if let Some(m) = state.members.get_mut(target) {
                m.state = *s;
            }
        }
        RouterCall::AddMember { pool, target, weight } if ours(pool) => {
            state
                .members
                .insert(target.clone(), Member { weight: *weight, state: MemberState::Ready });
        }
        RouterCall::RemoveMember { pool, target } if ours(pool) => {
            state.members.remove(target);
        }
        RouterCall::SwitchDns { record, targets } if state.dns_record.as_ref() == Some(record) => {
            state.members = targets
                .iter()
                .cloned()
                .zip(Weight::FULL.split_even(targets.len()))
                .map(|(t, weight)| (t, Member { weight, state: MemberState::Ready }))
                .collect();
        }
        RouterCall::SetPreviewRoute { pool, targets, .. } if ours(pool) => {
            state.preview = targets.clone();
        }
        RouterCall::ClearPreviewRoute { pool } if ours(pool) => state.preview.clear(),
        _ => {}
    }
}

/// Each release's share of the pool's serving traffic; the shares add up to exactly 100 % (or the
/// map is empty when nothing serves). Largest-remainder rounding keeps the sum exact.
pub fn share_by_release(state: &TrafficState) -> BTreeMap<Release, Weight> {
    let mut by_release: BTreeMap<&Release, u64> = BTreeMap::new();
    for (_, release, weight) in state.serving() {
        *by_release.entry(release).or_default() += u64::from(weight.basis_points());
    }
    let total: u64 = by_release.values().sum();
    if total == 0 {
        return BTreeMap::new();
    }
    let full = u64::from(Weight::FULL.basis_points());
    let mut parts: Vec<(&Release, u64, u64)> =
        by_release.iter().map(|(r, w)| (*r, w * full / total, w * full % total)).collect();
    let assigned: u64 = parts.iter().map(|p| p.1).sum();
    let mut order: Vec<usize> = (0..parts.len()).collect();
    order.sort_by(|&a, &b| parts[b].2.cmp(&parts[a].2).then(a.cmp(&b)));
    for &i in order.iter().take(usize::try_from(full - assigned).unwrap_or(0)) {
        parts[i].1 += 1;
    }
    parts
        .into_iter()
        .map(|(r, bp, _)| {
            (r.clone(), Weight::saturating_from_basis_points(u32::try_from(bp).unwrap_or(u32::MAX)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::campaign::Switch;
    use crate::domain::testkit::{FROM, blue_green, env, release, spec, valid};

    #[test]
    fn shares_add_up_to_exactly_100_percent_even_when_weights_divide_unevenly() {
        let v = valid(&spec(blue_green(Switch::AtOnce)), &env(3));
        let mut state = initial_traffic(&v);
        state
            .instances
            .entry(crate::domain::testkit::name("web-3"))
            .and_modify(|i| i.release = release("v2.1.0"));
        let shares = share_by_release(&state);
        let bp: Vec<u32> = shares.values().map(|w| w.basis_points()).collect();
        assert_eq!(bp, [6667, 3333]);
        assert_eq!(bp.iter().sum::<u32>(), 10_000);
    }

    #[test]
    fn drained_and_zero_weight_members_take_no_share() {
        let v = valid(&spec(blue_green(Switch::AtOnce)), &env(2));
        let mut state = initial_traffic(&v);
        if let Some(m) = state.members.values_mut().next() {
            m.state = MemberState::Drain;
        }
        assert_eq!(state.serving_count(), 1);
        assert_eq!(share_by_release(&state).get(&release(FROM)), Some(&Weight::FULL));
        for m in state.members.values_mut() {
            m.weight = Weight::ZERO;
        }
        assert!(share_by_release(&state).is_empty());
    }

    #[test]
    fn the_initial_state_is_an_even_split_on_the_running_release() {
        let v = valid(&spec(blue_green(Switch::AtOnce)), &env(4));
        let state = initial_traffic(&v);
        assert!(
            state
                .members
                .values()
                .all(|m| m.weight.basis_points() == 2500 && m.state == MemberState::Ready)
        );
        assert_eq!(state.dns_record, None);
    }
}
