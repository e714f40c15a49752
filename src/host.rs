//! Integration with a host that runs code using this library (a notebook kernel, a test runner),
//! configured through environment variables so the host needs no Rust API of ours.
//!
//! - [`OUTPUT_SOCKET_ENV`]: `MULTIPROCESSING_OUTPUT_SOCKET=<fd>` names an inherited `AF_UNIX`
//!   datagram socket. Every child this library forks then gets its **own** stdout and stderr
//!   pipes: right after the fork it creates two pipes, sends their read ends to the host in one
//!   datagram (`SCM_RIGHTS` with `[stdout, stderr]`; the payload is the child's pid as 4 bytes
//!   little-endian followed by its name in UTF-8), and makes the write ends its fd 1 and 2. The host
//!   can so read each process's output apart, and no writer's line is ever cut by another's. A
//!   child registers before it can write anything, so a host that reads the socket before the
//!   pipes sees every byte. If the datagram cannot be sent, the child keeps its inherited fds.
//!
//!   So that the host can put the processes' output in the order it happened, a process also
//!   writes two kinds of ordering records on its own stdout (escapes the host removes):
//!   `ESC ] 5379;fork:<pid>;e30= BEL \n` right after it forked child `<pid>` (what the parent
//!   wrote before comes before anything the child writes), and
//!   `ESC ] 5379;sync:<pid>,<pid>…;e30= BEL \n` when it learns that those processes are done with
//!   something (a child joined, a pool result received): what they wrote before comes before
//!   what this process writes next.
//! - [`SIGINT_ENV`]: `MULTIPROCESSING_SIGINT=interrupt` turns [`crate::interrupt::enable`] on as
//!   soon as the library is loaded (a shared library's constructor), for hosts that cannot call it.

use std::os::fd::RawFd;
use std::sync::OnceLock;

/// Environment variable naming the output-registration socket (see the module docs).
///
/// ```
/// assert_eq!(multiprocessing::host::OUTPUT_SOCKET_ENV, "MULTIPROCESSING_OUTPUT_SOCKET");
/// ```
pub const OUTPUT_SOCKET_ENV: &str = "MULTIPROCESSING_OUTPUT_SOCKET";

/// Environment variable that enables interrupts at load time when set to `interrupt`.
///
/// ```
/// assert_eq!(multiprocessing::host::SIGINT_ENV, "MULTIPROCESSING_SIGINT");
/// ```
pub const SIGINT_ENV: &str = "MULTIPROCESSING_SIGINT";

/// The registration socket, read once per process tree from the environment.
pub(crate) fn output_socket() -> Option<RawFd> {
    static SOCKET: OnceLock<Option<RawFd>> = OnceLock::new();
    *SOCKET.get_or_init(|| {
        let fd: RawFd = std::env::var(OUTPUT_SOCKET_ENV).ok()?.trim().parse().ok()?;
        // SAFETY: F_GETFD only inspects the fd.
        (unsafe { libc::fcntl(fd, libc::F_GETFD) } >= 0).then_some(fd)
    })
}

/// The ordering record written after forking `pid` (see the module docs).
pub(crate) fn fork_record(pid: u32) -> Vec<u8> {
    format!("\x1b]5379;fork:{pid};e30=\x07\n").into_bytes()
}

/// Under a host: the `sync` record for this process's pool workers (a pool result arrived).
/// Outside a host it costs one check.
pub(crate) fn sync_pool_workers() {
    if output_socket().is_some() {
        sync_fence(&crate::runtime::pool_worker_pids());
    }
}

/// Under a host: writes the `sync` record for `pids` on stdout, after what this process's std
/// already buffered (see the module docs). Called when a child was joined or a pool result
/// arrived.
pub(crate) fn sync_fence(pids: &[u32]) {
    if output_socket().is_none() || pids.is_empty() {
        return;
    }
    use std::io::Write;
    let list: Vec<String> = pids.iter().map(u32::to_string).collect();
    let record = format!("\x1b]5379;sync:{};e30=\x07\n", list.join(","));
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(record.as_bytes());
    let _ = out.flush();
}

/// In a new child: give it its own output pipes and hand their read ends to the host.
pub(crate) fn register_output(socket: RawFd, name: &str) {
    let mut out = [0; 2];
    let mut err = [0; 2];
    // SAFETY: plain syscalls on fds we create; the control message is built in a correctly
    // sized and aligned buffer.
    unsafe {
        if libc::pipe2(out.as_mut_ptr(), libc::O_CLOEXEC) != 0 {
            return;
        }
        if libc::pipe2(err.as_mut_ptr(), libc::O_CLOEXEC) != 0 {
            libc::close(out[0]);
            libc::close(out[1]);
            return;
        }
        let mut payload = (libc::getpid() as u32).to_le_bytes().to_vec();
        payload.extend_from_slice(name.as_bytes());
        let mut iov = libc::iovec {
            iov_base: payload.as_mut_ptr().cast(),
            iov_len: payload.len(),
        };
        let fds = [out[0], err[0]];
        let space = libc::CMSG_SPACE(std::mem::size_of_val(&fds) as u32) as usize;
        let mut control = vec![0u64; space.div_ceil(8)];
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = space as _;
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        (*cmsg).cmsg_level = libc::SOL_SOCKET;
        (*cmsg).cmsg_type = libc::SCM_RIGHTS;
        (*cmsg).cmsg_len = libc::CMSG_LEN(std::mem::size_of_val(&fds) as u32) as _;
        std::ptr::copy_nonoverlapping(fds.as_ptr(), libc::CMSG_DATA(cmsg).cast::<RawFd>(), 2);
        let sent = libc::sendmsg(socket, &msg, libc::MSG_NOSIGNAL) >= 0;
        libc::close(out[0]);
        libc::close(err[0]);
        if sent {
            libc::dup2(out[1], 1);
            libc::dup2(err[1], 2);
        }
        libc::close(out[1]);
        libc::close(err[1]);
    }
}

/// Runs when the library is loaded: the [`SIGINT_ENV`] opt-in.
extern "C" fn on_load() {
    if std::env::var(SIGINT_ENV).is_ok_and(|v| v == "interrupt") {
        let _ = crate::interrupt::enable();
    }
}

#[used]
#[unsafe(link_section = ".init_array")]
static ON_LOAD: extern "C" fn() = on_load;
