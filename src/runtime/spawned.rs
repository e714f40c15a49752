//! A process started by exec as a spawn pool worker takes its identity here (it was never
//! forked, so nothing of the parent's state is in it: this is the fork child's setup, minus
//! what exec already gave it).

use super::{Context, state};

/// Makes this process the pool worker `name`, child of `parent` (name, pid): a daemon, as pool
/// workers are, with the library's exit handler and panic hook installed (a forked worker
/// inherits both).
pub(crate) fn become_spawned_worker(name: String, identity: Vec<u32>, parent: (String, u32)) {
    let mut st = state();
    st.ctx = Context {
        name,
        identity,
        counter: 0,
        daemon: true,
        parent: Some(parent),
    };
    if !st.hooks_installed {
        crate::sys::process::at_exit(super::fork::run_atexit);
        crate::panic::install_reporter(|| state().ctx.name());
        st.hooks_installed = true;
    }
    drop(st);
    crate::panic::mark_child();
}
