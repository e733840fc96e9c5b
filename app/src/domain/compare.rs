//! Canary versus baseline: the new release's targets judged against the stable ones over the
//! same window, Kayenta style. Latency with a one-sided Mann-Whitney U test (is the canary's
//! latency stochastically greater?), errors with a one-sided two-proportion z-test (is its error
//! rate higher?), each metric also needing a difference beyond its tolerance to count as worse.
//! The score is the share of metrics that pass; the verdict is pass, marginal or fail. Too few
//! data points on either side is "not enough data", never a pass. Pure.

use serde::{Deserialize, Serialize};

/// What a comparative gate asks for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct CompareSpec {
    /// Latency points (target-rounds) and rounds with requests each side needs.
    #[serde(default = "default_min_points")]
    pub min_points: u32,
    /// One-sided confidence of each test (0.5–0.999).
    #[serde(default = "default_confidence")]
    pub confidence: f64,
    /// The canary's median latency may exceed the baseline's by this share before it counts.
    #[serde(default = "default_latency_tolerance")]
    pub latency_tolerance: f64,
    /// The canary's error rate may exceed the baseline's by this much (a fraction) first.
    #[serde(default = "default_error_tolerance")]
    pub error_tolerance: f64,
    /// Score (0–100) at or above which the comparison passes.
    #[serde(default = "default_pass_score")]
    pub pass_score: f64,
    /// Score at or above which (and below `pass_score`) it is marginal: a person decides.
    #[serde(default = "default_marginal_score")]
    pub marginal_score: f64,
    /// What too little data at the gate's deadline means.
    #[serde(default)]
    pub on_low_data: LowData,
}

fn default_min_points() -> u32 {
    20
}
fn default_confidence() -> f64 {
    0.95
}
fn default_latency_tolerance() -> f64 {
    0.1
}
fn default_error_tolerance() -> f64 {
    0.005
}
fn default_pass_score() -> f64 {
    75.0
}
fn default_marginal_score() -> f64 {
    50.0
}

impl Default for CompareSpec {
    fn default() -> Self {
        Self {
            min_points: default_min_points(),
            confidence: default_confidence(),
            latency_tolerance: default_latency_tolerance(),
            error_tolerance: default_error_tolerance(),
            pass_score: default_pass_score(),
            marginal_score: default_marginal_score(),
            on_low_data: LowData::Fail,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum LowData {
    /// Still too little data at the deadline fails the gate (low traffic never passes).
    #[default]
    Fail,
    /// … pauses the campaign for a person instead.
    Pause,
}

/// One side's data over the window.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Side {
    /// Latency points, e.g. each target's median of each sampling round, in ms.
    pub latency_ms: Vec<f64>,
    pub requests: u64,
    pub errors: u64,
    /// Rounds that had requests (the error test's data points).
    pub rounds_with_requests: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum MetricResult {
    Pass,
    /// Significantly worse and beyond its tolerance.
    Worse,
    NotEnoughData,
}

/// One metric compared, with the numbers behind it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct MetricComparison {
    pub metric: String,
    pub canary_points: u32,
    pub baseline_points: u32,
    /// Median latency (ms) or error rate (fraction) of each side.
    pub canary: Option<f64>,
    pub baseline: Option<f64>,
    /// One-sided p-value of "the canary is worse".
    pub p_value: Option<f64>,
    pub result: MetricResult,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum CompareOutcome {
    Pass,
    Marginal,
    Fail,
    NotEnoughData,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Comparison {
    pub outcome: CompareOutcome,
    /// Share of metrics that passed, 0–100 (`None` when no metric had enough data).
    pub score: Option<f64>,
    pub metrics: Vec<MetricComparison>,
    pub reason: String,
}

/// The standard normal upper tail P(Z > z) (Abramowitz–Stegun 7.1.26, error < 1.5e-7).
pub fn normal_upper_tail(z: f64) -> f64 {
    let x = z.abs() / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.327_591_1 * x);
    let poly = t
        * (0.254_829_592
            + t * (-0.284_496_736
                + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    let erfc = poly * (-x * x).exp();
    if z >= 0.0 { erfc / 2.0 } else { 1.0 - erfc / 2.0 }
}

/// One-sided Mann-Whitney U: the p-value of "`a` tends to be greater than `b`", by the normal
/// approximation with a tie correction and a continuity correction. `None` when a side is empty.
pub fn mann_whitney_greater(a: &[f64], b: &[f64]) -> Option<f64> {
    let (n1, n2) = (a.len(), b.len());
    if n1 == 0 || n2 == 0 {
        return None;
    }
    let mut all: Vec<(f64, bool)> =
        a.iter().map(|&x| (x, true)).chain(b.iter().map(|&x| (x, false))).collect();
    all.sort_by(|x, y| x.0.total_cmp(&y.0));
    let n = all.len();
    let mut ranks = vec![0.0; n];
    let mut tie_term = 0.0;
    let mut i = 0;
    while i < n {
        let mut j = i;
        while j + 1 < n && all[j + 1].0 == all[i].0 {
            j += 1;
        }
        let rank = (i + j) as f64 / 2.0 + 1.0;
        ranks[i..=j].iter_mut().for_each(|r| *r = rank);
        let t = (j - i + 1) as f64;
        tie_term += t * t * t - t;
        i = j + 1;
    }
    let r1: f64 = all.iter().zip(&ranks).filter(|(v, _)| v.1).map(|(_, r)| r).sum();
    let (n1f, n2f, nf) = (n1 as f64, n2 as f64, n as f64);
    let u1 = r1 - n1f * (n1f + 1.0) / 2.0;
    let mean = n1f * n2f / 2.0;
    let var = n1f * n2f / 12.0 * ((nf + 1.0) - tie_term / (nf * (nf - 1.0)).max(1.0));
    if var <= 0.0 {
        return Some(if u1 > mean { 0.0 } else { 1.0 });
    }
    Some(normal_upper_tail((u1 - mean - 0.5) / var.sqrt()))
}

/// One-sided two-proportion z-test: the p-value of "rate `x1/n1` is higher than `x2/n2`".
pub fn proportion_greater(x1: u64, n1: u64, x2: u64, n2: u64) -> Option<f64> {
    if n1 == 0 || n2 == 0 {
        return None;
    }
    let (p1, p2) = (x1 as f64 / n1 as f64, x2 as f64 / n2 as f64);
    let p = (x1 + x2) as f64 / (n1 + n2) as f64;
    let se = (p * (1.0 - p) * (1.0 / n1 as f64 + 1.0 / n2 as f64)).sqrt();
    if se == 0.0 {
        return Some(if p1 > p2 { 0.0 } else { 1.0 });
    }
    Some(normal_upper_tail((p1 - p2) / se))
}

fn median(v: &[f64]) -> Option<f64> {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(s[n / 2]),
        _ => Some((s[n / 2 - 1] + s[n / 2]) / 2.0),
    }
}

/// Compares `canary` with `baseline` as `spec` says.
pub fn compare(spec: &CompareSpec, canary: &Side, baseline: &Side) -> Comparison {
    let alpha = 1.0 - spec.confidence.clamp(0.5, 0.999);
    let min = spec.min_points.max(1);
    let points = |v: &[f64]| u32::try_from(v.len()).unwrap_or(u32::MAX);

    let (cn, bn) = (points(&canary.latency_ms), points(&baseline.latency_ms));
    let (cm, bm) = (median(&canary.latency_ms), median(&baseline.latency_ms));
    let latency_p = mann_whitney_greater(&canary.latency_ms, &baseline.latency_ms);
    let latency = MetricComparison {
        metric: "latency".into(),
        canary_points: cn,
        baseline_points: bn,
        canary: cm,
        baseline: bm,
        p_value: latency_p,
        result: if cn < min || bn < min {
            MetricResult::NotEnoughData
        } else if latency_p.is_some_and(|p| p < alpha)
            && cm.zip(bm).is_some_and(|(c, b)| c > b * (1.0 + spec.latency_tolerance))
        {
            MetricResult::Worse
        } else {
            MetricResult::Pass
        },
    };

    let rate =
        |s: &Side| (s.requests > 0).then(|| s.errors.min(s.requests) as f64 / s.requests as f64);
    let (cr, br) = (rate(canary), rate(baseline));
    let errors_p = proportion_greater(
        canary.errors.min(canary.requests),
        canary.requests,
        baseline.errors.min(baseline.requests),
        baseline.requests,
    );
    let errors = MetricComparison {
        metric: "error rate".into(),
        canary_points: canary.rounds_with_requests,
        baseline_points: baseline.rounds_with_requests,
        canary: cr,
        baseline: br,
        p_value: errors_p,
        result: if canary.rounds_with_requests < min || baseline.rounds_with_requests < min {
            MetricResult::NotEnoughData
        } else if errors_p.is_some_and(|p| p < alpha)
            && cr.zip(br).is_some_and(|(c, b)| c > b + spec.error_tolerance)
        {
            MetricResult::Worse
        } else {
            MetricResult::Pass
        },
    };

    let metrics = vec![latency, errors];
    let judged: Vec<&MetricComparison> =
        metrics.iter().filter(|m| m.result != MetricResult::NotEnoughData).collect();
    let thin: Vec<String> = metrics
        .iter()
        .filter(|m| m.result == MetricResult::NotEnoughData)
        .map(|m| {
            format!(
                "{} ({} canary / {} baseline points, {min} needed each)",
                m.metric, m.canary_points, m.baseline_points
            )
        })
        .collect();
    if !thin.is_empty() {
        // Every metric counts: a comparison is never passed on part of the evidence.
        return Comparison {
            outcome: CompareOutcome::NotEnoughData,
            score: None,
            reason: format!("not enough data to compare: {}", thin.join(", ")),
            metrics,
        };
    }
    let passed = judged.iter().filter(|m| m.result == MetricResult::Pass).count();
    let score = 100.0 * passed as f64 / judged.len().max(1) as f64;
    let outcome = if score >= spec.pass_score {
        CompareOutcome::Pass
    } else if score >= spec.marginal_score {
        CompareOutcome::Marginal
    } else {
        CompareOutcome::Fail
    };
    let worse: Vec<String> =
        judged.iter().filter(|m| m.result == MetricResult::Worse).map(|m| describe(m)).collect();
    let reason = match outcome {
        CompareOutcome::Pass => {
            format!("score {score:.0}: the canary is no worse than the baseline")
        }
        _ => format!("score {score:.0}: the canary is worse: {}", worse.join("; ")),
    };
    Comparison { outcome, score: Some(score), metrics, reason }
}

fn describe(m: &MetricComparison) -> String {
    let show = |v: Option<f64>| match (m.metric.as_str(), v) {
        ("latency", Some(v)) => format!("{v:.1} ms"),
        (_, Some(v)) => format!("{:.2} %", v * 100.0),
        (_, None) => "no data".into(),
    };
    format!(
        "{} {} vs {} (p = {:.4})",
        m.metric,
        show(m.canary),
        show(m.baseline),
        m.p_value.unwrap_or(1.0)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_normal_tail_matches_known_values() {
        assert!((normal_upper_tail(0.0) - 0.5).abs() < 1e-7);
        assert!((normal_upper_tail(1.644_853_6) - 0.05).abs() < 1e-6);
        assert!((normal_upper_tail(-1.959_964) - 0.975).abs() < 1e-6);
    }

    #[test]
    fn mann_whitney_sees_a_shift_and_not_noise() {
        let base: Vec<f64> = (0..30).map(|i| 10.0 + f64::from(i % 7)).collect();
        let same: Vec<f64> = (0..30).map(|i| 10.0 + f64::from((i + 3) % 7)).collect();
        let slower: Vec<f64> = base.iter().map(|v| v + 8.0).collect();
        assert!(mann_whitney_greater(&same, &base).expect("p") > 0.3);
        assert!(mann_whitney_greater(&slower, &base).expect("p") < 0.001);
        assert!(mann_whitney_greater(&base, &slower).expect("p") > 0.99, "one-sided");
        // Every value tied: nothing to tell apart.
        assert!(mann_whitney_greater(&[5.0; 10], &[5.0; 10]).expect("p") >= 0.5);
        assert_eq!(mann_whitney_greater(&[], &base), None);
    }

    #[test]
    fn the_proportion_test_sees_more_errors() {
        assert!(proportion_greater(50, 1000, 5, 1000).expect("p") < 0.0001);
        assert!(proportion_greater(6, 1000, 5, 1000).expect("p") > 0.3);
    }

    fn side(latency: impl Fn(usize) -> f64, errors: u64) -> Side {
        Side {
            latency_ms: (0..40).map(latency).collect(),
            requests: 4000,
            errors,
            rounds_with_requests: 40,
        }
    }

    #[test]
    fn a_canary_like_its_baseline_passes_and_a_slower_or_failing_one_does_not() {
        let spec = CompareSpec::default();
        let base = side(|i| 20.0 + (i % 5) as f64, 4);
        let c = compare(&spec, &side(|i| 20.0 + ((i + 2) % 5) as f64, 5), &base);
        assert_eq!(c.outcome, CompareOutcome::Pass, "{}", c.reason);
        assert_eq!(c.score, Some(100.0));

        let slow = compare(&spec, &side(|i| 60.0 + (i % 5) as f64, 4), &base);
        assert_eq!(slow.outcome, CompareOutcome::Marginal, "{}", slow.reason);
        assert!(slow.reason.contains("latency 62.0 ms vs 22.0 ms"), "{}", slow.reason);

        let broken = compare(&spec, &side(|i| 60.0 + (i % 5) as f64, 400), &base);
        assert_eq!(broken.outcome, CompareOutcome::Fail, "{}", broken.reason);
        assert_eq!(broken.score, Some(0.0));
    }

    #[test]
    fn a_slightly_slower_canary_within_tolerance_passes() {
        let spec = CompareSpec::default();
        let base = side(|i| 20.0 + (i % 5) as f64, 4);
        let c = compare(&spec, &side(|i| 21.0 + (i % 5) as f64, 4), &base);
        assert_eq!(c.outcome, CompareOutcome::Pass, "{}", c.reason);
    }

    #[test]
    fn low_traffic_never_passes() {
        let spec = CompareSpec::default();
        let base = side(|i| 20.0 + (i % 5) as f64, 0);
        let thin =
            Side { latency_ms: vec![20.0; 5], requests: 50, errors: 0, rounds_with_requests: 5 };
        let c = compare(&spec, &thin, &base);
        assert_eq!(c.outcome, CompareOutcome::NotEnoughData);
        assert!(
            c.reason.contains("latency (5 canary / 40 baseline points, 20 needed each)"),
            "{}",
            c.reason
        );
        assert_eq!(c.score, None);
    }
}
