//! Judges a health gate over samples of the new release: pass, fail, or wait for more data. Pure
//! and time-explicit (`now` is an argument) so the engine, the UI and tests agree on every verdict.
//! It never passes on no data, fails when the data is still too thin at the deadline, and fails on
//! a breach only after it has held for `consecutive_failures` evaluations in a row.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::campaign::GateSpec;
use super::ids::Secs;

/// One scrape or probe round for the new release, covering a short interval ending at `at`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Sample {
    pub at: DateTime<Utc>,
    pub requests: u64,
    pub errors: u64,
    pub p99_ms: Option<f64>,
    pub probes: u32,
    pub probe_failures: u32,
}

impl Sample {
    fn has_data(&self) -> bool {
        self.requests > 0 || self.probes > 0 || self.p99_ms.is_some()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Pass,
    Fail,
    Wait,
}

/// The numbers behind a verdict, over the gate's window ending at `now`. `None`: no data for it.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct GateMetrics {
    pub samples: u32,
    pub error_rate: Option<f64>,
    /// The worst p99 reported in the window: a gate should not average a bad minute away.
    pub p99_ms: Option<f64>,
    pub probe_success: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Verdict {
    pub outcome: Outcome,
    /// For people: which limit was crossed or what is still missing.
    pub reason: String,
    pub metrics: GateMetrics,
    /// The canary-versus-baseline comparison, when the gate asks for one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comparison: Option<super::compare::Comparison>,
}

fn metrics(
    gate: &GateSpec,
    samples: &[&Sample],
    started_at: DateTime<Utc>,
    end: DateTime<Utc>,
) -> GateMetrics {
    let window = Duration::seconds(i64::try_from(gate.window_secs).unwrap_or(i64::MAX / 1000));
    let inside: Vec<&&Sample> = samples
        .iter()
        .filter(|s| s.has_data() && s.at >= started_at && s.at > end - window && s.at <= end)
        .collect();
    let requests: u64 = inside.iter().map(|s| s.requests).sum();
    let errors: u64 = inside.iter().map(|s| s.errors.min(s.requests)).sum();
    let probes: u64 = inside.iter().map(|s| u64::from(s.probes)).sum();
    let probe_failures: u64 =
        inside.iter().map(|s| u64::from(s.probe_failures.min(s.probes))).sum();
    #[allow(clippy::cast_precision_loss)]
    let ratio = |a: u64, b: u64| (b > 0).then(|| a as f64 / b as f64);
    GateMetrics {
        samples: u32::try_from(inside.len()).unwrap_or(u32::MAX),
        error_rate: ratio(errors, requests),
        p99_ms: inside.iter().filter_map(|s| s.p99_ms).reduce(f64::max),
        probe_success: ratio(probes - probe_failures, probes),
    }
}

fn pct(f: f64) -> String {
    format!("{} %", (f * 10_000.0).round() / 100.0)
}

fn breaches(gate: &GateSpec, m: &GateMetrics) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(e) = m.error_rate
        && e > gate.max_error_rate
    {
        out.push(format!("error rate {} > {}", pct(e), pct(gate.max_error_rate)));
    }
    #[allow(clippy::cast_precision_loss)]
    if let Some(p) = m.p99_ms
        && p > gate.max_p99_ms as f64
    {
        out.push(format!("p99 {p} ms > {} ms", gate.max_p99_ms));
    }
    if let Some(s) = m.probe_success
        && s < gate.min_probe_success
    {
        out.push(format!("probe success {} < {}", pct(s), pct(gate.min_probe_success)));
    }
    out
}

pub fn judge(
    gate: &GateSpec,
    samples: &[Sample],
    started_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Verdict {
    let mut seen: Vec<&Sample> =
        samples.iter().filter(|s| s.at >= started_at && s.at <= now && s.has_data()).collect();
    seen.sort_by_key(|s| s.at);
    let min_samples = gate.min_samples.max(1);
    let current = metrics(gate, &seen, started_at, now);
    let past_deadline = now - started_at
        >= Duration::seconds(i64::try_from(gate.deadline_secs).unwrap_or(i64::MAX / 1000));
    let verdict = |outcome, reason: String| Verdict {
        outcome,
        reason,
        metrics: current.clone(),
        comparison: None,
    };

    // A breach counts once per evaluation point (each sample's arrival) that had enough data.
    let needed = usize::try_from(gate.consecutive_failures.max(1)).unwrap_or(usize::MAX);
    let streak = seen
        .iter()
        .rev()
        .map(|s| metrics(gate, &seen, started_at, s.at))
        .take_while(|m| m.samples >= min_samples && !breaches(gate, m).is_empty())
        .take(needed)
        .count();
    let now_breaching = breaches(gate, &current);
    if streak >= needed && !now_breaching.is_empty() {
        return verdict(
            Outcome::Fail,
            format!(
                "{} for {needed} evaluation{} in a row",
                now_breaching.join(", "),
                if needed == 1 { "" } else { "s" }
            ),
        );
    }
    if current.samples < min_samples {
        let have = current.samples;
        return if past_deadline {
            verdict(
                Outcome::Fail,
                format!(
                    "only {have} of {min_samples} samples in the last {} at the deadline ({}); not enough data to judge",
                    Secs(gate.window_secs),
                    Secs(gate.deadline_secs)
                ),
            )
        } else {
            verdict(
                Outcome::Wait,
                format!("{have} of {min_samples} samples so far; waiting for more data"),
            )
        };
    }
    if !now_breaching.is_empty() {
        let reason =
            format!("{} ({streak} of {needed} evaluations in a row)", now_breaching.join(", "));
        return if past_deadline {
            verdict(Outcome::Fail, format!("{reason}; deadline reached"))
        } else {
            verdict(Outcome::Wait, reason)
        };
    }
    let mut ok = Vec::new();
    if let Some(e) = current.error_rate {
        ok.push(format!("error rate {} ≤ {}", pct(e), pct(gate.max_error_rate)));
    }
    if let Some(p) = current.p99_ms {
        ok.push(format!("p99 {p} ms ≤ {} ms", gate.max_p99_ms));
    }
    if let Some(s) = current.probe_success {
        ok.push(format!("probe success {} ≥ {}", pct(s), pct(gate.min_probe_success)));
    }
    verdict(Outcome::Pass, format!("{} over {} samples", ok.join(", "), current.samples))
}

/// Continuous analysis between gate steps (bakes, pauses, approval waits, the hold before the
/// old set goes, the watch after success): a `Fail` verdict only when a breach has held for
/// `consecutive_failures` evaluations in a row with enough data. Too little data is never a
/// failure here (the gate step itself waits for data and has the deadline).
pub fn watch(
    gate: &GateSpec,
    samples: &[Sample],
    since: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Option<Verdict> {
    let mut seen: Vec<&Sample> =
        samples.iter().filter(|s| s.at >= since && s.at <= now && s.has_data()).collect();
    seen.sort_by_key(|s| s.at);
    let min_samples = gate.min_samples.max(1);
    let needed = usize::try_from(gate.consecutive_failures.max(1)).unwrap_or(usize::MAX);
    let streak = seen
        .iter()
        .rev()
        .map(|s| metrics(gate, &seen, since, s.at))
        .take_while(|m| m.samples >= min_samples && !breaches(gate, m).is_empty())
        .take(needed)
        .count();
    let current = metrics(gate, &seen, since, now);
    let now_breaching = breaches(gate, &current);
    (streak >= needed && !now_breaching.is_empty()).then(|| Verdict {
        outcome: Outcome::Fail,
        reason: format!(
            "{} for {needed} evaluation{} in a row",
            now_breaching.join(", "),
            if needed == 1 { "" } else { "s" }
        ),
        metrics: current,
        comparison: None,
    })
}

/// Folds a canary-versus-baseline comparison into a gate's verdict, as the gate step does: a
/// failed comparison fails the gate; a marginal one, or too little data, waits until the
/// deadline, then fails (too little data with `on_low_data = "fail"`) or needs a person: the
/// returned reason (only when the gate has not failed anyway).
pub fn fold_comparison(
    v: &mut Verdict,
    spec: &super::compare::CompareSpec,
    cmp: super::compare::Comparison,
    past_deadline: bool,
) -> Option<String> {
    use super::compare::{CompareOutcome, LowData};
    let mut for_a_person = None;
    match cmp.outcome {
        CompareOutcome::Fail => {
            v.outcome = Outcome::Fail;
            v.reason = format!("{}; canary vs baseline: {}", v.reason, cmp.reason);
        }
        CompareOutcome::Pass => {}
        CompareOutcome::Marginal | CompareOutcome::NotEnoughData if !past_deadline => {
            if v.outcome == Outcome::Pass {
                v.outcome = Outcome::Wait;
            }
            v.reason = format!("{}; canary vs baseline: {}", v.reason, cmp.reason);
        }
        CompareOutcome::NotEnoughData if spec.on_low_data == LowData::Fail => {
            v.outcome = Outcome::Fail;
            v.reason = format!("{}; canary vs baseline at the deadline: {}", v.reason, cmp.reason);
        }
        CompareOutcome::Marginal | CompareOutcome::NotEnoughData => {
            if v.outcome != Outcome::Fail {
                for_a_person = Some(cmp.reason.clone());
            }
        }
    }
    v.comparison = Some(cmp);
    for_a_person
}

/// One moment of a replay: the verdict the gate would have given then.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ReplayPoint {
    pub at: DateTime<Utc>,
    pub verdict: Verdict,
}

/// What `gate` would have said over recorded `samples`, judged at every sample's arrival as if
/// the gate had opened at `opened`: every point where the outcome changed (the first point
/// always), so a person sees when it would have passed, waited or failed, and why.
pub fn replay(gate: &GateSpec, samples: &[Sample], opened: DateTime<Utc>) -> Vec<ReplayPoint> {
    replay_with(gate, samples, opened, |_, v| v)
}

/// [`replay`], with `then(at, verdict)` refining each moment's verdict (the replay of a
/// comparative gate folds in its canary-versus-baseline comparison at that moment).
pub fn replay_with(
    gate: &GateSpec,
    samples: &[Sample],
    opened: DateTime<Utc>,
    mut then: impl FnMut(DateTime<Utc>, Verdict) -> Verdict,
) -> Vec<ReplayPoint> {
    let mut times: Vec<DateTime<Utc>> =
        samples.iter().filter(|s| s.at >= opened).map(|s| s.at).collect();
    times.sort();
    times.dedup();
    let mut out: Vec<ReplayPoint> = Vec::new();
    for at in times {
        let verdict = then(at, judge(gate, samples, opened, at));
        if out.last().is_none_or(|p| p.verdict.outcome != verdict.outcome) {
            out.push(ReplayPoint { at, verdict });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::testkit::at;

    fn t0() -> DateTime<Utc> {
        at("2025-06-01T22:00:00Z")
    }

    fn secs(s: i64) -> DateTime<Utc> {
        t0() + Duration::seconds(s)
    }

    fn healthy(s: i64) -> Sample {
        Sample {
            at: secs(s),
            requests: 100,
            errors: 0,
            p99_ms: Some(120.0),
            probes: 1,
            probe_failures: 0,
        }
    }

    fn erroring(s: i64) -> Sample {
        Sample { errors: 20, ..healthy(s) }
    }

    /// One sample every 5 s from `from` to `to` inclusive.
    fn every_5s(from: i64, to: i64, make: fn(i64) -> Sample) -> Vec<Sample> {
        (from..=to).step_by(5).map(make).collect()
    }

    #[test]
    fn no_data_means_wait_never_pass() {
        let v = judge(&GateSpec::default(), &[], t0(), secs(30));
        assert_eq!(v.outcome, Outcome::Wait);
        assert_eq!(v.reason, "0 of 10 samples so far; waiting for more data");
        assert_eq!(v.metrics, GateMetrics::default());
    }

    #[test]
    fn samples_without_any_measurement_do_not_count() {
        let empty: Vec<Sample> = (1..=20)
            .map(|s| Sample { requests: 0, p99_ms: None, probes: 0, ..healthy(s) })
            .collect();
        assert_eq!(judge(&GateSpec::default(), &empty, t0(), secs(30)).outcome, Outcome::Wait);
    }

    #[test]
    fn too_little_data_past_the_deadline_fails() {
        let v = judge(
            &GateSpec::default(),
            &[healthy(10), healthy(250), healthy(290)],
            t0(),
            secs(300),
        );
        assert_eq!(v.outcome, Outcome::Fail);
        assert_eq!(
            v.reason,
            "only 2 of 10 samples in the last 1m at the deadline (5m); not enough data to judge"
        );
    }

    #[test]
    fn enough_healthy_samples_pass_with_the_numbers_behind_it() {
        let v = judge(&GateSpec::default(), &every_5s(5, 60, healthy), t0(), secs(60));
        assert_eq!(v.outcome, Outcome::Pass, "{}", v.reason);
        assert_eq!(v.metrics.samples, 12);
        assert_eq!(v.metrics.error_rate, Some(0.0));
        assert_eq!(v.metrics.p99_ms, Some(120.0));
        assert_eq!(v.metrics.probe_success, Some(1.0));
        assert_eq!(
            v.reason,
            "error rate 0 % ≤ 1 %, p99 120 ms ≤ 1000 ms, probe success 100 % ≥ 99 % over 12 samples"
        );
    }

    #[test]
    fn a_breach_waits_until_it_has_held_for_the_consecutive_limit() {
        let gate = GateSpec::default();
        let mut samples = every_5s(5, 55, healthy);
        samples.push(erroring(60));
        let v = judge(&gate, &samples, t0(), secs(60));
        assert_eq!(v.outcome, Outcome::Wait, "{}", v.reason);
        assert!(v.reason.starts_with("error rate 1.67 % > 1 %"), "{}", v.reason);

        samples.extend([erroring(65), erroring(70)]);
        let v = judge(&gate, &samples, t0(), secs(70));
        assert_eq!(v.outcome, Outcome::Fail, "{}", v.reason);
        assert!(v.reason.ends_with("for 3 evaluations in a row"), "{}", v.reason);
    }

    #[test]
    fn a_slow_p99_or_failing_probes_fail_the_gate_too() {
        let gate = GateSpec { consecutive_failures: 1, ..GateSpec::default() };
        let slow = every_5s(5, 60, |s| Sample { p99_ms: Some(2500.0), ..healthy(s) });
        assert_eq!(judge(&gate, &slow, t0(), secs(60)).outcome, Outcome::Fail);
        let flaky = every_5s(5, 60, |s| Sample { probe_failures: 1, ..healthy(s) });
        let v = judge(&gate, &flaky, t0(), secs(60));
        assert_eq!(v.outcome, Outcome::Fail);
        assert_eq!(v.metrics.probe_success, Some(0.0));
    }

    #[test]
    fn samples_from_before_the_gate_opened_or_outside_the_window_are_ignored() {
        let mut samples = every_5s(-60, -5, erroring);
        samples.extend(every_5s(5, 120, healthy));
        let v = judge(&GateSpec::default(), &samples, t0(), secs(120));
        assert_eq!(v.outcome, Outcome::Pass, "{}", v.reason);
        assert_eq!(v.metrics.samples, 12, "only the last 60 s count");
    }

    #[test]
    fn continuous_analysis_fails_only_a_sustained_breach_never_on_thin_data() {
        let gate = GateSpec { consecutive_failures: 2, min_samples: 3, ..GateSpec::default() };
        assert_eq!(watch(&gate, &[], t0(), secs(600)), None, "no data is no failure here");
        let mut samples: Vec<Sample> = (1..=10).map(healthy).collect();
        assert_eq!(watch(&gate, &samples, t0(), secs(10)), None);
        samples.push(Sample { errors: 100, ..healthy(11) });
        assert_eq!(watch(&gate, &samples, t0(), secs(11)), None, "one bad round is not two");
        samples.push(Sample { errors: 100, ..healthy(12) });
        let v = watch(&gate, &samples, t0(), secs(12)).expect("two bad rounds in a row");
        assert_eq!(v.outcome, Outcome::Fail);
        assert!(
            v.reason.starts_with("error rate") && v.reason.ends_with("for 2 evaluations in a row"),
            "{}",
            v.reason
        );
    }

    #[test]
    fn a_replay_shows_when_the_gate_would_have_waited_passed_and_failed() {
        let gate = GateSpec {
            min_samples: 3,
            window_secs: 10,
            consecutive_failures: 2,
            ..GateSpec::default()
        };
        let mut samples: Vec<Sample> = (1..=20).map(healthy).collect();
        samples.extend((21..=25).map(erroring));
        let points = replay(&gate, &samples, t0());
        let outcomes: Vec<(i64, Outcome)> =
            points.iter().map(|p| ((p.at - t0()).num_seconds(), p.verdict.outcome)).collect();
        assert_eq!(outcomes[0], (1, Outcome::Wait));
        assert_eq!(outcomes[1], (3, Outcome::Pass));
        assert_eq!(outcomes.last().map(|o| o.1), Some(Outcome::Fail));
        assert!(outcomes.iter().any(|o| o.0 > 20 && o.1 == Outcome::Fail), "{outcomes:?}");
    }

    #[test]
    fn a_breach_that_outlasts_the_deadline_fails_even_below_the_consecutive_limit() {
        let gate = GateSpec { consecutive_failures: 100, ..GateSpec::default() };
        let v = judge(&gate, &every_5s(5, 300, erroring), t0(), secs(300));
        assert_eq!(v.outcome, Outcome::Fail);
        assert!(v.reason.ends_with("deadline reached"), "{}", v.reason);
    }
}
