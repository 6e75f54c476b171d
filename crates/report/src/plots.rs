//! The report's plots, drawn with plotters' SVG backend into strings that the page inlines.
//!
//! Time axes are in seconds from the range's start and labelled with the UTC time of day.

use std::collections::BTreeMap;

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::model::{Chain, LagSeries, RejectionBucket, SimilarityPoint, SpreadPoint};

/// Width and height of every plot, px.
pub const SIZE: (u32, u32) = (900, 340);

/// A plot that could not be drawn.
#[derive(Debug, thiserror::Error)]
#[error("plot {plot}: {message}")]
pub struct PlotError {
    plot: &'static str,
    message: String,
}

type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;

fn err(plot: &'static str) -> impl Fn(DrawingAreaErrorKind<std::io::Error>) -> PlotError {
    move |e| PlotError { plot, message: e.to_string() }
}

/// The colour of the `i`th series.
fn colour(i: usize) -> RGBColor {
    let c = Palette99::pick(i).to_rgba();
    RGBColor(c.0, c.1, c.2)
}

/// `[lo, hi]` widened so that it is never empty.
fn span(lo: f64, hi: f64) -> std::ops::Range<f64> {
    if !lo.is_finite() || !hi.is_finite() {
        return 0.0..1.0;
    }
    if hi - lo < 1e-9 { lo - 0.5..hi + 0.5 } else { lo..hi + (hi - lo) * 0.05 }
}

/// `HH:MM:SS` of `from_us` plus `secs`.
fn clock(from_us: i64, secs: f64) -> String {
    let us = from_us.saturating_add((secs * 1e6) as i64);
    let s = bmon_logparse::time::format_us(us);
    s.get(11..19).unwrap_or(&s).to_owned()
}

/// Draws `f` into an SVG string; `empty` marks a plot without data.
fn svg(
    plot: &'static str,
    empty: bool,
    f: impl FnOnce(&Area<'_>) -> Result<(), PlotError>,
) -> Result<String, PlotError> {
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(err(plot))?;
        if empty {
            root.draw(&Text::new(
                "no data in the range",
                (SIZE.0 as i32 / 2 - 80, SIZE.1 as i32 / 2),
                ("sans-serif", 16),
            ))
            .map_err(err(plot))?;
        } else {
            f(&root)?;
        }
        root.present().map_err(err(plot))?;
    }
    Ok(out)
}

/// Per-node distribution (CDF) of the lags in `series`.
pub fn lag_cdf(title: &str, series: &[&LagSeries]) -> Result<String, PlotError> {
    const PLOT: &str = "lag distribution";
    let max = series.iter().flat_map(|s| s.lags_ms.last()).fold(0.0_f64, |a, b| a.max(*b));
    let empty = series.iter().all(|s| s.lags_ms.is_empty());
    svg(PLOT, empty, |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(50)
            .build_cartesian_2d(span(0.0, max.max(1.0)), 0.0..1.02)
            .map_err(err(PLOT))?;
        chart.configure_mesh().x_desc("lag behind the first node (ms)").y_desc("fraction").draw().map_err(err(PLOT))?;
        for (i, s) in series.iter().enumerate() {
            let n = s.lags_ms.len() as f64;
            let points: Vec<(f64, f64)> = s
                .lags_ms
                .iter()
                .enumerate()
                .flat_map(|(k, x)| [(*x, k as f64 / n), (*x, (k + 1) as f64 / n)])
                .collect();
            let c = colour(i);
            chart
                .draw_series(LineSeries::new(points, c.stroke_width(2)))
                .map_err(err(PLOT))?
                .label(format!("{} (n={})", s.node, s.lags_ms.len()))
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(2)));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(err(PLOT))
    })
}

/// Each block's spread over time.
pub fn spread(from_us: i64, to_us: i64, points: &[SpreadPoint]) -> Result<String, PlotError> {
    const PLOT: &str = "block spread";
    let secs = |us: i64| (us - from_us) as f64 / 1e6;
    let max = points.iter().map(|p| p.spread_ms).fold(0.0_f64, f64::max);
    svg(PLOT, points.is_empty(), |root| {
        let mut chart = ChartBuilder::on(root)
            .caption("block spread across nodes (tip stage)", ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(50)
            .build_cartesian_2d(span(0.0, secs(to_us)), span(0.0, max.max(1.0)))
            .map_err(err(PLOT))?;
        chart
            .configure_mesh()
            .x_label_formatter(&|x| clock(from_us, *x))
            .x_desc("time (UTC)")
            .y_desc("spread (ms)")
            .draw()
            .map_err(err(PLOT))?;
        let c = colour(0);
        chart
            .draw_series(LineSeries::new(points.iter().map(|p| (secs(p.at_us), p.spread_ms)), c.stroke_width(1)))
            .map_err(err(PLOT))?;
        chart
            .draw_series(points.iter().map(|p| Circle::new((secs(p.at_us), p.spread_ms), 3, c.filled())))
            .map_err(err(PLOT))?;
        Ok(())
    })
}

/// Each node's tip height over time, with the chain's events marked.
pub fn tips(from_us: i64, to_us: i64, chain: &Chain) -> Result<String, PlotError> {
    const PLOT: &str = "tips";
    let secs = |us: i64| (us - from_us) as f64 / 1e6;
    let mut by_node: BTreeMap<&str, Vec<(f64, f64)>> = BTreeMap::new();
    for t in &chain.tips {
        by_node.entry(t.node.as_str()).or_default().push((secs(t.at_us), t.height as f64));
    }
    let (lo, hi) =
        chain.tips.iter().fold((f64::MAX, f64::MIN), |(l, h), t| (l.min(t.height as f64), h.max(t.height as f64)));
    svg(PLOT, chain.tips.is_empty(), |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(
                "tip height per node (▲ reorg, ● stale tip, ✕ invalid block, ◆ selfish-mining suspect, ■ lagging)",
                ("sans-serif", 15),
            )
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(span(0.0, secs(to_us)), span(lo - 1.0, hi + 1.0))
            .map_err(err(PLOT))?;
        chart
            .configure_mesh()
            .x_label_formatter(&|x| clock(from_us, *x))
            .y_label_formatter(&|y| format!("{y:.0}"))
            .x_desc("time (UTC)")
            .y_desc("height")
            .draw()
            .map_err(err(PLOT))?;
        let end = secs(to_us);
        for (i, (node, points)) in by_node.iter().enumerate() {
            let mut steps = Vec::with_capacity(points.len() * 2 + 1);
            for (k, p) in points.iter().enumerate() {
                if k > 0 {
                    steps.push((p.0, points[k - 1].1));
                }
                steps.push(*p);
            }
            if let Some(last) = points.last() {
                steps.push((end.max(last.0), last.1));
            }
            let c = colour(i);
            chart
                .draw_series(LineSeries::new(steps, c.stroke_width(2)))
                .map_err(err(PLOT))?
                .label(node.to_string())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(2)));
        }
        let red = RGBColor(200, 30, 30);
        chart
            .draw_series(
                chain
                    .reorgs
                    .iter()
                    .map(|r| TriangleMarker::new((secs(r.detected_at_us), r.new_height as f64), 7, red.filled())),
            )
            .map_err(err(PLOT))?;
        chart
            .draw_series(chain.stale.iter().map(|s| {
                Circle::new(
                    (secs(s.block_time_us.saturating_add(s.age_us)), s.height as f64),
                    5,
                    RGBColor(230, 140, 0).filled(),
                )
            }))
            .map_err(err(PLOT))?;
        chart
            .draw_series(
                chain.invalid.iter().filter_map(|b| {
                    b.height.map(|h| Cross::new((secs(b.seen_at_us), h as f64), 6, BLACK.stroke_width(2)))
                }),
            )
            .map_err(err(PLOT))?;
        let at_tip = |hash: &str| chain.tips.iter().find(|t| t.hash == hash).map(|t| (secs(t.at_us), t.height as f64));
        chart
            .draw_series(chain.selfish.iter().filter_map(|s| {
                at_tip(&s.new_tip).map(|p| {
                    EmptyElement::at(p)
                        + Polygon::new(vec![(0, -7), (7, 0), (0, 7), (-7, 0)], RGBColor(130, 40, 160).filled())
                })
            }))
            .map_err(err(PLOT))?;
        chart
            .draw_series(chain.lagging.iter().filter(|l| l.lagging).map(|l| {
                EmptyElement::at((secs(l.at_us), l.node_height as f64))
                    + Rectangle::new([(-4, -4), (4, 4)], RGBColor(90, 90, 90).filled())
            }))
            .map_err(err(PLOT))?;
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(err(PLOT))
    })
}

/// Rejections per minute, one line per node and reason.
pub fn rejections(from_us: i64, to_us: i64, buckets: &[RejectionBucket]) -> Result<String, PlotError> {
    const PLOT: &str = "rejections";
    let secs = |us: i64| (us - from_us) as f64 / 1e6;
    let mut lines: BTreeMap<(&str, &str), Vec<(f64, f64)>> = BTreeMap::new();
    for b in buckets {
        lines.entry((b.node.as_str(), b.reason.as_str())).or_default().push((secs(b.minute_us), b.count as f64));
    }
    let max = buckets.iter().map(|b| b.count).max().unwrap_or(0) as f64;
    svg(PLOT, buckets.is_empty(), |root| {
        let mut chart = ChartBuilder::on(root)
            .caption("mempool rejections per minute, by node and reason", ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(50)
            .build_cartesian_2d(
                span(buckets.iter().map(|b| secs(b.minute_us)).fold(0.0, f64::min), secs(to_us)),
                span(0.0, max.max(1.0)),
            )
            .map_err(err(PLOT))?;
        chart
            .configure_mesh()
            .x_label_formatter(&|x| clock(from_us, *x))
            .x_desc("time (UTC)")
            .y_desc("rejections / min")
            .draw()
            .map_err(err(PLOT))?;
        for (i, ((node, reason), points)) in lines.iter().enumerate() {
            let c = colour(i);
            chart
                .draw_series(LineSeries::new(points.iter().copied(), c.stroke_width(2)))
                .map_err(err(PLOT))?
                .label(format!("{node}: {reason}"))
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(2)));
            chart.draw_series(points.iter().map(|p| Circle::new(*p, 3, c.filled()))).map_err(err(PLOT))?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(err(PLOT))
    })
}

/// Mempool and template similarity readings over time, one line per node and kind.
pub fn similarity(from_us: i64, to_us: i64, points: &[SimilarityPoint]) -> Result<String, PlotError> {
    const PLOT: &str = "similarity";
    let secs = |us: i64| (us - from_us) as f64 / 1e6;
    let mut lines: BTreeMap<(&str, &str), Vec<(f64, f64)>> = BTreeMap::new();
    for p in points {
        lines.entry((p.node.as_str(), p.of.as_str())).or_default().push((secs(p.at_us), p.similarity));
    }
    svg(PLOT, points.is_empty(), |root| {
        let mut chart = ChartBuilder::on(root)
            .caption("similarity to the network's majority, when it diverged", ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(50)
            .build_cartesian_2d(span(0.0, secs(to_us)), 0.0..1.05)
            .map_err(err(PLOT))?;
        chart
            .configure_mesh()
            .x_label_formatter(&|x| clock(from_us, *x))
            .x_desc("time (UTC)")
            .y_desc("similarity")
            .draw()
            .map_err(err(PLOT))?;
        for (i, ((node, of), pts)) in lines.iter().enumerate() {
            let c = colour(i);
            chart
                .draw_series(LineSeries::new(pts.iter().copied(), c.stroke_width(2)))
                .map_err(err(PLOT))?
                .label(format!("{node} {of}"))
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(2)));
            chart.draw_series(pts.iter().map(|p| Circle::new(*p, 3, c.filled()))).map_err(err(PLOT))?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerLeft)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(err(PLOT))
    })
}
