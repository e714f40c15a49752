"""The network-free cells of evcxr_jupyter's own tour notebook
(`evcxr_jupyter/samples/evcxr_jupyter_tour.ipynb`), run on rustmp in their order, each checked
against what evcxr_jupyter shows for it (the outputs recorded in that notebook). Among them, a
display that comes from a trait (`evcxr_image::ImageDisplay`, or a cell's own trait) shows the
image, as in evcxr_jupyter, while a plain value still compiles once."""
import base64
import os
import re
import struct
import tempfile

import pytest
from jupyter_client.manager import start_new_kernel

from conftest import KERNEL, WARMUP_TIMEOUT, execute, stream_text

# Fetching and building `image` and `evcxr_image` takes a while on a cold cache.
DEP_TIMEOUT = 1200


@pytest.fixture(scope="module")
def tour():
    """A fresh kernel whose rustc wrapper logs each compile of the cells' crate."""
    log = tempfile.NamedTemporaryFile(prefix="rustmp-compiles-", delete=False)
    log.close()
    try:
        km, kc = start_new_kernel(kernel_name=KERNEL, startup_timeout=120,
                                  env=dict(os.environ, RUSTMP_WRAPPER_LOG=log.name))
        yield kc, log.name
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    finally:
        os.unlink(log.name)


def run(kc, code, timeout=WARMUP_TIMEOUT):
    reply, outputs, _ = execute(kc, code, timeout=timeout, stop_on_error=False)
    return reply["content"], outputs


def result(outputs):
    data = [m["content"]["data"] for m in outputs if m["msg_type"] == "execute_result"]
    assert len(data) == 1, str(outputs)[:1000]
    return data[0]


def compiles(log, run_cell):
    """How many times the cells' crate was compiled while `run_cell()` ran."""
    before = open(log).read().count("\n")
    out = run_cell()
    return open(log).read().count("\n") - before, out


def test_the_tour(tour):
    kc, log = tour

    # Printing to outputs and evaluating expressions.
    reply, outputs = run(kc, 'println!("Hello world");\neprintln!("Hello error");\nformat!("Hello {}", "world")')
    assert reply["status"] == "ok", reply
    assert stream_text(outputs, "stdout") == "Hello world\n"
    assert stream_text(outputs, "stderr") == "Hello error\n"
    assert result(outputs) == {"text/plain": '"Hello world"'}

    # Assigning and making use of variables.
    assert run(kc, 'let mut message = "Hello ".to_owned();')[0]["status"] == "ok"
    assert run(kc, 'message.push_str("world!");')[0]["status"] == "ok"
    assert result(run(kc, "message")[1]) == {"text/plain": '"Hello world!"'}

    # Defining and redefining functions.
    assert run(kc, "pub fn fib(x: i32) -> i32 {\n    if x <= 2 {0} else {fib(x - 2) + fib(x - 1)}\n}")[0]["status"] == "ok"
    assert result(run(kc, "(1..13).map(fib).collect::<Vec<i32>>()")[1]) == {"text/plain": "[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]"}
    assert run(kc, "pub fn fib(x: i32) -> i32 {\n    if x <= 2 {2} else {fib(x - 2) + fib(x - 1)}\n}")[0]["status"] == "ok"
    assert result(run(kc, "let values = (1..13).map(fib).collect::<Vec<i32>>();\nvalues")[1]) == {
        "text/plain": "[2, 2, 4, 6, 10, 16, 26, 42, 68, 110, 178, 288]"}

    # Spawning a separate thread and communicating with it between cells (the tour's thread
    # counts to 300 in 30 s; this one counts on, so that a slow compile cannot outlast it).
    reply, _ = run(kc, """use std::sync::{Mutex, Arc};
let counter = Arc::new(Mutex::new(0i32));
std::thread::spawn({
    let counter = Arc::clone(&counter);
    move || {
        loop {
            *counter.lock().unwrap() += 1;
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
}});""")
    assert reply["status"] == "ok", reply
    first = int(result(run(kc, "*counter.lock()?")[1])["text/plain"])
    second = int(result(run(kc, "*counter.lock()?")[1])["text/plain"])
    assert 0 < first < second, (first, second)

    # Loading external crates.
    reply, outputs = run(kc, ':dep base64 = "0.10.1"\nbase64::encode(&vec![1, 2, 3, 4])', timeout=DEP_TIMEOUT)
    assert reply["status"] == "ok", reply
    assert result(outputs) == {"text/plain": '"AQIDBA=="'}

    # Customizing how types are displayed: a type's own `evcxr_display`.
    reply, _ = run(kc, r'''use std::fmt::Debug;
pub struct Matrix<T> {pub values: Vec<T>, pub row_size: usize}
impl<T: Debug> Matrix<T> {
    pub fn evcxr_display(&self) {
        let mut html = String::new();
        html.push_str("<table>");
        for r in 0..(self.values.len() / self.row_size) {
            html.push_str("<tr>");
            for c in 0..self.row_size {
                html.push_str("<td>");
                html.push_str(&format!("{:?}", self.values[r * self.row_size + c]));
                html.push_str("</td>");
            }
            html.push_str("</tr>");
        }
        html.push_str("</table>");
        println!("EVCXR_BEGIN_CONTENT text/html\n{}\nEVCXR_END_CONTENT", html);
    }
}''')
    assert reply["status"] == "ok", reply
    assert result(run(kc, "let m = Matrix {values: vec![1,2,3,4,5,6,7,8,9], row_size: 3};\nm")[1]) == {
        "text/html": "<table><tr><td>1</td><td>2</td><td>3</td></tr><tr><td>4</td><td>5</td><td>6</td></tr>"
                     "<tr><td>7</td><td>8</td><td>9</td></tr></table>"}

    # Display of compilation errors: the message, the offending line of the cell, rustc's hint.
    reply, outputs = run(kc, 'let mut s = String::new();\ns.push_str(format!("foo {}", 42));')
    assert reply["status"] == "error"
    assert reply["evalue"] == "mismatched types"
    errors = [m["content"] for m in outputs if m["msg_type"] == "error"]
    assert len(errors) == 1
    text = re.sub(r"\x1b\[[0-9;]*m", "", "\n".join(errors[0]["traceback"]))
    assert 's.push_str(format!("foo {}", 42));' in text
    assert "expected `&str`, found `String`" in text

    # Seeing what variables have been defined, and the other commands.
    vars_text = result(run(kc, ":vars")[1])["text/plain"]
    for name in ("message: String", "values: ", "counter: ", "m: "):
        assert name in vars_text, vars_text
    assert "Matrix<i32>" in vars_text
    assert ":vars" in result(run(kc, ":help")[1])["text/plain"]

    # A plain value compiles once (the kernel's own Debug display, no second try).
    n, (reply, outputs) = compiles(log, lambda: run(kc, "values.len() + 1"))
    assert result(outputs) == {"text/plain": "13"}
    assert n == 1, f"a plain value was compiled {n} times"


def png_size(data):
    png = base64.b64decode(data)
    assert png[:8] == b"\x89PNG\r\n\x1a\n", png[:8]
    return struct.unpack(">II", png[16:24])


IMAGE = """image::ImageBuffer::from_fn(256, 256, |x, y| {
    if (x as i32 - y as i32).abs() < 3 {
        image::Rgb([0, 0, 255])
    } else {
        image::Rgb([0, 0, 0])
    }
})"""


def test_a_display_from_a_crates_trait_shows_the_image(tour):
    kc, log = tour
    code = ':dep image = "0.23"\n:dep evcxr_image = "1.1"\nuse evcxr_image::ImageDisplay;\n' + IMAGE
    reply, outputs = run(kc, code, timeout=DEP_TIMEOUT)
    assert reply["status"] == "ok", reply
    data = result(outputs)
    assert "image/png" in data, f"the trait's display was lost: {str(data)[:200]}"
    assert png_size(data["image/png"]) == (256, 256)
    # The next image cell too, and a plain value after them still compiles once.
    assert "image/png" in result(run(kc, IMAGE.replace("255", "128"))[1])
    n, (reply, outputs) = compiles(log, lambda: run(kc, "2 * 21"))
    assert result(outputs) == {"text/plain": "42"}
    assert n == 1, f"a plain value was compiled {n} times"


def test_a_display_from_a_cells_own_trait(tour):
    """The older tour's form: the cell defines the trait that gives a type its display."""
    kc, _ = tour
    reply, _ = run(kc, r'''pub trait EvcxrResult {fn evcxr_display(&self);}
impl EvcxrResult for std::time::Duration {
    fn evcxr_display(&self) {
        println!("EVCXR_BEGIN_CONTENT text/html\n<b>{} ms</b>\nEVCXR_END_CONTENT", self.as_millis());
    }
}''')
    assert reply["status"] == "ok", reply
    assert result(run(kc, "std::time::Duration::from_millis(1500)")[1]) == {"text/html": "<b>1500 ms</b>"}
    # Types without that trait keep the Debug display.
    assert result(run(kc, 'String::from("plain")')[1]) == {"text/plain": '"plain"'}
