//! Health charts, drawn on the server with plotters as SVG from the stored health samples
//! (see `engine::sampler`): request rate and traffic weight by release, error rate, p50/p99
//! latency and probe success, for one target or the whole pool. The gate's limits are drawn
//! as red dashed lines, step boundaries as grey markers, and time is labelled in the viewer's
//! timezone. The browser only shows the SVG, so it carries no charting code.

use std::collections::BTreeMap;

use app::domain::campaign::GateSpec;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use plotters::prelude::*;

use app::domain::views::ChartView;

use crate::store::{SampleRow, Store};

/// One time bucket of samples.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Bucket {
    pub start: DateTime<Utc>,
    /// Requests per second by release.
    pub rate_by_release: BTreeMap<String, f64>,
    pub error_pct: Option<f64>,
    /// Request-weighted mean of the targets' medians.
    pub p50_ms: Option<f64>,
    /// The worst target's p99.
    pub p99_ms: Option<f64>,
    pub probe_pct: Option<f64>,
    /// Share of the pool's traffic by release (router weights read back), in percent.
    pub weight_by_release: BTreeMap<String, f64>,
    /// Some sample landed in this bucket. An unsampled bucket is a gap in every line, never a
    /// zero: nobody looked, so nothing is known.
    pub sampled: bool,
}

/// Groups samples (oldest first) into buckets of `secs` seconds from `from` to `to`, for one
/// target (`Some`) or the whole pool.
pub fn buckets(
    rows: &[SampleRow],
    target: Option<&str>,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    secs: f64,
) -> Vec<Bucket> {
    let secs = secs.max(0.1);
    let span = (to - from).num_milliseconds().max(1) as f64 / 1000.0;
    let n = (span / secs).ceil().max(1.0) as usize;
    #[derive(Default)]
    struct Acc {
        requests: BTreeMap<String, f64>,
        errors: f64,
        with_requests: f64,
        p50_weighted: f64,
        p50_weight: f64,
        p99: Option<f64>,
        probes: f64,
        probes_ok: f64,
        /// Per round (sample time): weight by release.
        rounds: BTreeMap<DateTime<Utc>, BTreeMap<String, f64>>,
        sampled: bool,
    }
    let mut acc: Vec<Acc> = (0..n).map(|_| Acc::default()).collect();
    for r in rows {
        if target.is_some_and(|t| t != r.target) {
            continue;
        }
        let at = r.at;
        if at < from || at > to {
            continue;
        }
        let i = (((at - from).num_milliseconds() as f64 / 1000.0) / secs) as usize;
        let Some(a) = acc.get_mut(i.min(n - 1)) else { continue };
        a.sampled = true;
        let release = r.release.clone().unwrap_or_else(|| "?".into());
        if let Some(q) = r.requests {
            *a.requests.entry(release.clone()).or_default() += q as f64;
            a.with_requests += q as f64;
            a.errors += r.errors.unwrap_or(0) as f64;
            if let Some(p50) = r.p50_ms
                && q > 0
            {
                a.p50_weighted += p50 * q as f64;
                a.p50_weight += q as f64;
            }
        }
        if let Some(p99) = r.p99_ms {
            a.p99 = Some(a.p99.map_or(p99, |m: f64| m.max(p99)));
        }
        if let Some(ok) = r.probe_ok {
            a.probes += 1.0;
            a.probes_ok += if ok { 1.0 } else { 0.0 };
        }
        let serving = r.state.as_deref().is_none_or(|s| s == "ready");
        let weight = if serving { r.weight_bp.unwrap_or(0) as f64 / 100.0 } else { 0.0 };
        *a.rounds.entry(r.at).or_default().entry(release).or_default() += weight;
    }
    acc.into_iter()
        .enumerate()
        .map(|(i, a)| {
            let start = from + chrono::Duration::milliseconds((i as f64 * secs * 1000.0) as i64);
            let mut weight_by_release: BTreeMap<String, f64> = BTreeMap::new();
            let rounds = a.rounds.len().max(1) as f64;
            for round in a.rounds.values() {
                // One target: its own share of the pool. The pool: each release's share of
                // the weight that serves.
                let total: f64 = round.values().sum();
                for (release, w) in round {
                    let share = if target.is_some() {
                        *w
                    } else if total > 0.0 {
                        w * 100.0 / total
                    } else {
                        0.0
                    };
                    *weight_by_release.entry(release.clone()).or_default() += share / rounds;
                }
            }
            Bucket {
                start,
                rate_by_release: a.requests.iter().map(|(r, q)| (r.clone(), q / secs)).collect(),
                error_pct: (a.with_requests > 0.0).then(|| a.errors * 100.0 / a.with_requests),
                p50_ms: (a.p50_weight > 0.0).then(|| a.p50_weighted / a.p50_weight),
                p99_ms: a.p99,
                probe_pct: (a.probes > 0.0).then(|| a.probes_ok * 100.0 / a.probes),
                weight_by_release,
                sampled: a.sampled,
            }
        })
        .collect()
}

const PALETTE: [RGBColor; 6] = [
    RGBColor(37, 99, 235),
    RGBColor(22, 163, 74),
    RGBColor(234, 88, 12),
    RGBColor(147, 51, 234),
    RGBColor(219, 39, 119),
    RGBColor(100, 116, 139),
];
const LIMIT: RGBColor = RGBColor(220, 38, 38);
const MARKER: RGBColor = RGBColor(150, 150, 150);

/// What to draw around the data.
pub struct Frame<'a> {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// Step boundaries: (time, short label).
    pub steps: &'a [(DateTime<Utc>, String)],
    pub gate: &'a GateSpec,
    pub tz: Tz,
    pub width: u32,
}

enum Panel {
    Rate,
    Weight,
    Errors,
    Latency,
    Probes,
}

type Panel2d<'a, 'b> = ChartContext<
    'a,
    SVGBackend<'b>,
    Cartesian2d<
        plotters::coord::types::RangedDateTime<DateTime<Utc>>,
        plotters::coord::types::RangedCoordf64,
    >,
>;

/// The series names in the upper left corner of a panel.
fn legend<'a, 'b: 'a>(chart: &mut Panel2d<'a, 'b>, font: u32) -> Result<(), String> {
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(RGBColor(200, 200, 200))
        .label_font(("sans-serif", font - 1))
        .draw()
        .map_err(|e| e.to_string())
}

/// Draws `points` as lines broken wherever a point is `None` (no data is a gap, never a zero);
/// the first run carries the legend label.
fn draw_runs<'a, 'b: 'a>(
    chart: &mut Panel2d<'a, 'b>,
    points: impl Iterator<Item = Option<(DateTime<Utc>, f64)>>,
    color: RGBColor,
    label: Option<String>,
) -> Result<(), String> {
    let mut runs: Vec<Vec<(DateTime<Utc>, f64)>> = vec![Vec::new()];
    for p in points {
        match p {
            Some(p) => runs.last_mut().map(|r| r.push(p)).unwrap_or_default(),
            None if runs.last().is_some_and(|r| !r.is_empty()) => runs.push(Vec::new()),
            None => {}
        }
    }
    let mut label = label;
    for run in runs.into_iter().filter(|r| !r.is_empty()) {
        // A lone point between gaps is still drawn, as a dot.
        let series = if run.len() == 1 {
            chart
                .draw_series(run.iter().map(|p| Circle::new(*p, 2, color.filled())))
                .map_err(|e| e.to_string())?
        } else {
            chart
                .draw_series(LineSeries::new(run, color.stroke_width(2)))
                .map_err(|e| e.to_string())?
        };
        if let Some(l) = label.take() {
            series.label(l).legend(move |(x, y)| {
                PathElement::new([(x, y), (x + 14, y)], color.stroke_width(2))
            });
        }
    }
    Ok(())
}

/// Renders five stacked panels into one SVG. Empty when there is no bucket.
pub fn render(buckets: &[Bucket], f: &Frame<'_>) -> Result<String, String> {
    if buckets.is_empty() {
        return Ok(String::new());
    }
    let narrow = f.width < 560;
    let panel_h: u32 = if narrow { 150 } else { 130 };
    let panels = [Panel::Rate, Panel::Weight, Panel::Errors, Panel::Latency, Panel::Probes];
    let height = panel_h * panels.len() as u32;
    let mut releases: Vec<String> = buckets
        .iter()
        .flat_map(|b| b.rate_by_release.keys().chain(b.weight_by_release.keys()).cloned())
        .collect();
    releases.sort();
    releases.dedup();
    let color_of = |release: &str| {
        PALETTE[releases.iter().position(|r| r == release).unwrap_or(0) % PALETTE.len()]
    };
    let (from, to) = (f.from, f.to.max(f.from + chrono::Duration::seconds(1)));
    let tz = f.tz;
    let span_secs = (to - from).num_seconds();
    let fmt = if span_secs > 6 * 3600 { "%d %H:%M" } else { "%H:%M:%S" };
    let label = |t: &DateTime<Utc>| t.with_timezone(&tz).format(fmt).to_string();
    let font = if narrow { 12 } else { 13 };
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (f.width, height)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let areas = root.split_evenly((panels.len(), 1));
        for (area, panel) in areas.iter().zip(panels) {
            let max_of = |g: &dyn Fn(&Bucket) -> Option<f64>| {
                buckets.iter().filter_map(g).fold(0.0_f64, f64::max)
            };
            let (title, top) = match panel {
                Panel::Rate => (
                    "requests/s by release",
                    max_of(&|b| Some(b.rate_by_release.values().sum())).max(1.0) * 1.15,
                ),
                Panel::Weight => ("traffic weight % by release (router read-back)", 105.0),
                Panel::Errors => (
                    "error rate %",
                    max_of(&|b| b.error_pct).max(f.gate.max_error_rate * 200.0).clamp(1.0, 100.0)
                        * 1.1,
                ),
                Panel::Latency => (
                    "latency ms (p50, p99)",
                    max_of(&|b| b.p99_ms).max(f.gate.max_p99_ms as f64).max(1.0) * 1.15,
                ),
                Panel::Probes => ("probe success %", 105.0),
            };
            let mut chart = ChartBuilder::on(area)
                .caption(title, ("sans-serif", font + 1).into_font())
                .margin(6)
                .x_label_area_size(20)
                .y_label_area_size(if narrow { 38 } else { 46 })
                .build_cartesian_2d(from..to, 0.0..top)
                .map_err(|e| e.to_string())?;
            chart
                .configure_mesh()
                .x_labels(if narrow { 3 } else { 6 })
                .y_labels(4)
                .x_label_formatter(&label)
                .label_style(("sans-serif", font))
                // Few light grid lines: they made up half of the SVG.
                .max_light_lines(1)
                .bold_line_style(RGBColor(232, 232, 232))
                .draw()
                .map_err(|e| e.to_string())?;
            for (i, (t, text)) in f.steps.iter().filter(|(t, _)| *t >= from && *t <= to).enumerate()
            {
                chart
                    .draw_series(LineSeries::new([(*t, 0.0), (*t, top)], MARKER.stroke_width(1)))
                    .map_err(|e| e.to_string())?;
                if matches!(panel, Panel::Rate) && (!narrow || i % 2 == 0) {
                    chart
                        .draw_series(std::iter::once(Text::new(
                            text.clone(),
                            (*t, top * 0.97),
                            ("sans-serif", font - 1).into_font().color(&RGBColor(90, 90, 90)),
                        )))
                        .map_err(|e| e.to_string())?;
                }
            }
            let limit =
                |v: f64| DashedLineSeries::new([(from, v), (to, v)], 6, 4, LIMIT.stroke_width(1));
            match panel {
                Panel::Rate | Panel::Weight => {
                    for release in &releases {
                        let color = color_of(release);
                        // A sampled bucket without this release really had none of it (0);
                        // an unsampled one is a gap.
                        let points = buckets.iter().map(|b| {
                            let m = if matches!(panel, Panel::Rate) {
                                &b.rate_by_release
                            } else {
                                &b.weight_by_release
                            };
                            b.sampled.then(|| (b.start, m.get(release).copied().unwrap_or(0.0)))
                        });
                        draw_runs(&mut chart, points, color, Some(release.clone()))?;
                    }
                    legend(&mut chart, font)?;
                }
                Panel::Errors => {
                    chart
                        .draw_series(limit(f.gate.max_error_rate * 100.0))
                        .map_err(|e| e.to_string())?;
                    draw_runs(
                        &mut chart,
                        buckets.iter().map(|b| b.error_pct.map(|v| (b.start, v))),
                        LIMIT,
                        None,
                    )?;
                }
                Panel::Latency => {
                    chart
                        .draw_series(limit(f.gate.max_p99_ms as f64))
                        .map_err(|e| e.to_string())?;
                    for (name, color, pick) in [
                        ("p50", PALETTE[1], (|b: &Bucket| b.p50_ms) as fn(&Bucket) -> Option<f64>),
                        ("p99", PALETTE[0], |b: &Bucket| b.p99_ms),
                    ] {
                        draw_runs(
                            &mut chart,
                            buckets.iter().map(|b| pick(b).map(|v| (b.start, v))),
                            color,
                            Some(name.to_string()),
                        )?;
                    }
                    legend(&mut chart, font)?;
                }
                Panel::Probes => {
                    chart
                        .draw_series(limit(f.gate.min_probe_success * 100.0))
                        .map_err(|e| e.to_string())?;
                    draw_runs(
                        &mut chart,
                        buckets.iter().map(|b| b.probe_pct.map(|v| (b.start, v))),
                        PALETTE[3],
                        None,
                    )?;
                }
            }
        }
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}

/// Charts drawn recently, by (campaign, target, zone, width, newest sample id).
pub type Cache = std::sync::Arc<std::sync::Mutex<std::collections::HashMap<CacheKey, ChartView>>>;
type CacheKey = (i64, Option<String>, String, u32, i64);
const CACHE_ENTRIES: usize = 256;

/// Campaigns longer than this are charted over their last hour.
const MAX_SPAN: chrono::Duration = chrono::Duration::hours(1);

/// The newest round's figures in words, for screen readers and tests.
fn summary(rows: &[SampleRow], target: Option<&str>) -> String {
    let Some(last_at) =
        rows.iter().rev().find(|r| target.is_none_or(|t| t == r.target)).map(|r| &r.at)
    else {
        return String::new();
    };
    let round: Vec<&SampleRow> =
        rows.iter().filter(|r| &r.at == last_at && target.is_none_or(|t| t == r.target)).collect();
    let secs = round.first().map(|r| r.secs).unwrap_or(1.0).max(0.001);
    let requests: i64 = round.iter().filter_map(|r| r.requests).sum();
    let errors: i64 = round.iter().filter_map(|r| r.errors).sum();
    let mut parts = Vec::new();
    if round.iter().any(|r| r.requests.is_some()) {
        parts.push(format!("{:.1} req/s", requests as f64 / secs));
        if requests > 0 {
            parts.push(format!("errors {:.2} %", errors as f64 * 100.0 / requests as f64));
        }
    }
    if let Some(p99) = round.iter().filter_map(|r| r.p99_ms).reduce(f64::max) {
        parts.push(format!("p99 {p99:.0} ms"));
    }
    let probed: Vec<bool> = round.iter().filter_map(|r| r.probe_ok).collect();
    if !probed.is_empty() {
        let ok = probed.iter().filter(|o| **o).count();
        parts.push(format!("probes {ok}/{} ok", probed.len()));
    }
    let mut weights: BTreeMap<String, i64> = BTreeMap::new();
    for r in &round {
        if r.state.as_deref().is_none_or(|s| s == "ready") {
            *weights.entry(r.release.clone().unwrap_or_else(|| "?".into())).or_default() +=
                r.weight_bp.unwrap_or(0);
        }
    }
    let total: i64 = weights.values().sum();
    if let Some(r) = target.and(round.first()) {
        // One target: its own share of the pool, as the router has it.
        let share = r.weight_bp.unwrap_or(0) as f64 / 100.0;
        let state = r.state.as_deref().unwrap_or("?");
        let release = r.release.as_deref().unwrap_or("?");
        parts.push(format!("{release}, {state}, weight {share:.1} % of the pool"));
    } else if total > 0 {
        let shares: Vec<String> = weights
            .iter()
            .map(|(r, w)| format!("{r} {:.1} %", *w as f64 * 100.0 / total as f64))
            .collect();
        parts.push(format!("weight {}", shares.join(" / ")));
    }
    parts.join(" · ")
}

/// Draws campaign charts, each once per sample round however many viewers ask.
#[derive(Clone)]
pub struct ChartService {
    store: Store,
    /// Charts already drawn, shared by every viewer of the same campaign and sample round.
    cache: Cache,
    /// One drawing at a time per campaign.
    flights: crate::services::flights::Flights,
}

impl ChartService {
    pub fn new(store: Store) -> Self {
        Self { store, cache: Cache::default(), flights: Default::default() }
    }

    /// The campaign's health chart from its stored samples: one target or the whole pool, time
    /// labelled in `tz` (IANA; empty means UTC), `width` pixels wide (clamped to 320–1200).
    pub async fn chart(
        &self,
        actor: &app::domain::auth::Principal,
        id: i64,
        target: Option<String>,
        tz: &str,
        width: u32,
    ) -> Result<ChartView, app::api::ApiError> {
        use app::api::ApiError;
        crate::services::access::require(actor, app::domain::auth::Role::Viewer)?;
        let zone: Tz = if tz.trim().is_empty() {
            chrono_tz::UTC
        } else {
            tz.trim().parse().map_err(|_| {
                ApiError::field(
                    "tz",
                    format!("'{tz}' is not an IANA timezone (e.g. Europe/Berlin)"),
                )
            })?
        };
        let width = width.clamp(320, 1200);
        let target = target.filter(|t| !t.trim().is_empty());
        let row = self
            .store
            .find_campaign(id)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("campaign {id}")))?;
        let last_sample = self.store.latest_sample(id).await?;
        let key: CacheKey = (
            id,
            target.clone(),
            zone.name().to_string(),
            width,
            last_sample.as_ref().map_or(0, |l| l.0),
        );
        let cached = || self.cache.lock().ok().and_then(|c| c.get(&key).cloned());
        if let Some(hit) = cached() {
            return Ok(hit);
        }
        // Viewers that heard the same sample event ask at once: one draws, the rest wait.
        let _turn = self.flights.enter("chart", id).await;
        if let Some(hit) = cached() {
            return Ok(hit);
        }
        let Some((last_id, last_at)) = last_sample else {
            return Ok(ChartView { tz: zone.name().to_string(), target, ..ChartView::default() });
        };
        let spec: app::domain::campaign::CampaignSpec =
            serde_json::from_str(&row.spec).map_err(|_| ApiError::internal())?;
        let to = last_at;
        let since = row
            .started_at
            .map(|s| s - chrono::Duration::seconds(5))
            .unwrap_or(to - chrono::Duration::minutes(2))
            .max(to - MAX_SPAN);
        let rows = self.store.samples_since(id, since, 200_000).await?;
        // From the first sample on (a short campaign fills the width), at least 10 s wide.
        let first = rows.first().map_or(since, |r| r.at);
        let from = (first - chrono::Duration::seconds(1)).min(to - chrono::Duration::seconds(10));
        let mut targets: Vec<String> = rows.iter().map(|r| r.target.clone()).collect();
        targets.sort();
        targets.dedup();
        if let Some(t) = &target
            && !targets.contains(t)
        {
            return Err(ApiError::field(
                "target",
                format!("no samples for target '{t}' in this campaign"),
            ));
        }
        let steps: Vec<(DateTime<Utc>, String)> = self
            .store
            .campaign_events_since(id, 0, 5000)
            .await?
            .into_iter()
            .filter_map(|e| {
                let data: serde_json::Value = serde_json::from_str(&e.data).unwrap_or_default();
                let label = match e.kind.as_str() {
                    "step_done" => {
                        format!("#{}", data.get("index").and_then(|i| i.as_i64()).unwrap_or(0) + 1)
                    }
                    "aborting" | "abort" => "abort".into(),
                    "rolled_back" => "back".into(),
                    "completed" => "done".into(),
                    _ => return None,
                };
                Some((e.ts, label))
            })
            .collect();
        let span = (to - from).num_milliseconds() as f64 / 1000.0;
        // At least two sampling intervals wide, so every bucket holds a round unless rounds
        // really went missing (then it is drawn as a gap).
        let mut intervals: Vec<f64> = rows.iter().map(|r| r.secs).collect();
        let interval = crate::adapters::quantile(&mut intervals, 0.5).unwrap_or(1.0);
        let secs = (span / 120.0).max(1.0).max(2.0 * interval);
        let gate = spec.gates.first().cloned().unwrap_or_default();
        let b = buckets(&rows, target.as_deref(), from, to, secs);
        let frame = Frame { from, to, steps: &steps, gate: &gate, tz: zone, width };
        let svg = render(&b, &frame).map_err(|e| {
            tracing::error!(error = %e, "chart rendering failed");
            ApiError::internal()
        })?;
        let view = ChartView {
            svg,
            summary: summary(&rows, target.as_deref()),
            targets,
            target,
            tz: zone.name().to_string(),
            last_sample: last_id,
        };
        if let Ok(mut c) = self.cache.lock() {
            if c.len() >= CACHE_ENTRIES {
                c.clear();
            }
            c.insert(key, view.clone());
        }
        Ok(view)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(secs: i64, target: &str, release: &str, requests: i64, errors: i64) -> SampleRow {
        SampleRow {
            id: secs,
            campaign_id: 1,
            at: DateTime::<Utc>::UNIX_EPOCH + chrono::Duration::seconds(secs),
            secs: 1.0,
            target: target.into(),
            release: Some(release.into()),
            weight_bp: Some(if release == "v1" { 7500 } else { 2500 }),
            state: Some("ready".into()),
            requests: Some(requests),
            errors: Some(errors),
            p50_ms: Some(5.0),
            p99_ms: Some(if release == "v2" { 40.0 } else { 9.0 }),
            probe_ok: Some(errors == 0),
            probe_ms: Some(1.0),
        }
    }

    #[test]
    fn samples_are_bucketed_by_time_release_and_target() {
        let t0 = DateTime::<Utc>::UNIX_EPOCH;
        let rows = [
            row(0, "a", "v1", 10, 0),
            row(0, "b", "v2", 4, 2),
            row(1, "a", "v1", 6, 0),
            row(1, "b", "v2", 4, 0),
            row(3, "a", "v1", 8, 0),
        ];
        let b = buckets(&rows, None, t0, t0 + chrono::Duration::seconds(4), 2.0);
        assert_eq!(b.len(), 2);
        assert_eq!(b[0].rate_by_release.get("v1"), Some(&8.0));
        assert_eq!(b[0].rate_by_release.get("v2"), Some(&4.0));
        assert_eq!(b[0].error_pct, Some(2.0 * 100.0 / 24.0));
        assert_eq!(b[0].p99_ms, Some(40.0), "the worst target's p99");
        assert_eq!(b[0].probe_pct, Some(75.0));
        assert_eq!(b[0].weight_by_release.get("v2"), Some(&25.0));
        assert_eq!(b[1].rate_by_release.get("v2"), None, "no v2 sample in the second bucket");
        let only_b = buckets(&rows, Some("b"), t0, t0 + chrono::Duration::seconds(4), 2.0);
        assert_eq!(only_b[0].rate_by_release.get("v1"), None);
        assert_eq!(only_b[0].error_pct, Some(25.0));
        assert_eq!(only_b[0].weight_by_release.get("v2"), Some(&25.0), "the target's own share");
        assert_eq!(only_b[1].error_pct, None, "no data is not 0 %");
    }

    #[test]
    fn the_chart_has_gate_limits_step_markers_and_local_times() {
        let t0 = DateTime::<Utc>::UNIX_EPOCH + chrono::Duration::hours(12);
        let rows: Vec<SampleRow> = (0..60)
            .map(|s| {
                let mut r = row(s, "a", if s < 30 { "v1" } else { "v2" }, 5, 0);
                r.at = t0 + chrono::Duration::seconds(s);
                r
            })
            .collect();
        let to = t0 + chrono::Duration::seconds(60);
        let b = buckets(&rows, None, t0, to, 2.0);
        let gate = GateSpec::default();
        let steps = [(t0 + chrono::Duration::seconds(30), "step 2".to_string())];
        let frame = |tz| Frame { from: t0, to, steps: &steps, gate: &gate, tz, width: 700 };
        let svg = render(&b, &frame(chrono_tz::UTC)).expect("renders");
        assert!(svg.starts_with("<svg"), "{}", &svg[..40.min(svg.len())]);
        for text in ["v1", "v2", "p99", "probe success %", "step 2", "12:00:"] {
            assert!(svg.contains(text), "the chart shows {text}");
        }
        assert!(svg.contains("stroke-dasharray") || svg.matches("<polyline").count() > 8);
        let berlin = render(&b, &frame(chrono_tz::Europe::Berlin)).expect("renders");
        assert!(berlin.contains("13:00:"), "labels follow the viewer's zone (UTC+1 in January)");
        assert!(!berlin.contains(">12:00:"));
        assert!(render(&[], &frame(chrono_tz::UTC)).expect("renders").is_empty());
    }

    #[test]
    fn a_missed_sampling_round_is_a_gap_in_every_line_not_a_zero() {
        let t0 = DateTime::<Utc>::UNIX_EPOCH + chrono::Duration::hours(12);
        // Samples for 0–9 s and 20–29 s: nobody looked in between.
        let rows: Vec<SampleRow> = (0..30)
            .filter(|s| !(10..20).contains(s))
            .map(|s| {
                let mut r = row(s, "a", "v1", 5, 0);
                r.at = t0 + chrono::Duration::seconds(s);
                r
            })
            .collect();
        let to = t0 + chrono::Duration::seconds(30);
        let b = buckets(&rows, None, t0, to, 2.0);
        assert!(b[6].rate_by_release.is_empty() && !b[6].sampled, "12–14 s has no sample");
        assert!(b[6].weight_by_release.is_empty());
        assert!(b[0].sampled && b[14].sampled);
        let gate = GateSpec::default();
        let frame = Frame { from: t0, to, steps: &[], gate: &gate, tz: chrono_tz::UTC, width: 700 };
        let svg = render(&b, &frame).expect("renders");
        let broken = render(
            &buckets(
                &rows
                    .iter()
                    .filter(|r| r.at < t0 + chrono::Duration::seconds(10))
                    .cloned()
                    .collect::<Vec<_>>(),
                None,
                t0,
                to,
                2.0,
            ),
            &frame,
        )
        .expect("renders");
        // Each of the five panels' series is drawn as two runs around the gap.
        let lines = |s: &str| s.matches("<polyline").count();
        assert!(
            lines(&svg) > lines(&broken),
            "{} runs with a gap, {} without the second half",
            lines(&svg),
            lines(&broken)
        );
        // No line drops to zero in the gap: a zero rate would be a point at the panel's floor.
        assert_eq!(
            b.iter().filter(|b| b.sampled).count(),
            10,
            "{:?}",
            b.iter().map(|b| b.sampled).collect::<Vec<_>>()
        );
    }
}
