"""jupyter_kernel_test's conformance suite, every attribute filled."""
import unittest

import jupyter_kernel_test as jkt

from conftest import KERNEL, WARMUP_TIMEOUT, execute


class RustmpKernelTests(jkt.KernelTests):
    kernel_name = KERNEL
    language_name = "rust"
    file_extension = ".rs"

    code_hello_world = 'println!("hello, world");'
    code_stderr = 'eprintln!("oops, stderr");'
    completion_samples = [{"text": "let v: Vec<u8> = Vec::new(); v.capaci", "matches": {"capacity()"}}]
    complete_code_samples = ["1 + 1", "let x = 1;", "fn f() -> u32 { 1 }", 'let s = "}";']
    incomplete_code_samples = ["fn f() {", "let v = vec![1,", 'let s = "open']
    invalid_code_samples = ["let x = 1; }", "(]"]
    code_generate_error = 'panic!("something went wrong");'
    code_execute_result = [{"code": "6 * 7", "result": "42"}, {"code": '"a".repeat(3)', "result": '"aaa"'}]
    code_display_data = [
        {"code": 'rustmp_display::html("<b>bold</b>");', "mime": "text/html"},
        {"code": 'rustmp_display::svg("<svg xmlns=\\"http://www.w3.org/2000/svg\\"/>");', "mime": "image/svg+xml"},
        {"code": 'rustmp_display::json("{\\"a\\": 1}");', "mime": "application/json"},
    ]
    supported_history_operations = ("tail", "range", "search")
    code_history_pattern = "6 *"
    code_inspect_sample = "std::vec::Vec"
    code_page_something = "?std::vec::Vec"
    code_clear_output = "rustmp_display::clear_output(false);"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        reply, _, _ = execute(cls.kc, "1", timeout=WARMUP_TIMEOUT)
        assert reply["content"]["status"] == "ok", reply["content"]


class RustmpIopubWelcome(jkt.IopubWelcomeTests):
    kernel_name = KERNEL
    support_iopub_welcome = True


if __name__ == "__main__":
    unittest.main()
