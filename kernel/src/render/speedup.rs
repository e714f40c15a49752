//! [`speedup_svg`]: measured speedup against worker count, with the ideal line.

use super::titled::{Dot, Note, Titled};
use super::*;
use plotters::prelude::*;

/// Measured speedup (`(workers, speedup)`, e.g. `t(1) / t(n)`) against the ideal `y = x`, as an
/// SVG `width` pixels wide; each measured point a `<circle class="point">` with a `<title>`.
pub fn speedup_svg(points: &[(usize, f64)], width: u32) -> Result<String, RenderError> {
    if points.is_empty() {
        return Err(RenderError::Data("no measurements".into()));
    }
    if let Some(p) = points
        .iter()
        .find(|p| p.0 == 0 || !p.1.is_finite() || p.1 < 0.0)
    {
        return Err(RenderError::Data(format!(
            "({}, {}): workers must be ≥ 1 and speedup finite and ≥ 0",
            p.0, p.1
        )));
    }
    let mut points = points.to_vec();
    points.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)));
    let width = width.clamp(320, 10_000);
    let height = (width * 3 / 5).clamp(260, 800);
    let n_max = points.iter().map(|p| p.0).max().unwrap_or(1);
    let s_max = points.iter().map(|p| p.1).fold(0.0, f64::max);
    let nf = n_max as f64;
    let y_max = nf.max(s_max) * 1.08;
    let x_range = 0.5f64..nf + 0.5;

    let mut buf = String::new();
    let notes = {
        let (backend, notes) = Titled::new(&mut buf, (width, height));
        let root = backend.into_drawing_area();
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .margin(14)
            .x_label_area_size(44)
            .y_label_area_size(56)
            .build_cartesian_2d(
                Keyed::new(
                    x_range,
                    if n_max <= 32 {
                        (1..=n_max).map(|k| k as f64).collect()
                    } else {
                        (1..=8).map(|k| (k * n_max / 8) as f64).collect()
                    },
                ),
                0f64..y_max,
            )?;
        chart
            .configure_mesh()
            .x_desc("workers")
            .y_desc("speedup (against the fewest workers measured)")
            .max_light_lines(1)
            .x_label_formatter(&|v| format!("{v:.0}"))
            .y_label_formatter(&|v| format!("{v:.1}"))
            .label_style((FONT, LABEL))
            .axis_desc_style((FONT, LABEL))
            .light_line_style(RGBColor(238, 238, 238))
            .bold_line_style(RGBColor(215, 215, 215))
            .draw()?;
        let ideal = BLACK.mix(0.55).stroke_width(2);
        chart
            .draw_series(DashedLineSeries::new([(1.0, 1.0), (nf, nf)], 8, 5, ideal))?
            .label("ideal (y = x)")
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], ideal));
        let measured = PALETTE[0].stroke_width(2);
        chart
            .draw_series(LineSeries::new(
                points.iter().map(|p| (p.0 as f64, p.1)),
                measured,
            ))?
            .label("measured")
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], measured));
        chart.draw_series(points.iter().map(|&(k, s)| Dot {
            at: [(k as f64, s)],
            radius: 4,
            style: PALETTE[0].filled(),
            note: Note {
                class: "point",
                title: format!(
                    "{k} worker{}: speedup {s:.2}× (efficiency {:.0} %)",
                    if k == 1 { "" } else { "s" },
                    100.0 * s / k as f64
                ),
            },
        }))?;
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .label_font((FONT, LABEL))
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK.mix(0.3))
            .draw()?;
        root.present()?;
        notes
    };
    let notes = notes.borrow();
    finish(buf, &notes)
}
