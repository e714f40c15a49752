//! [`timeline_svg`]: a pool's timeline as an SVG Gantt chart.

use super::titled::{Bar, Note, Titled};
use super::trace::{self, Trace};
use super::*;
use plotters::coord::Shift;
use plotters::prelude::*;

/// The timeline of a pool (the library's `Timeline::to_chrome_trace()`, parsed) as an SVG
/// Gantt chart `width` pixels wide: a row per worker, then a row per process; a bar per chunk
/// coloured by call (legend above), failed chunks and processes with a non-zero exit code
/// outlined in red; each bar a `<rect class="chunk">` / `<rect class="process">` with a
/// `<title>` (function, task indexes, duration, worker).
pub fn timeline_svg(trace: &serde_json::Value, width: u32) -> Result<String, RenderError> {
    let t = trace::parse(trace)?;
    draw_timeline(&t, width)
}

/// A legend entry: its text, its swatch, whether the swatch is hatched and outlined in red.
type Item = (String, ShapeStyle, bool);

struct Legend {
    items: Vec<Item>,
    lines: Vec<Vec<usize>>,
}

fn legend(t: &Trace, calls: &[(u64, String)], width: u32) -> Legend {
    let mut items: Vec<Item> = calls
        .iter()
        .enumerate()
        .map(|(i, (call, f))| {
            (
                format!("call {call}: {}", truncate(f, 48)),
                PALETTE[i % PALETTE.len()].filled(),
                false,
            )
        })
        .collect();
    if t.chunks.iter().any(|c| !c.ok) {
        items.push(("failed".into(), RGBColor(170, 170, 170).filled(), true));
    }
    if !t.procs.is_empty() {
        items.push(("process".into(), PROCESS.filled(), false));
    }
    if t.dropped > 0 {
        items.push((
            format!("({} older chunks dropped)", t.dropped),
            TRANSPARENT.filled(),
            false,
        ));
    }
    let avail = f64::from(width) - 20.0;
    let mut lines: Vec<Vec<usize>> = vec![];
    let mut x = f64::INFINITY;
    for (i, (text, _, _)) in items.iter().enumerate() {
        let w = 22.0 + CHAR_W * text.chars().count() as f64 + 14.0;
        if x + w > avail && !lines.last().is_some_and(Vec::is_empty) {
            lines.push(vec![]);
            x = 0.0;
        }
        lines.last_mut().expect("a line").push(i);
        x += w;
    }
    Legend { items, lines }
}

fn draw_legend(area: &DrawingArea<Titled<'_>, Shift>, l: &Legend) -> Result<(), RenderError> {
    let font = (FONT, LABEL).into_font();
    for (line, items) in l.lines.iter().enumerate() {
        let y = 8 + 20 * line as i32;
        let mut x = 10;
        for &i in items {
            let (text, swatch, outline) = &l.items[i];
            area.draw(&Rectangle::new([(x, y), (x + 14, y + 14)], *swatch))?;
            if *outline {
                hatch(area, (x, y), (x + 14, y + 14))?;
                area.draw(&PathElement::new(
                    vec![(x, y), (x + 14, y), (x + 14, y + 14), (x, y + 14), (x, y)],
                    FAILED.stroke_width(2),
                ))?;
            }
            area.draw(&Text::new(text.clone(), (x + 20, y + 1), font.clone()))?;
            x += (22.0 + CHAR_W * text.chars().count() as f64 + 14.0) as i32;
        }
    }
    Ok(())
}

/// White diagonal hatching over the pixel rectangle `a`..`b` (a failed chunk).
fn hatch(
    area: &DrawingArea<Titled<'_>, Shift>,
    a: (i32, i32),
    b: (i32, i32),
) -> Result<(), RenderError> {
    let (x0, x1) = (a.0.min(b.0), a.0.max(b.0));
    let (y0, y1) = (a.1.min(b.1), a.1.max(b.1));
    let style = WHITE.mix(0.75).stroke_width(2);
    // Lines x + y = k, every 7 px, clipped to the rectangle.
    let mut k = x0 + y0 + 7;
    while k < x1 + y1 {
        let (sx, ex) = ((k - y1).max(x0), (k - y0).min(x1));
        if sx < ex {
            area.draw(&PathElement::new(vec![(sx, k - sx), (ex, k - ex)], style))?;
        }
        k += 7;
    }
    Ok(())
}

fn draw_timeline(t: &Trace, width: u32) -> Result<String, RenderError> {
    let width = width.clamp(320, 10_000);
    // Calls in order, each with its function (the first chunk's name).
    let mut calls: Vec<(u64, String)> = vec![];
    for c in &t.chunks {
        if !calls.iter().any(|k| k.0 == c.call) {
            calls.push((c.call, c.function.clone()));
        }
    }
    calls.sort_by_key(|k| k.0);
    let colour = |call: u64| {
        let i = calls.iter().position(|k| k.0 == call).unwrap_or(0);
        PALETTE[i % PALETTE.len()]
    };

    let workers = t.rows.len();
    let labels: Vec<String> = t
        .rows
        .iter()
        .cloned()
        .chain(t.procs.iter().map(|p| format!("{} pid={}", p.name, p.pid)))
        .collect();
    let n = labels.len().max(1);
    let max_label = ((f64::from(width) * 0.35 / CHAR_W) as usize).max(8);
    let labels: Vec<String> = labels.iter().map(|l| truncate(l, max_label)).collect();
    let label_w = labels
        .iter()
        .map(|l| l.chars().count())
        .max()
        .unwrap_or(4)
        .max(4) as f64
        * CHAR_W
        + 14.0;

    let leg = legend(t, &calls, width);
    let legend_h = if leg.items.is_empty() {
        8
    } else {
        12 + 20 * leg.lines.len() as u32
    };
    let x_axis_h = 44;
    let height = legend_h + ROW_H * n as u32 + x_axis_h + 8;

    // Time range, relative to the first start; ms below 2 s, else s.
    let t0 = t
        .chunks
        .iter()
        .map(|c| c.ts)
        .chain(t.procs.iter().map(|p| p.ts))
        .fold(f64::INFINITY, f64::min);
    let t1 = t
        .chunks
        .iter()
        .map(|c| c.ts + c.dur)
        .chain(t.procs.iter().map(|p| p.ts + p.dur))
        .fold(f64::NEG_INFINITY, f64::max);
    let (t0, span) = if t0.is_finite() && t1 > t0 {
        (t0, t1 - t0)
    } else {
        (if t0.is_finite() { t0 } else { 0.0 }, 0.0)
    };
    let (unit, unit_name) = if span >= 2e6 { (1e6, "s") } else { (1e3, "ms") };
    let x_max = if span > 0.0 { span / unit * 1.02 } else { 1.0 };
    let decimals = if x_max >= 10.0 {
        0
    } else if x_max >= 1.0 {
        1
    } else if x_max >= 0.1 {
        2
    } else {
        3
    };
    let x = |us: f64| ((us - t0) / unit).clamp(0.0, x_max);
    let nf = n as f64;
    let centers: Vec<f64> = (0..n).map(|r| nf - r as f64 - 0.5).collect();
    let row_of = |y: f64| (nf - 0.5 - y).round();

    let mut buf = String::new();
    let notes = {
        let (backend, notes) = Titled::new(&mut buf, (width, height));
        let root = backend.into_drawing_area();
        root.fill(&WHITE)?;
        let (top, bottom) = root.split_vertically(legend_h);
        draw_legend(&top, &leg)?;
        let mut chart = ChartBuilder::on(&bottom)
            .margin_right(18)
            .margin_bottom(6)
            .x_label_area_size(x_axis_h - 6)
            .y_label_area_size(label_w as u32)
            .build_cartesian_2d(0f64..x_max, Keyed::new(0f64..nf, centers))?;
        // Alternate row bands, so idle gaps read as gaps in a row.
        chart.draw_series((0..n).filter(|r| r % 2 == 1).map(|r| {
            let y = nf - r as f64;
            Rectangle::new(
                [(0.0, y - 1.0), (x_max, y)],
                RGBColor(244, 244, 244).filled(),
            )
        }))?;
        let tick = |v: &f64| format!("{v:.decimals$}");
        let row_label = |y: &f64| {
            let r = row_of(*y);
            if r >= 0.0 && (r as usize) < labels.len() {
                labels[r as usize].clone()
            } else {
                String::new()
            }
        };
        chart
            .configure_mesh()
            .disable_y_mesh()
            .x_desc(format!("time since the first start ({unit_name})"))
            .x_label_formatter(&tick)
            .y_label_formatter(&row_label)
            .label_style((FONT, LABEL))
            .axis_desc_style((FONT, LABEL))
            .x_max_light_lines(2)
            .light_line_style(RGBColor(238, 238, 238))
            .bold_line_style(RGBColor(215, 215, 215))
            .draw()?;
        if workers > 0 && !t.procs.is_empty() {
            let y = nf - workers as f64;
            chart.draw_series(std::iter::once(PathElement::new(
                vec![(0.0, y), (x_max, y)],
                BLACK.mix(0.5).stroke_width(1),
            )))?;
        }
        let band = |r: usize| (nf - r as f64 - 0.82, nf - r as f64 - 0.18);
        let outline = |x0: f64, x1: f64, (y0, y1): (f64, f64)| {
            PathElement::new(
                vec![(x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0)],
                FAILED.stroke_width(2),
            )
        };
        let mut chunks: Vec<&trace::Chunk> = t.chunks.iter().collect();
        chunks.sort_by(|a, b| a.row.cmp(&b.row).then(a.ts.total_cmp(&b.ts)));
        // Runs of narrow chunks (under 3 px each, under 1 px apart, one worker, one call, all
        // ok or all failed) become one bar: 100 000 chunks would be a 20 MB SVG otherwise.
        let px = |us: f64| chart.backend_coord(&(x(us), 0.0)).0;
        let narrow = |c: &trace::Chunk| px(c.ts + c.dur) - px(c.ts) < 3;
        let mut runs: Vec<Vec<&trace::Chunk>> = vec![];
        for c in chunks {
            if let Some(run) = runs.last_mut() {
                let last = run[run.len() - 1];
                if last.row == c.row
                    && last.call == c.call
                    && last.ok == c.ok
                    && narrow(last)
                    && narrow(c)
                    && px(c.ts) - px(last.ts + last.dur) <= 1
                {
                    run.push(c);
                    continue;
                }
            }
            runs.push(vec![c]);
        }
        let span_of = |run: &[&trace::Chunk]| {
            let first = run[0];
            let last = run[run.len() - 1];
            (first.ts, last.ts + last.dur)
        };
        chart.draw_series(runs.iter().map(|run| {
            let c = run[0];
            let (y0, y1) = band(c.row);
            let (start, end) = span_of(run);
            let worker = t.rows.get(c.row).map_or("", String::as_str);
            let mut title = if run.len() == 1 {
                format!(
                    "{}\ncall {}: tasks {}..{} ({} task{})\n{}, {:.3}–{:.3} {unit_name}\n{worker}",
                    c.function,
                    c.call,
                    c.first,
                    c.first.saturating_add(c.tasks),
                    c.tasks,
                    if c.tasks == 1 { "" } else { "s" },
                    human(c.dur),
                    x(start),
                    x(end),
                )
            } else {
                let tasks = run.iter().map(|c| c.tasks).fold(0u64, u64::saturating_add);
                let busy: f64 = run.iter().map(|c| c.dur).sum();
                format!(
                    "{}\ncall {}: {} chunks, {tasks} tasks (from task {})\n{} busy, {:.3}–{:.3} {unit_name}\n{worker}\n(chunks too narrow to draw one by one)",
                    c.function,
                    c.call,
                    run.len(),
                    c.first,
                    human(busy),
                    x(start),
                    x(end),
                )
            };
            if !c.ok {
                title.push_str("\nFAILED (an error or a dead worker)");
            }
            Bar {
                corners: [(x(start), y0), (x(end), y1)],
                style: colour(c.call).filled(),
                note: Note {
                    class: if run.len() == 1 { "chunk" } else { "chunks" },
                    title,
                },
            }
        }))?;
        for run in runs.iter().filter(|r| !r[0].ok) {
            let (y0, y1) = band(run[0].row);
            let (start, end) = span_of(run);
            let a = chart.backend_coord(&(x(start), y1));
            let b = chart.backend_coord(&(x(end), y0));
            hatch(&root, a, b)?;
        }
        chart.draw_series(runs.iter().filter(|r| !r[0].ok).map(|run| {
            let (start, end) = span_of(run);
            outline(x(start), x(end), band(run[0].row))
        }))?;
        chart.draw_series(t.procs.iter().enumerate().map(|(i, p)| {
            let (y0, y1) = band(workers + i);
            let code = p
                .exitcode
                .map_or_else(|| "still running".to_string(), |c| format!("exit code {c}"));
            Bar {
                corners: [(x(p.ts), y0), (x(p.ts + p.dur), y1)],
                style: PROCESS.filled(),
                note: Note {
                    class: "process",
                    title: format!(
                        "{} (pid {})\n{}, {:.3}–{:.3} {unit_name}\n{code}",
                        p.name,
                        p.pid,
                        human(p.dur),
                        x(p.ts),
                        x(p.ts + p.dur)
                    ),
                },
            }
        }))?;
        chart.draw_series(
            t.procs
                .iter()
                .enumerate()
                .filter(|(_, p)| p.exitcode.is_some_and(|c| c != 0))
                .map(|(i, p)| outline(x(p.ts), x(p.ts + p.dur), band(workers + i))),
        )?;
        if t.chunks.is_empty() && t.procs.is_empty() {
            let style = (FONT, LABEL).into_font().color(&BLACK.mix(0.6)).pos(
                plotters::style::text_anchor::Pos::new(
                    plotters::style::text_anchor::HPos::Center,
                    plotters::style::text_anchor::VPos::Center,
                ),
            );
            chart.draw_series(std::iter::once(Text::new(
                "no chunks recorded",
                (x_max / 2.0, nf / 2.0),
                style,
            )))?;
        }
        root.present()?;
        notes
    };
    let notes = notes.borrow();
    finish(buf, &notes)
}
