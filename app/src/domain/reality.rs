//! The environment record beside what is really there. A pool's record (its targets, their
//! addresses and releases) is compared with what its router and provider report now, every
//! difference named with the way to resolve it; and a record can be rewritten from what is
//! really there (after a campaign succeeds, or when an operator accepts the live state).
//! Pure: the server reads the backends and hands the observations in.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::environment::{Environment, Target};
use super::ids::{Name, Release};
use super::views::{MemberView, TrafficView};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum DifferenceKind {
    /// In the record, not a member of the router.
    NotInRouter,
    /// A member of the router the record does not list.
    NotInRecord,
    /// The router sends the target's traffic to another address than the record says.
    Address,
    /// The instance runs another release than the record says.
    Release,
    /// The provider has no such instance.
    Gone,
    /// The instance fails its health probe.
    Unhealthy,
    /// The router holds the member out of service (drain or maint) or at weight 0.
    NotServing,
}

impl DifferenceKind {
    /// Accepting the live state resolves it (the record is rewritten); the others need the
    /// target or the router fixed.
    pub fn acceptable(self) -> bool {
        !matches!(self, DifferenceKind::Unhealthy | DifferenceKind::NotServing)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Difference {
    pub target: String,
    pub kind: DifferenceKind,
    /// What differs and how to resolve it, in one sentence.
    pub message: String,
}

/// Every way pool `pool` of `env` differs from `live` (its router read back, each member
/// described by the provider and probed). `gone` are the record's targets the provider says do
/// not exist. An empty answer means a plan compiled from the record matches reality.
pub fn differences(
    env: &Environment,
    pool: &Name,
    live: &TrafficView,
    gone: &BTreeSet<String>,
) -> Vec<Difference> {
    let mut out = Vec::new();
    let Some(p) = env.pool(pool) else {
        return vec![Difference {
            target: String::new(),
            kind: DifferenceKind::NotInRecord,
            message: format!("environment {} has no pool {pool}", env.name),
        }];
    };
    let accept = "or accept the live state (the record is rewritten from the router, audited)";
    let mut push = |target: &str, kind: DifferenceKind, message: String| {
        out.push(Difference { target: target.to_string(), kind, message });
    };
    for t in env.pool_targets(p) {
        let name = t.name.as_str();
        let member = live.members.iter().find(|m| m.target == name);
        if gone.contains(name) || member.is_some_and(|m| m.exists == Some(false)) {
            push(
                name,
                DifferenceKind::Gone,
                format!(
                    "{name} does not exist: the provider has no such instance; re-create it, {accept}"
                ),
            );
        }
        let Some(m) = member else {
            push(
                name,
                DifferenceKind::NotInRouter,
                format!(
                    "{name} ({}) is in the record of pool {pool} but not a member of router {}; \
                     put it back into the router, {accept}",
                    t.address, p.router
                ),
            );
            continue;
        };
        if !same_address(&m.address, &t.address) {
            push(
                name,
                DifferenceKind::Address,
                format!(
                    "router {} sends {name}'s traffic to {} but the record says {}; fix the \
                     router, {accept}",
                    p.router, m.address, t.address
                ),
            );
        }
        if m.exists == Some(true)
            && let Some(r) = &m.release
            && r != t.release.as_str()
        {
            push(
                name,
                DifferenceKind::Release,
                format!("{name} runs {r} but the record says {}; {accept}", t.release),
            );
        }
    }
    for m in &live.members {
        let recorded = p.targets.iter().any(|t| t.as_str() == m.target);
        if !recorded {
            push(
                &m.target,
                DifferenceKind::NotInRecord,
                format!(
                    "{} ({}, {}) is a member of router {} but not in the record of pool {pool}; \
                     remove it from the router, {accept}",
                    m.target,
                    m.address,
                    m.release.as_deref().unwrap_or("release unknown"),
                    p.router
                ),
            );
        }
        if m.healthy == Some(false) {
            push(
                &m.target,
                DifferenceKind::Unhealthy,
                format!(
                    "{} fails its health probe ({}); fix or replace it before a campaign starts",
                    m.target, m.health
                ),
            );
        }
        if recorded && !m.serving() && m.exists != Some(false) {
            push(
                &m.target,
                DifferenceKind::NotServing,
                format!(
                    "{} is {} at {:.2} % in router {}, so it takes no traffic; set it ready at \
                     its share (or remove it from the pool) before a campaign starts",
                    m.target, m.state, m.weight_pct, p.router
                ),
            );
        }
    }
    out
}

/// `127.0.0.1:80` and `127.0.0.1:80` with different spellings of one IP are one address.
fn same_address(a: &str, b: &str) -> bool {
    let parse = |s: &str| s.trim().parse::<std::net::SocketAddr>().ok();
    match (parse(a), parse(b)) {
        (Some(x), Some(y)) => x == y,
        _ => a.trim().eq_ignore_ascii_case(b.trim()),
    }
}

/// Why the record cannot be rewritten from what was read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct AdoptError(pub String);

/// `env` with pool `pool` rewritten to what `live` shows: its members become the pool's
/// targets (address from the router; release and health URL from the provider, else the record,
/// else `hints`), and targets that left the pool and no other pool lists are dropped. Targets of
/// other pools are untouched. `groups` gives the placement of new instances (from the plan).
pub fn adopt(
    env: &Environment,
    pool: &Name,
    live: &[MemberView],
    hints: &AdoptHints,
) -> Result<Environment, AdoptError> {
    let mut next = env.clone();
    let Some(p) = next.pools.iter().position(|p| &p.name == pool) else {
        return Err(AdoptError(format!("environment {} has no pool {pool}", env.name)));
    };
    let mut targets: Vec<Target> = Vec::new();
    for m in live {
        let name = Name::parse(&m.target).map_err(|e| {
            AdoptError(format!("the router's member {:?} cannot be a target name: {e}", m.target))
        })?;
        let recorded = env.target(&name);
        let release = match (&m.release, recorded, hints.release.get(&m.target)) {
            (Some(r), _, _) if m.exists == Some(true) => Release::parse(r).ok(),
            (_, Some(t), _) => Some(t.release.clone()),
            (_, None, Some(r)) => Some(r.clone()),
            (Some(r), None, None) => Release::parse(r).ok(),
            _ => None,
        }
        .ok_or_else(|| {
            AdoptError(format!(
                "cannot tell which release {} runs: its provider does not say",
                m.target
            ))
        })?;
        let health_url =
            m.health_url.clone().or_else(|| recorded.map(|t| t.health_url.clone())).ok_or_else(
                || {
                    AdoptError(format!(
                        "cannot tell the health URL of {}: its provider does not say",
                        m.target
                    ))
                },
            )?;
        let group = recorded
            .map(|t| t.group.clone())
            .or_else(|| hints.group.get(&m.target).cloned())
            .unwrap_or_default();
        targets.push(Target { name, address: m.address.clone(), group, release, health_url });
    }
    // The record's order first (a stable table), then new members in the router's order.
    let old_order: Vec<Name> = next.pools[p].targets.clone();
    targets.sort_by_key(|t| old_order.iter().position(|o| o == &t.name).unwrap_or(usize::MAX));
    let members: Vec<Name> = targets.iter().map(|t| t.name.clone()).collect();
    let left: Vec<Name> = old_order.iter().filter(|n| !members.contains(n)).cloned().collect();
    next.pools[p].targets = members.clone();
    let listed_elsewhere = |n: &Name| {
        next.pools.iter().enumerate().any(|(i, other)| i != p && other.targets.contains(n))
    };
    let keep: Vec<Target> = next
        .targets
        .iter()
        .filter(|t| !members.contains(&t.name))
        .filter(|t| !left.contains(&t.name) || listed_elsewhere(&t.name))
        .cloned()
        .collect();
    let mut all = keep;
    all.extend(targets);
    next.targets = all;
    Ok(next)
}

/// What the plan knows about instances it created, for fields no backend reports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AdoptHints {
    pub group: BTreeMap<String, String>,
    pub release: BTreeMap<String, Release>,
}

/// A pool's targets as one line each, for audit details: `web-1 v1 127.0.0.1:9101`.
pub fn describe_pool(env: &Environment, pool: &Name) -> Vec<String> {
    env.pool(pool)
        .map(|p| {
            env.pool_targets(p)
                .into_iter()
                .map(|t| format!("{} {} {}", t.name, t.release, t.address))
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::testkit::{env, name, release};

    fn member(target: &str, address: &str, release: &str) -> MemberView {
        MemberView {
            target: target.into(),
            address: address.into(),
            weight_pct: 25.0,
            state: "ready".into(),
            release: Some(release.into()),
            exists: Some(true),
            healthy: Some(true),
            health: "200 in 2 ms".into(),
            health_url: Some(format!("http://{address}/healthz")),
        }
    }

    fn live(members: Vec<MemberView>) -> TrafficView {
        TrafficView { pool: "web-pool".into(), members, share_by_release: Vec::new(), error: None }
    }

    fn as_recorded(e: &Environment) -> Vec<MemberView> {
        e.targets.iter().map(|t| member(t.name.as_str(), &t.address, t.release.as_str())).collect()
    }

    #[test]
    fn a_pool_that_is_what_its_record_says_has_no_difference() {
        let e = env(3);
        assert_eq!(
            differences(&e, &name("web-pool"), &live(as_recorded(&e)), &BTreeSet::new()),
            []
        );
    }

    #[test]
    fn the_record_of_a_finished_campaign_that_was_never_updated_differs_in_every_way() {
        // The record still lists web-1..2 on v1; the router holds what campaign 1 left.
        let e = env(2);
        let now = live(vec![
            member("web-1-v2-c1", "127.0.0.1:9111", "v2"),
            member("web-2-v2-c1", "127.0.0.1:9112", "v2"),
        ]);
        let gone: BTreeSet<String> = ["web-1".to_string(), "web-2".to_string()].into();
        let d = differences(&e, &name("web-pool"), &now, &gone);
        let kinds: Vec<(String, DifferenceKind)> =
            d.iter().map(|d| (d.target.clone(), d.kind)).collect();
        assert_eq!(
            kinds,
            [
                ("web-1".into(), DifferenceKind::Gone),
                ("web-1".into(), DifferenceKind::NotInRouter),
                ("web-2".into(), DifferenceKind::Gone),
                ("web-2".into(), DifferenceKind::NotInRouter),
                ("web-1-v2-c1".into(), DifferenceKind::NotInRecord),
                ("web-2-v2-c1".into(), DifferenceKind::NotInRecord),
            ]
        );
        assert!(d[1].message.contains("accept the live state"), "{}", d[1].message);
        assert!(d.iter().all(|d| d.kind.acceptable()));
    }

    #[test]
    fn a_wrong_address_release_an_unhealthy_and_a_drained_member_are_each_named() {
        let e = env(4);
        let mut m = as_recorded(&e);
        m[0].address = "127.0.0.1:9999".into();
        m[1].release = Some("v9".into());
        m[2].healthy = Some(false);
        m[2].health = "connection refused".into();
        m[3].state = "drain".into();
        let d = differences(&e, &name("web-pool"), &live(m), &BTreeSet::new());
        let kinds: Vec<DifferenceKind> = d.iter().map(|d| d.kind).collect();
        assert_eq!(
            kinds,
            [
                DifferenceKind::Address,
                DifferenceKind::Release,
                DifferenceKind::Unhealthy,
                DifferenceKind::NotServing
            ]
        );
        assert!(d[2].message.contains("connection refused"));
        assert!(!d[2].kind.acceptable() && !d[3].kind.acceptable());
        // The same address spelt differently is the same address.
        assert!(same_address("127.0.0.1:80", " 127.0.0.1:80"));
    }

    #[test]
    fn adopting_the_live_state_replaces_the_pools_targets_and_keeps_other_pools() {
        let mut e = env(2);
        // web-2 is also in a second pool, so it stays in the environment.
        e.pools.push(crate::domain::environment::Pool {
            name: name("admin-pool"),
            router: name("haproxy-main"),
            targets: vec![name("web-2")],
        });
        let now = vec![
            member("web-1-v2-c1", "127.0.0.1:9111", "v2"),
            member("web-2-v2-c1", "127.0.0.1:9112", "v2"),
        ];
        let mut hints = AdoptHints::default();
        hints.group.insert("web-1-v2-c1".into(), "zone-a".into());
        let next = adopt(&e, &name("web-pool"), &now, &hints).expect("adopted");
        let pool = next.pool(&name("web-pool")).expect("pool");
        assert_eq!(pool.targets, [name("web-1-v2-c1"), name("web-2-v2-c1")]);
        let names: Vec<&str> = next.targets.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["web-2", "web-1-v2-c1", "web-2-v2-c1"], "web-1 left every pool");
        let t = next.target(&name("web-1-v2-c1")).expect("target");
        assert_eq!((t.release.clone(), t.group.as_str()), (release("v2"), "zone-a"));
        assert_eq!(t.health_url, "http://127.0.0.1:9111/healthz");
        assert_eq!(
            differences(&next, &name("web-pool"), &live(now), &BTreeSet::new()),
            [],
            "after adopting, the record is what is there"
        );
    }

    #[test]
    fn a_member_whose_release_nobody_knows_cannot_be_adopted() {
        let e = env(1);
        let mut m = member("stranger", "127.0.0.1:9500", "v2");
        m.exists = None;
        m.release = None;
        let err = adopt(&e, &name("web-pool"), &[m], &AdoptHints::default()).expect_err("unknown");
        assert!(err.0.contains("which release stranger runs"), "{err}");
    }
}
