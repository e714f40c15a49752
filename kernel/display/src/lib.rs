//! Rich output for notebook cells run by the `rustmp` kernel: publish HTML, SVG, PNG, JSON,
//! Markdown or any MIME bundle as Jupyter `display_data`, and update it in place
//! (`update_display_data`).
//!
//! ```
//! use rustmp_display::{Display, html};
//! html("<b>bold</b>");
//! let progress = Display::text("0 %");
//! progress.update_text("100 %");
//! ```
//!
//! Outside the kernel the calls write a marked line to stdout that a terminal shows as nothing
//! (an OSC escape sequence), so code using them still runs anywhere.
//!
//! The crate also holds the kernel's cell-side hooks (hidden): when the runtime process sets
//! `RUSTMP_RUNTIME_HOOKS`, loading this crate registers a function that flushes the cells' stdout
//! and stderr, and installs a panic hook that reports panics to the kernel as one structured
//! record (so a panic becomes one `error` output, not loose stderr text).

#![warn(missing_docs)]

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};

// Records are written in the library's format (an OSC escape sequence, ignored by terminals).
use multiprocessing::host::record::{self, base64_encode as base64, json_string};

/// Writes one record to stdout, whole, after what the cell printed before it.
fn emit(kind: &str, json: &str) {
    write_record(&mut std::io::stdout().lock(), kind, json);
}

/// Writes one record (`kind` and its JSON) to `out` in one write, after what `out` buffered.
fn write_record(out: &mut impl Write, kind: &str, json: &str) {
    let record = record::encode(kind, json.as_bytes());
    let _ = out.flush();
    let _ = out.write_all(&record);
    let _ = out.flush();
}

/// A MIME bundle: `(mime type, value)` pairs. Text types carry text; binary ones (images) must be
/// base64 already, as Jupyter wants them; `application/json` carries JSON text.
pub type Bundle<'a> = &'a [(&'a str, &'a str)];

fn bundle_json(bundle: Bundle<'_>) -> String {
    let items: Vec<String> = bundle
        .iter()
        .map(|(mime, value)| {
            let v = if *mime == "application/json" || mime.ends_with("+json") {
                (*value).to_string()
            } else {
                json_string(value)
            };
            format!("{}:{}", json_string(mime), v)
        })
        .collect();
    format!("{{{}}}", items.join(","))
}

/// Publishes a MIME bundle as `display_data`.
///
/// ```
/// rustmp_display::display(&[("text/html", "<i>hi</i>"), ("text/plain", "hi")]);
/// ```
pub fn display(bundle: Bundle<'_>) {
    emit("display", &format!("{{\"data\":{}}}", bundle_json(bundle)));
}

/// Publishes HTML.
///
/// ```
/// rustmp_display::html("<table><tr><td>1</td></tr></table>");
/// ```
pub fn html(html: &str) {
    display(&[("text/html", html), ("text/plain", "<HTML>")]);
}

/// Publishes an SVG image.
///
/// ```
/// rustmp_display::svg(r#"<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>"#);
/// ```
pub fn svg(svg: &str) {
    display(&[("image/svg+xml", svg), ("text/plain", "<SVG>")]);
}

/// Publishes a PNG image from its bytes.
///
/// ```
/// rustmp_display::png(b"\x89PNG\r\n\x1a\n");
/// ```
pub fn png(bytes: &[u8]) {
    display(&[("image/png", &base64(bytes)), ("text/plain", "<PNG>")]);
}

/// Publishes JSON (the text must be valid JSON).
///
/// ```
/// rustmp_display::json(r#"{"a": [1, 2]}"#);
/// ```
pub fn json(json: &str) {
    display(&[("application/json", json), ("text/plain", json)]);
}

/// Publishes Markdown.
///
/// ```
/// rustmp_display::markdown("**bold**");
/// ```
pub fn markdown(md: &str) {
    display(&[("text/markdown", md), ("text/plain", md)]);
}

fn read_input(prompt: &str, password: bool) -> String {
    let kind = if password {
        "EVCXR_INPUT_REQUEST_PASSWORD"
    } else {
        "EVCXR_INPUT_REQUEST"
    };
    {
        let mut out = std::io::stdout().lock();
        let _ = out.flush();
        let _ = writeln!(out, "{kind}:{prompt}");
        let _ = out.flush();
    }
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
    line.trim_end_matches(['\r', '\n']).to_string()
}

/// Asks the notebook user for a line of text (Jupyter's `input_request`; the frontend must allow
/// stdin). Outside the kernel it reads a line from stdin.
///
/// ```no_run
/// let name = rustmp_display::input("Your name? ");
/// println!("hello {name}");
/// ```
pub fn input(prompt: &str) -> String {
    read_input(prompt, false)
}

/// Like [`input`], but the frontend hides what is typed.
///
/// ```no_run
/// let secret = rustmp_display::password("Token: ");
/// # let _ = secret;
/// ```
pub fn password(prompt: &str) -> String {
    read_input(prompt, true)
}

/// Clears the cell's output (`clear_output`); with `wait`, only when new output arrives.
///
/// ```
/// rustmp_display::clear_output(true);
/// ```
pub fn clear_output(wait: bool) {
    emit("clear", &format!("{{\"wait\":{wait}}}"));
}

/// An output that can be replaced in place later (`display_data` with a `display_id`, then
/// `update_display_data`): progress, live tables, plots that change.
///
/// ```
/// use rustmp_display::Display;
/// let d = Display::html("<p>step 1</p>");
/// d.update_html("<p>step 2</p>");
/// ```
#[derive(Debug, Clone)]
pub struct Display {
    id: String,
}

impl Display {
    fn show(bundle: Bundle<'_>) -> Display {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let id = format!(
            "rustmp-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let d = Display { id };
        d.publish("display", bundle);
        d
    }

    fn publish(&self, kind: &str, bundle: Bundle<'_>) {
        emit(
            kind,
            &format!(
                "{{\"data\":{},\"display_id\":{}}}",
                bundle_json(bundle),
                json_string(&self.id)
            ),
        );
    }

    /// Shows a MIME bundle that can be updated.
    ///
    /// ```
    /// let d = rustmp_display::Display::new(&[("text/plain", "x")]);
    /// # let _ = d;
    /// ```
    pub fn new(bundle: Bundle<'_>) -> Display {
        Display::show(bundle)
    }

    /// Shows plain text that can be updated.
    ///
    /// ```
    /// let d = rustmp_display::Display::text("0 %");
    /// d.update_text("50 %");
    /// ```
    pub fn text(text: &str) -> Display {
        Display::show(&[("text/plain", text)])
    }

    /// Shows HTML that can be updated.
    ///
    /// ```
    /// let d = rustmp_display::Display::html("<b>1</b>");
    /// d.update_html("<b>2</b>");
    /// ```
    pub fn html(html: &str) -> Display {
        Display::show(&[("text/html", html), ("text/plain", "<HTML>")])
    }

    /// The display id (Jupyter's `transient.display_id`).
    ///
    /// ```
    /// assert!(rustmp_display::Display::text("x").id().starts_with("rustmp-"));
    /// ```
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Replaces the output with a new MIME bundle.
    ///
    /// ```
    /// let d = rustmp_display::Display::text("a");
    /// d.update(&[("text/plain", "b")]);
    /// ```
    pub fn update(&self, bundle: Bundle<'_>) {
        self.publish("update", bundle);
    }

    /// Replaces the output with text.
    ///
    /// ```
    /// rustmp_display::Display::text("a").update_text("b");
    /// ```
    pub fn update_text(&self, text: &str) {
        self.update(&[("text/plain", text)]);
    }

    /// Replaces the output with HTML.
    ///
    /// ```
    /// rustmp_display::Display::html("a").update_html("<b>b</b>");
    /// ```
    pub fn update_html(&self, html: &str) {
        self.update(&[("text/html", html), ("text/plain", "<HTML>")]);
    }
}

/// The kernel runtime's hooks (not for users).
#[doc(hidden)]
#[path = "runtime.rs"]
pub mod __runtime;

/// The kernel's `eprintln!` for the cells (hidden; the kernel imports it as `eprintln` at start):
/// std's `eprintln!`, except in evcxr's `?` handler, whose `eprintln!("{}", error)` would put the
/// message on stderr; there the message goes to the kernel as the cell's error (see
/// [`__runtime::eprintln_at`]).
///
/// ```
/// use rustmp_display::__eprintln as eprintln;
/// let x = 1;
/// eprintln!("{}", x);
/// eprintln!("x = {x}");
/// ```
#[doc(hidden)]
#[macro_export]
macro_rules! __eprintln {
    ($fmt:literal, $e:ident) => {
        match ::std::format_args!($fmt, $e) {
            args => {
                // Its path names the function this expands in.
                fn rustmp_site() {}
                $crate::__runtime::eprintln_at(::std::any::type_name_of_val(&rustmp_site), args)
            }
        }
    };
    ($($arg:tt)*) => { ::std::eprintln!($($arg)*) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_the_standard_alphabet() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }

    #[test]
    fn bundles_are_json() {
        assert_eq!(
            bundle_json(&[("text/plain", "a\"b\n"), ("application/json", "[1]")]),
            r#"{"text/plain":"a\"b\n","application/json":[1]}"#
        );
    }
}
