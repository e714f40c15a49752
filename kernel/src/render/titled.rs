//! Hover titles for plotters' SVG output.
//!
//! plotters' `SVGBackend` writes every shape as a self-closing element (`<rect .../>`,
//! `<circle .../>`) and has no notion of a tooltip. [`Titled`] is a `DrawingBackend` that
//! forwards every call to an `SVGBackend` and counts the `<rect>` and `<circle>` elements it
//! makes it write; an element that wants a tooltip ([`Bar`], [`Dot`]) calls [`Titled::title_next`]
//! before drawing, so the wrapper knows the ordinal of its shape. After `present()`,
//! [`attach`] walks the SVG text and turns the n-th `<rect .../>` into
//! `<rect class=".."...><title>..</title></rect>`. The counts are checked against the text (a
//! plotters-svg that wrote shapes differently gives an error, never wrong titles).

use plotters::element::{Drawable, PointCollection};
use plotters::prelude::*;
use plotters_backend::{
    BackendColor, BackendCoord, BackendStyle, BackendTextStyle, DrawingErrorKind,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    Rect,
    Circle,
}

impl Shape {
    fn open(self) -> &'static str {
        match self {
            Shape::Rect => "<rect ",
            Shape::Circle => "<circle ",
        }
    }
    fn close(self) -> &'static str {
        match self {
            Shape::Rect => "</rect>",
            Shape::Circle => "</circle>",
        }
    }
}

/// What to attach to one shape.
#[derive(Clone, Debug)]
pub struct Note {
    pub class: &'static str,
    pub title: String,
}

/// The tooltips recorded while drawing: the shape kind, its ordinal among the shapes of that
/// kind, the note.
#[derive(Default, Debug)]
pub struct Notes {
    pub rects: usize,
    pub circles: usize,
    pub notes: Vec<(Shape, usize, Note)>,
}

pub struct Titled<'a> {
    inner: SVGBackend<'a>,
    pending: Option<Note>,
    notes: std::rc::Rc<std::cell::RefCell<Notes>>,
}

impl<'a> Titled<'a> {
    pub fn new(
        buf: &'a mut String,
        size: (u32, u32),
    ) -> (Self, std::rc::Rc<std::cell::RefCell<Notes>>) {
        let notes = std::rc::Rc::new(std::cell::RefCell::new(Notes::default()));
        (
            Self {
                inner: SVGBackend::with_string(buf, size),
                pending: None,
                notes: notes.clone(),
            },
            notes,
        )
    }

    /// The next `<rect>` or `<circle>` drawn gets this note.
    pub fn title_next(&mut self, note: Note) {
        self.pending = Some(note);
    }

    fn shape(&mut self, shape: Shape, visible: bool) {
        let pending = self.pending.take();
        if !visible {
            // SVGBackend writes nothing for a transparent shape.
            return;
        }
        let mut n = self.notes.borrow_mut();
        let ordinal = match shape {
            Shape::Rect => &mut n.rects,
            Shape::Circle => &mut n.circles,
        };
        let i = *ordinal;
        *ordinal += 1;
        if let Some(note) = pending {
            n.notes.push((shape, i, note));
        }
    }
}

impl DrawingBackend for Titled<'_> {
    type ErrorType = <SVGBackend<'static> as DrawingBackend>::ErrorType;

    fn get_size(&self) -> (u32, u32) {
        self.inner.get_size()
    }
    fn ensure_prepared(&mut self) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.ensure_prepared()
    }
    fn present(&mut self) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.present()
    }
    fn draw_pixel(
        &mut self,
        point: BackendCoord,
        color: BackendColor,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.shape(Shape::Rect, color.alpha != 0.0);
        self.inner.draw_pixel(point, color)
    }
    fn draw_line<S: BackendStyle>(
        &mut self,
        from: BackendCoord,
        to: BackendCoord,
        style: &S,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.draw_line(from, to, style)
    }
    fn draw_rect<S: BackendStyle>(
        &mut self,
        upper_left: BackendCoord,
        bottom_right: BackendCoord,
        style: &S,
        fill: bool,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.shape(Shape::Rect, style.color().alpha != 0.0);
        self.inner.draw_rect(upper_left, bottom_right, style, fill)
    }
    fn draw_path<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        path: I,
        style: &S,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.draw_path(path, style)
    }
    fn draw_circle<S: BackendStyle>(
        &mut self,
        center: BackendCoord,
        radius: u32,
        style: &S,
        fill: bool,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.shape(Shape::Circle, style.color().alpha != 0.0);
        self.inner.draw_circle(center, radius, style, fill)
    }
    fn fill_polygon<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        vert: I,
        style: &S,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.fill_polygon(vert, style)
    }
    fn draw_text<S: BackendTextStyle>(
        &mut self,
        text: &str,
        style: &S,
        pos: BackendCoord,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.draw_text(text, style, pos)
    }
    fn estimate_text_size<S: BackendTextStyle>(
        &self,
        text: &str,
        style: &S,
    ) -> Result<(u32, u32), DrawingErrorKind<Self::ErrorType>> {
        self.inner.estimate_text_size(text, style)
    }
    fn blit_bitmap(
        &mut self,
        pos: BackendCoord,
        size: (u32, u32),
        src: &[u8],
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.blit_bitmap(pos, size, src)
    }
}

/// A filled rectangle in chart coordinates with a tooltip (a chunk, a process).
pub struct Bar {
    pub corners: [(f64, f64); 2],
    pub style: ShapeStyle,
    pub note: Note,
}

impl<'b> PointCollection<'b, (f64, f64)> for &'b Bar {
    type Point = &'b (f64, f64);
    type IntoIter = &'b [(f64, f64)];
    fn point_iter(self) -> Self::IntoIter {
        &self.corners
    }
}

impl Drawable<Titled<'_>> for Bar {
    fn draw<I: Iterator<Item = BackendCoord>>(
        &self,
        mut pos: I,
        backend: &mut Titled<'_>,
        _: (u32, u32),
    ) -> Result<(), DrawingErrorKind<<Titled<'_> as DrawingBackend>::ErrorType>> {
        let (Some(a), Some(b)) = (pos.next(), pos.next()) else {
            return Ok(());
        };
        let upper_left = (a.0.min(b.0), a.1.min(b.1));
        let mut bottom_right = (a.0.max(b.0), a.1.max(b.1));
        // A 1 px gap at the right end of bars wide enough, so back-to-back chunks of one
        // worker read as separate bars (never wider: bars stay inside their time range).
        if bottom_right.0 - upper_left.0 >= 4 {
            bottom_right.0 -= 1;
        }
        backend.title_next(self.note.clone());
        backend.draw_rect(upper_left, bottom_right, &self.style, self.style.filled)
    }
}

/// A filled circle (a measured point) with a tooltip.
pub struct Dot {
    pub at: [(f64, f64); 1],
    pub radius: u32,
    pub style: ShapeStyle,
    pub note: Note,
}

impl<'b> PointCollection<'b, (f64, f64)> for &'b Dot {
    type Point = &'b (f64, f64);
    type IntoIter = &'b [(f64, f64)];
    fn point_iter(self) -> Self::IntoIter {
        &self.at
    }
}

impl Drawable<Titled<'_>> for Dot {
    fn draw<I: Iterator<Item = BackendCoord>>(
        &self,
        mut pos: I,
        backend: &mut Titled<'_>,
        _: (u32, u32),
    ) -> Result<(), DrawingErrorKind<<Titled<'_> as DrawingBackend>::ErrorType>> {
        let Some(c) = pos.next() else { return Ok(()) };
        backend.title_next(self.note.clone());
        backend.draw_circle(c, self.radius, &self.style, self.style.filled)
    }
}

fn escape(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
}

/// Puts the recorded notes into the SVG text. `None` if the text does not hold the shapes the
/// wrapper counted (then the caller reports an error).
pub fn attach(svg: &str, notes: &Notes) -> Option<String> {
    // Every '<' in plotters-svg's attribute values and texts is escaped, so each "<rect " is a
    // rect element, each ending at the first "/>" after it.
    let mut found = Vec::new(); // (offset, shape)
    for shape in [Shape::Rect, Shape::Circle] {
        found.extend(svg.match_indices(shape.open()).map(|(i, _)| (i, shape)));
    }
    found.sort_by_key(|f| f.0);
    let count = |s| found.iter().filter(|f| f.1 == s).count();
    if count(Shape::Rect) != notes.rects || count(Shape::Circle) != notes.circles {
        return None;
    }
    let mut rect_offsets = Vec::new();
    let mut circle_offsets = Vec::new();
    for (i, s) in &found {
        match s {
            Shape::Rect => rect_offsets.push(*i),
            Shape::Circle => circle_offsets.push(*i),
        }
    }
    // (offset of the element, its shape, note), in text order.
    let mut edits: Vec<(usize, Shape, &Note)> = notes
        .notes
        .iter()
        .map(|(shape, n, note)| {
            let at = match shape {
                Shape::Rect => rect_offsets[*n],
                Shape::Circle => circle_offsets[*n],
            };
            (at, *shape, note)
        })
        .collect();
    edits.sort_by_key(|e| e.0);
    let mut out = String::with_capacity(svg.len() + edits.len() * 96);
    let mut done = 0;
    for (at, shape, note) in edits {
        let end = at + svg[at..].find("/>")?;
        out.push_str(&svg[done..at]);
        out.push_str(shape.open());
        out.push_str("class=\"");
        out.push_str(note.class);
        out.push_str("\" ");
        out.push_str(svg[at + shape.open().len()..end].trim_end());
        out.push_str("><title>");
        escape(&mut out, &note.title);
        out.push_str("</title>");
        out.push_str(shape.close());
        done = end + 2;
    }
    out.push_str(&svg[done..]);
    Some(out)
}
