//! Charts for cells, drawn with plotters' SVG backend: a pool's timeline (the library's Chrome
//! trace-event JSON, `Timeline::to_chrome_trace`) as a Gantt chart ([`timeline_svg`]), and a
//! speedup chart ([`speedup_svg`]). No fonts needed: the SVG backend writes
//! `<text>` elements and the browser lays them out; plotters (without `ttf`/`ab_glyph`) only
//! estimates text extents for its own layout.

#[cfg(test)]
mod sample;
mod speedup;
#[cfg(test)]
mod tests;
mod timeline;
mod titled;
mod trace;

pub use speedup::speedup_svg;
pub use timeline::timeline_svg;

use plotters::prelude::*;
use std::fmt;

/// Why a chart could not be drawn.
#[derive(Debug, Clone, PartialEq)]
pub enum RenderError {
    /// The trace is not the library's Chrome trace-event JSON.
    Trace(String),
    /// The data cannot be charted (no points, a NaN, ...).
    Data(String),
    /// plotters failed (or the titles could not be attached).
    Draw(String),
}

impl fmt::Display for RenderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RenderError::Trace(e) => write!(f, "not a timeline trace: {e}"),
            RenderError::Data(e) => write!(f, "cannot chart this: {e}"),
            RenderError::Draw(e) => write!(f, "drawing failed: {e}"),
        }
    }
}

impl std::error::Error for RenderError {}

impl<E: std::error::Error + Send + Sync> From<DrawingAreaErrorKind<E>> for RenderError {
    fn from(e: DrawingAreaErrorKind<E>) -> Self {
        RenderError::Draw(e.to_string())
    }
}

/// Colours of calls: Tableau 10 without its red (failures) and grey (processes).
const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
    RGBColor(174, 199, 232),
    RGBColor(255, 187, 120),
];
const FAILED: RGBColor = RGBColor(214, 39, 40);
const PROCESS: RGBColor = RGBColor(150, 150, 150);
const FONT: &str = "sans-serif";
/// plotters' font size (the SVG backend writes size / 1.24 as the CSS font-size).
const LABEL: u32 = 15;
/// Pixels per character of LABEL text, for our own layout (a generous average).
const CHAR_W: f64 = 6.8;
const ROW_H: u32 = 26;

/// A linear f64 axis whose ticks are given (row centres, worker counts): plotters'
/// `WithKeyPoints` over f64 has no `ValueFormatter`, so the mesh would not take it.
#[derive(Clone)]
struct Keyed {
    linear: plotters::coord::types::RangedCoordf64,
    keys: Vec<f64>,
}

impl Keyed {
    fn new(range: std::ops::Range<f64>, keys: Vec<f64>) -> Self {
        Keyed {
            linear: range.into(),
            keys,
        }
    }
}

impl Ranged for Keyed {
    type FormatOption = plotters::coord::ranged1d::DefaultFormatting;
    type ValueType = f64;
    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        self.linear.map(value, limit)
    }
    fn key_points<H: plotters::coord::ranged1d::KeyPointHint>(&self, hint: H) -> Vec<f64> {
        let max = hint.max_num_points().max(1);
        let step = self.keys.len().div_ceil(max).max(1);
        self.keys.iter().step_by(step).copied().collect()
    }
    fn range(&self) -> std::ops::Range<f64> {
        self.linear.range()
    }
}

/// A duration in microseconds, for people.
fn human(us: f64) -> String {
    if us < 1e3 {
        format!("{us:.0} µs")
    } else if us < 1e6 {
        format!("{:.2} ms", us / 1e3)
    } else {
        format!("{:.3} s", us / 1e6)
    }
}

fn truncate(s: &str, max_chars: usize) -> String {
    if s.chars().count() <= max_chars {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max_chars.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

fn finish(buf: String, notes: &titled::Notes) -> Result<String, RenderError> {
    titled::attach(&buf, notes).ok_or_else(|| {
        RenderError::Draw("the SVG does not hold the shapes drawn (plotters-svg changed?)".into())
    })
}

/// The width the charts are drawn at, in pixels.
const WIDTH: u32 = 900;

/// The MIME bundle a cell shows for a timeline record (the library's Chrome trace JSON): the
/// chart as inline HTML (JupyterLab shows `image/svg+xml` as an image, without the bars' hover
/// titles) and as SVG, and a line of text; a trace that cannot be drawn shows why, as text.
pub fn timeline_bundle(trace: &serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
    let summary = match trace::parse(trace) {
        Ok(t) => format!(
            "Timeline: {} chunks on {} workers, {} processes",
            t.chunks.len(),
            t.rows.len(),
            t.procs.len()
        ),
        Err(e) => format!("Timeline: {e}"),
    };
    bundle(timeline_svg(trace, WIDTH), summary)
}

/// The MIME bundle for a speedup record: `{"points": [[workers, speedup], ...]}`.
pub fn speedup_bundle(record: &serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
    let points: Option<Vec<(usize, f64)>> = record
        .get("points")
        .and_then(serde_json::Value::as_array)
        .map(|points| {
            points
                .iter()
                .filter_map(|p| Some((p.get(0)?.as_u64()? as usize, p.get(1)?.as_f64()?)))
                .collect()
        });
    let points = points.unwrap_or_default();
    let summary = points
        .iter()
        .map(|(n, s)| format!("{n}: {s:.2}×"))
        .collect::<Vec<_>>()
        .join(", ");
    bundle(speedup_svg(&points, WIDTH), format!("Speedup: {summary}"))
}

fn bundle(
    svg: Result<String, RenderError>,
    text: String,
) -> serde_json::Map<String, serde_json::Value> {
    let mut data = serde_json::Map::new();
    match svg {
        Ok(svg) => {
            data.insert("text/html".into(), svg.clone().into());
            data.insert("image/svg+xml".into(), svg.into());
            data.insert("text/plain".into(), text.into());
        }
        Err(e) => {
            data.insert(
                "text/plain".into(),
                format!("{text} (cannot draw it: {e})").into(),
            );
        }
    }
    data
}
