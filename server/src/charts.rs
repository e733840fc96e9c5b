//! Health charts, drawn on the server with plotters as SVG: requests per second by release,
//! error rate and p99 latency over the campaign, with the gate's limits as lines and step
//! boundaries as markers. The browser only shows the SVG, so it needs no charting code.

use app::domain::campaign::GateSpec;
use chrono::{DateTime, Utc};
use plotters::prelude::*;

use crate::adapters::Hit;

/// One time bucket of traffic.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Bucket {
    pub start: DateTime<Utc>,
    /// (release, requests per second)
    pub rate_by_release: Vec<(String, f64)>,
    pub error_pct: Option<f64>,
    pub p99_ms: Option<f64>,
}

/// Groups hits into buckets of `secs` seconds from `from` to `to`.
pub fn buckets(hits: &[Hit], from: DateTime<Utc>, to: DateTime<Utc>, secs: i64) -> Vec<Bucket> {
    let secs = secs.max(1);
    let n = ((to - from).num_seconds() / secs).max(1) as usize;
    let mut releases: Vec<String> =
        hits.iter().map(|h| h.release.clone().unwrap_or_else(|| "error".into())).collect();
    releases.sort();
    releases.dedup();
    (0..n)
        .map(|i| {
            let start = from + chrono::Duration::seconds(secs * i as i64);
            let end = start + chrono::Duration::seconds(secs);
            let inside: Vec<&Hit> = hits.iter().filter(|h| h.at >= start && h.at < end).collect();
            let rate_by_release = releases
                .iter()
                .map(|r| {
                    let count = inside
                        .iter()
                        .filter(|h| h.release.as_deref().unwrap_or("error") == r)
                        .count();
                    (r.clone(), count as f64 / secs as f64)
                })
                .collect();
            let (error_pct, p99_ms) = if inside.is_empty() {
                (None, None)
            } else {
                let errors = inside.iter().filter(|h| h.status >= 500).count();
                let mut lat: Vec<f64> = inside.iter().map(|h| h.latency_ms).collect();
                lat.sort_by(f64::total_cmp);
                let rank = ((lat.len() as f64) * 0.99).ceil() as usize;
                (
                    Some(errors as f64 * 100.0 / inside.len() as f64),
                    lat.get(rank.saturating_sub(1)).copied(),
                )
            };
            Bucket { start, rate_by_release, error_pct, p99_ms }
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

/// Renders three stacked panels into one SVG. `steps` are (time, label) markers.
pub fn render(
    buckets: &[Bucket],
    steps: &[(DateTime<Utc>, String)],
    gate: &GateSpec,
    width: u32,
) -> Result<String, String> {
    let mut svg = String::new();
    let (Some(first), Some(last)) = (buckets.first(), buckets.last()) else {
        return Ok(String::new());
    };
    let (from, to) = (first.start, last.start + chrono::Duration::seconds(1));
    {
        let root = SVGBackend::with_string(&mut svg, (width, 420)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let panels = root.split_evenly((3, 1));
        let time_range = from..to;
        let label_style = ("sans-serif", 13).into_font();
        let releases: Vec<String> = first.rate_by_release.iter().map(|(r, _)| r.clone()).collect();
        let max_rate = buckets
            .iter()
            .flat_map(|b| b.rate_by_release.iter().map(|(_, v)| *v))
            .fold(1.0_f64, f64::max);
        let max_p99 =
            buckets.iter().filter_map(|b| b.p99_ms).fold(gate.max_p99_ms as f64, f64::max);
        let specs: [(&str, f64); 3] = [
            ("requests/s by release", max_rate * 1.15),
            ("error rate %", 100.0_f64.min((gate.max_error_rate * 100.0 * 2.0).max(5.0))),
            ("p99 latency ms", max_p99 * 1.15),
        ];
        for (panel, (title, top)) in panels.iter().zip(specs) {
            let mut chart = ChartBuilder::on(panel)
                .caption(title, label_style.clone())
                .margin(6)
                .x_label_area_size(18)
                .y_label_area_size(44)
                .build_cartesian_2d(time_range.clone(), 0.0..top)
                .map_err(|e| e.to_string())?;
            chart
                .configure_mesh()
                .x_labels(6)
                .y_labels(4)
                .x_label_formatter(&|t: &DateTime<Utc>| t.format("%H:%M:%S").to_string())
                .light_line_style(RGBColor(235, 235, 235))
                .draw()
                .map_err(|e| e.to_string())?;
            for (t, _) in steps.iter().filter(|(t, _)| *t >= from && *t <= to) {
                chart
                    .draw_series(LineSeries::new(
                        [(*t, 0.0), (*t, top)],
                        RGBColor(160, 160, 160).stroke_width(1),
                    ))
                    .map_err(|e| e.to_string())?;
            }
            match title {
                "requests/s by release" => {
                    for (i, release) in releases.iter().enumerate() {
                        let color = PALETTE[i % PALETTE.len()];
                        chart
                            .draw_series(LineSeries::new(
                                buckets.iter().map(|b| {
                                    (b.start, b.rate_by_release.get(i).map(|x| x.1).unwrap_or(0.0))
                                }),
                                color.stroke_width(2),
                            ))
                            .map_err(|e| e.to_string())?
                            .label(release.clone())
                            .legend(move |(x, y)| {
                                PathElement::new([(x, y), (x + 14, y)], color.stroke_width(2))
                            });
                    }
                    chart
                        .configure_series_labels()
                        .background_style(WHITE.mix(0.8))
                        .border_style(BLACK)
                        .label_font(("sans-serif", 12))
                        .draw()
                        .map_err(|e| e.to_string())?;
                }
                "error rate %" => {
                    let limit = gate.max_error_rate * 100.0;
                    chart
                        .draw_series(LineSeries::new(
                            [(from, limit), (to, limit)],
                            RED.stroke_width(1),
                        ))
                        .map_err(|e| e.to_string())?;
                    chart
                        .draw_series(LineSeries::new(
                            buckets.iter().filter_map(|b| b.error_pct.map(|v| (b.start, v))),
                            RGBColor(220, 38, 38).stroke_width(2),
                        ))
                        .map_err(|e| e.to_string())?;
                }
                _ => {
                    let limit = gate.max_p99_ms as f64;
                    chart
                        .draw_series(LineSeries::new(
                            [(from, limit), (to, limit)],
                            RED.stroke_width(1),
                        ))
                        .map_err(|e| e.to_string())?;
                    chart
                        .draw_series(LineSeries::new(
                            buckets.iter().filter_map(|b| b.p99_ms.map(|v| (b.start, v))),
                            RGBColor(37, 99, 235).stroke_width(2),
                        ))
                        .map_err(|e| e.to_string())?;
                }
            }
        }
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(secs: i64, release: &str, status: u16, latency_ms: f64) -> Hit {
        Hit {
            at: DateTime::<Utc>::UNIX_EPOCH + chrono::Duration::seconds(secs),
            target: "t".into(),
            release: Some(release.into()),
            status,
            latency_ms,
        }
    }

    #[test]
    fn hits_are_bucketed_by_time_and_release() {
        let t0 = DateTime::<Utc>::UNIX_EPOCH;
        let hits = [
            hit(0, "v1", 200, 5.0),
            hit(1, "v1", 200, 7.0),
            hit(2, "v2", 500, 30.0),
            hit(3, "v1", 200, 9.0),
        ];
        let b = buckets(&hits, t0, t0 + chrono::Duration::seconds(4), 2);
        assert_eq!(b.len(), 2);
        assert_eq!(b[0].rate_by_release, vec![("v1".to_string(), 1.0), ("v2".to_string(), 0.0)]);
        assert_eq!(b[1].rate_by_release, vec![("v1".to_string(), 0.5), ("v2".to_string(), 0.5)]);
        assert_eq!(b[1].error_pct, Some(50.0));
        assert_eq!(b[1].p99_ms, Some(30.0));
    }

    #[test]
    fn the_chart_is_an_svg_with_the_gate_limits_and_releases() {
        let t0 = DateTime::<Utc>::UNIX_EPOCH;
        let hits: Vec<Hit> =
            (0..60).map(|s| hit(s, if s < 30 { "v1" } else { "v2" }, 200, 10.0)).collect();
        let b = buckets(&hits, t0, t0 + chrono::Duration::seconds(60), 2);
        let svg = render(
            &b,
            &[(t0 + chrono::Duration::seconds(30), "step".into())],
            &GateSpec::default(),
            700,
        )
        .expect("renders");
        assert!(svg.starts_with("<svg"), "{}", &svg[..40.min(svg.len())]);
        assert!(svg.contains("v1") && svg.contains("v2"), "a legend names both releases");
        assert!(svg.contains("p99 latency ms"));
    }
}
