//! The report's plots, drawn with plotters' SVG backend into strings that the page inlines.
//!
//! Time axes are in seconds from the range's start and labelled with the UTC time of day.

use std::collections::BTreeMap;

use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
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

/// The chart every plot draws on: f64 axes, a caption, margins.
type Chart<'a, 'b> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// A chart on `root` with `caption` over `x` × `y`.
fn chart<'a, 'b>(
    root: &'a Area<'b>,
    plot: &'static str,
    caption: &str,
    font: u32,
    x: std::ops::Range<f64>,
    y: std::ops::Range<f64>,
) -> Result<Chart<'a, 'b>, PlotError> {
    ChartBuilder::on(root)
        .caption(caption, ("sans-serif", font))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(x, y)
        .map_err(err(plot))
}

/// The mesh of a chart whose x axis is seconds from `from_us`, labelled with the time of day.
fn time_mesh(chart: &mut Chart<'_, '_>, plot: &'static str, from_us: i64, y_desc: &str) -> Result<(), PlotError> {
    chart
        .configure_mesh()
        .x_label_formatter(&|x| clock(from_us, *x))
        .x_desc("time (UTC)")
        .y_desc(y_desc)
        .draw()
        .map_err(err(plot))
}

/// Draws the legend of the series labelled so far.
fn legend<'a, 'b: 'a>(chart: &mut Chart<'a, 'b>, plot: &'static str, at: SeriesLabelPosition) -> Result<(), PlotError> {
    chart
        .configure_series_labels()
        .position(at)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(err(plot))
}

/// Draws `points` as line number `i`, labelled `name` in the legend; with `dots`, each point is
/// marked too.
fn labelled_line(
    chart: &mut Chart<'_, '_>,
    plot: &'static str,
    i: usize,
    name: String,
    points: Vec<(f64, f64)>,
    dots: bool,
) -> Result<(), PlotError> {
    let c = colour(i);
    if dots {
        chart.draw_series(points.iter().map(|p| Circle::new(*p, 3, c.filled()))).map_err(err(plot))?;
    }
    chart
        .draw_series(LineSeries::new(points, c.stroke_width(2)))
        .map_err(err(plot))?
        .label(name)
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(2)));
    Ok(())
}

/// One plot of named lines over time, each point marked.
struct TimeLines<'a> {
    plot: &'static str,
    caption: &'a str,
    y_desc: &'a str,
    from_us: i64,
    x: std::ops::Range<f64>,
    y: std::ops::Range<f64>,
    legend: SeriesLabelPosition,
}

impl TimeLines<'_> {
    fn draw(self, lines: BTreeMap<String, Vec<(f64, f64)>>) -> Result<String, PlotError> {
        let TimeLines { plot, caption, y_desc, from_us, x, y, legend: at } = self;
        svg(plot, lines.is_empty(), |root| {
            let mut c = chart(root, plot, caption, 18, x, y)?;
            time_mesh(&mut c, plot, from_us, y_desc)?;
            for (i, (name, points)) in lines.into_iter().enumerate() {
                labelled_line(&mut c, plot, i, name, points, true)?;
            }
            legend(&mut c, plot, at)
        })
    }
}

/// Per-node distribution (CDF) of the lags in `series`.
pub fn lag_cdf(title: &str, series: &[&LagSeries]) -> Result<String, PlotError> {
    const PLOT: &str = "lag distribution";
    let max = series.iter().flat_map(|s| s.lags_ms.last()).fold(0.0_f64, |a, b| a.max(*b));
    let empty = series.iter().all(|s| s.lags_ms.is_empty());
    svg(PLOT, empty, |root| {
        let mut c = chart(root, PLOT, title, 18, span(0.0, max.max(1.0)), 0.0..1.02)?;
        c.configure_mesh().x_desc("lag behind the first node (ms)").y_desc("fraction").draw().map_err(err(PLOT))?;
        for (i, s) in series.iter().enumerate() {
            let n = s.lags_ms.len() as f64;
            let points: Vec<(f64, f64)> = s
                .lags_ms
                .iter()
                .enumerate()
                .flat_map(|(k, x)| [(*x, k as f64 / n), (*x, (k + 1) as f64 / n)])
                .collect();
            labelled_line(&mut c, PLOT, i, format!("{} (n={})", s.node, s.lags_ms.len()), points, false)?;
        }
        legend(&mut c, PLOT, SeriesLabelPosition::LowerRight)
    })
}

/// Each block's spread over time.
pub fn spread(from_us: i64, to_us: i64, points: &[SpreadPoint]) -> Result<String, PlotError> {
    const PLOT: &str = "block spread";
    let secs = |us: i64| (us - from_us) as f64 / 1e6;
    let max = points.iter().map(|p| p.spread_ms).fold(0.0_f64, f64::max);
    svg(PLOT, points.is_empty(), |root| {
        let caption = "block spread across nodes (tip stage)";
        let mut c = chart(root, PLOT, caption, 18, span(0.0, secs(to_us)), span(0.0, max.max(1.0)))?;
        time_mesh(&mut c, PLOT, from_us, "spread (ms)")?;
        let colour = colour(0);
        let line = points.iter().map(|p| (secs(p.at_us), p.spread_ms));
        c.draw_series(LineSeries::new(line, colour.stroke_width(1))).map_err(err(PLOT))?;
        c.draw_series(points.iter().map(|p| Circle::new((secs(p.at_us), p.spread_ms), 3, colour.filled())))
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
        let caption =
            "tip height per node (▲ reorg, ● stale tip, ✕ invalid block, ◆ selfish-mining suspect, ■ lagging)";
        let mut chart = chart(root, PLOT, caption, 15, span(0.0, secs(to_us)), span(lo - 1.0, hi + 1.0))?;
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
            labelled_line(&mut chart, PLOT, i, node.to_string(), steps, false)?;
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
        legend(&mut chart, PLOT, SeriesLabelPosition::UpperLeft)
    })
}

/// Rejections per minute, one line per node and reason.
pub fn rejections(from_us: i64, to_us: i64, buckets: &[RejectionBucket]) -> Result<String, PlotError> {
    let secs = |us: i64| (us - from_us) as f64 / 1e6;
    let mut lines: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
    for b in buckets {
        lines.entry(format!("{}: {}", b.node, b.reason)).or_default().push((secs(b.minute_us), b.count as f64));
    }
    let max = buckets.iter().map(|b| b.count).max().unwrap_or(0) as f64;
    let first = buckets.iter().map(|b| secs(b.minute_us)).fold(0.0, f64::min);
    TimeLines {
        plot: "rejections",
        caption: "mempool rejections per minute, by node and reason",
        y_desc: "rejections / min",
        from_us,
        x: span(first, secs(to_us)),
        y: span(0.0, max.max(1.0)),
        legend: SeriesLabelPosition::UpperRight,
    }
    .draw(lines)
}

/// Mempool and template similarity readings over time, one line per node and kind.
pub fn similarity(from_us: i64, to_us: i64, points: &[SimilarityPoint]) -> Result<String, PlotError> {
    let secs = |us: i64| (us - from_us) as f64 / 1e6;
    let mut lines: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
    for p in points {
        lines.entry(format!("{} {}", p.node, p.of)).or_default().push((secs(p.at_us), p.similarity));
    }
    TimeLines {
        plot: "similarity",
        caption: "similarity to the network's majority, when it diverged",
        y_desc: "similarity",
        from_us,
        x: span(0.0, secs(to_us)),
        y: 0.0..1.05,
        legend: SeriesLabelPosition::LowerLeft,
    }
    .draw(lines)
}
