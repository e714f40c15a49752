//! The kernel runtime's hooks (not for users): stdio flushing, the panic record, the
//! `Debug` display of a cell's value, the `?` error's message, and the load-time install.

use super::*;
use std::sync::atomic::AtomicUsize;

/// Flushes this std's stdout and stderr (the cells' std, a shared library).
pub extern "C" fn flush_stdio() {
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
}

fn panic_record(info: &std::panic::PanicHookInfo<'_>) -> String {
    let message = if let Some(s) = info.payload().downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = info.payload().downcast_ref::<String>() {
        s.clone()
    } else {
        "Box<dyn Any>".to_string()
    };
    let location = info.location().map(|l| l.to_string()).unwrap_or_default();
    let thread = std::thread::current()
        .name()
        .unwrap_or("<unnamed>")
        .to_string();
    // An interrupt is not a bug: skip the backtrace (resolving its symbols can take a second).
    let backtrace = if message.contains("Interrupted") {
        String::new()
    } else {
        std::backtrace::Backtrace::capture().to_string()
    };
    format!(
        "{{\"message\":{},\"location\":{},\"thread\":{},\"backtrace\":{}}}",
        json_string(&message),
        json_string(&location),
        json_string(&thread),
        json_string(&backtrace)
    )
}

/// Shows a cell's final value with `Debug`, as evcxr's own fallback does, but found by method
/// resolution in the first compile: without it evcxr compiles every cell ending in a value
/// twice (once trying `.evcxr_display()`, once with `Debug`). The kernel imports it as `_` at
/// start. An inherent `evcxr_display` (a type's own rich display) takes precedence; when
/// another trait's `evcxr_display` applies too (the call is ambiguous), the kernel compiles
/// that cell without this trait, so the other trait's display is used.
///
/// ```
/// use rustmp_display::__runtime::ShowDebug as _;
/// (1 + 1).evcxr_display();
/// ```
pub trait ShowDebug {
    /// Sends `{:?}` of the value as the cell's `text/plain` result.
    fn evcxr_display(&self);
}

impl<T: std::fmt::Debug + ?Sized> ShowDebug for T {
    fn evcxr_display(&self) {
        let text = format!("{self:?}");
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(b"EVCXR_BEGIN_CONTENT text/plain\n");
        let _ = out.write_all(text.as_bytes());
        let _ = out.write_all(b"\nEVCXR_END_CONTENT\n");
        let _ = out.flush();
    }
}

/// `eprintln!(fmt, value)` at `site` (the path of a function in the caller): evcxr's `?`
/// handler (`From<T> for EvcxrUserCodeError`) sends its message to the kernel as one record,
/// which the kernel shows as the cell's error output; anywhere else this is std's `eprintln!`.
///
/// ```
/// rustmp_display::__runtime::eprintln_at("demo::main::site", format_args!("{}", 1));
/// ```
pub fn eprintln_at(site: &str, args: std::fmt::Arguments<'_>) {
    if !site.contains("EvcxrUserCodeError as ") {
        std::eprintln!("{args}");
        return;
    }
    let record = format!("{{\"message\":{}}}", json_string(&args.to_string()));
    write_record(&mut std::io::stderr().lock(), "cellerrormsg", &record);
}

/// Loads this crate in the runtime (the kernel runs it once at start; loading installs the hooks).
pub fn ensure_loaded() {
    std::hint::black_box(ON_LOAD);
}

/// Installs the hooks if the kernel's runtime asked for them.
pub extern "C" fn on_load() {
    let Ok(hooks) = std::env::var("RUSTMP_RUNTIME_HOOKS") else {
        return;
    };
    // `<pid>:<hex address>`: only the runtime process itself has the slot at that address
    // (a spawn pool worker inherits the variable and loads this crate with the cells).
    let Some((pid, addr)) = hooks.split_once(':') else {
        return;
    };
    if pid.parse::<u32>().ok() != Some(std::process::id()) {
        return;
    }
    let Ok(addr) = usize::from_str_radix(addr.trim_start_matches("0x"), 16) else {
        return;
    };
    if addr == 0 {
        return;
    }
    // SAFETY: the runtime process put the address of its `AtomicUsize` flush slot in the
    // environment with its pid, which is this process's (checked above); it lives as long
    // as the process.
    let slot = unsafe { &*(addr as *const AtomicUsize) };
    slot.store(flush_stdio as *const () as usize, Ordering::SeqCst);
    std::panic::set_hook(Box::new(|info| {
        write_record(&mut std::io::stderr().lock(), "panic", &panic_record(info));
    }));
}

#[used]
#[unsafe(link_section = ".init_array")]
static ON_LOAD: extern "C" fn() = on_load;
