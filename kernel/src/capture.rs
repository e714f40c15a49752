//! Output capture: every process of the runtime's tree writes into pipes of its own, which this
//! module reads and turns into Jupyter outputs.
//!
//! Processes register their pipes on a datagram socket (see `multiprocessing::host`; the runtime
//! itself registers through `relay`). A thread reads all pipes as data arrives, whether a cell
//! runs or not, and publishes:
//! - text as `stream` outputs, one writer's complete lines at a time, so no line is cut or mixed
//!   with another writer's bytes; a partial line goes out when its writer pauses (50 ms) or at the
//!   end of the cell; bytes that are not UTF-8 become U+FFFD, and a character split across reads
//!   is joined first;
//! - records in `\x1b]5379;kind;base64\x07` escapes (from `rustmp_display` and the relay) as
//!   `display_data`, `update_display_data`, `clear_output`, and panics.
//!
//! Output keeps the order in which it happened across processes where the processes themselves
//! ordered it: a child's pipes are read only once its parent's stream reached the `fork` record
//! the library writes after the fork (so what the parent printed first comes first), and at a
//! `sync` record (a child joined, a pool result received) every other pipe is read before the
//! rest of the writer's stream (so a joined child's output precedes what its parent prints next).
//!
//! Output goes to the cell that runs when it is read; while no cell runs, to the last cell.
//! [`Capture::barrier`] reads every byte already written before a cell's reply is sent.

use serde_json::Value;
use std::collections::{HashMap, HashSet, VecDeque};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// An output of the running code.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// Text on stdout or stderr.
    Stream {
        /// `stdout` or `stderr`.
        name: &'static str,
        /// The text.
        text: String,
    },
    /// Rich output: `data` is a MIME bundle; `update` replaces the display `display_id`.
    Display {
        /// The MIME bundle.
        data: Value,
        /// The display id, if it can be updated.
        display_id: Option<String>,
        /// True for `update_display_data`.
        update: bool,
    },
    /// `clear_output`.
    Clear {
        /// Wait for the next output before clearing.
        wait: bool,
    },
    /// A panic report (message, location, thread, backtrace).
    Panic(Value),
    /// The cell's code panicked (evcxr caught it): the next [`Output::Panic`] belongs to the cell.
    CellPanicked,
    /// The cell's code returned an error through `?`.
    CellErrored,
    /// The message of the error the cell returned through `?` (from
    /// [`crate::relay::QUESTION_MARK_HOOK`], which keeps it off stderr).
    CellErrorMessage(String),
    /// Ordering record: the writer forked this pid (its output may be read from now on).
    Fork(u32),
    /// Ordering record: what these processes wrote so far comes before the writer's next bytes.
    Sync(Vec<u32>),
}

/// Where the capture thread sends outputs, with the token of the cell they belong to.
pub type Sink = Box<dyn FnMut(Output, &Value) + Send>;

enum Command {
    Target(Value),
    Barrier(mpsc::Sender<()>),
}

/// The kernel's end of output capture.
pub struct Capture {
    commands: mpsc::Sender<Command>,
    wake: OwnedFd,
    child_socket: OwnedFd,
}

const OSC: &[u8] = b"\x1b]5379;";
const PARTIAL_AFTER: Duration = Duration::from_millis(50);
/// A line longer than this is published in pieces (memory bound).
const MAX_LINE: usize = 8 << 20;
/// A child's pipes wait at most this long for its parent's `fork` record.
const HOLD_MAX: Duration = Duration::from_millis(200);
/// Nested `sync` records (a pipe drained at a sync holds a sync of its own) go this deep at most.
const MAX_SYNC_DEPTH: usize = 16;

impl Capture {
    /// Starts the capture thread; `sink` receives every output.
    pub fn start(sink: Sink) -> std::io::Result<Capture> {
        let mut pair = [0; 2];
        // SAFETY: creating a socket pair; its two descriptors are ours, owned at once (so that
        // a failure below closes them).
        let (mine, theirs) = unsafe {
            if libc::socketpair(
                libc::AF_UNIX,
                libc::SOCK_DGRAM | libc::SOCK_CLOEXEC,
                0,
                pair.as_mut_ptr(),
            ) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            (OwnedFd::from_raw_fd(pair[0]), OwnedFd::from_raw_fd(pair[1]))
        };
        // SAFETY: creating an eventfd, ours once it is valid.
        let wake = unsafe {
            let wake = libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK);
            if wake < 0 {
                return Err(std::io::Error::last_os_error());
            }
            OwnedFd::from_raw_fd(wake)
        };
        let flags = unsafe { libc::fcntl(mine.as_raw_fd(), libc::F_GETFL) };
        unsafe { libc::fcntl(mine.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK) };
        let (tx, rx) = mpsc::channel();
        let wake_fd = wake.as_raw_fd();
        std::thread::Builder::new()
            .name("rustmp-capture".into())
            .spawn(move || Reader::new(mine, wake_fd, sink).run(rx))?;
        Ok(Capture {
            commands: tx,
            wake,
            child_socket: theirs,
        })
    }

    /// The socket end the runtime inherits (as fd [`crate::relay::OUTPUT_SOCKET_FD`]).
    pub fn child_socket(&self) -> RawFd {
        self.child_socket.as_raw_fd()
    }

    fn send(&self, c: Command) {
        let _ = self.commands.send(c);
        let one: u64 = 1;
        // SAFETY: writing 8 bytes to our eventfd.
        unsafe { libc::write(self.wake.as_raw_fd(), (&one as *const u64).cast(), 8) };
    }

    /// From now on, outputs belong to `target` (a cell's request header, say).
    pub fn set_target(&self, target: Value) {
        self.send(Command::Target(target));
    }

    /// Publishes everything written so far (new pipes, every pipe's data, partial lines).
    pub fn barrier(&self) {
        let (tx, rx) = mpsc::channel();
        self.send(Command::Barrier(tx));
        let _ = rx.recv_timeout(Duration::from_secs(10));
    }
}

struct Pipe {
    fd: OwnedFd,
    name: &'static str,
    /// The writing process.
    pid: u32,
    /// Not read until the parent's `fork` record is seen, or until this instant.
    held_until: Option<Instant>,
    /// Parsed outputs not yet published.
    parsed: VecDeque<Output>,
    /// The writer closed the pipe: drop it once `parsed` is empty.
    eof: bool,
    /// Bytes not yet published: an incomplete UTF-8 character, an unfinished escape, a partial line.
    pending: Vec<u8>,
    /// When `pending` last grew.
    since: Instant,
}

struct Reader {
    socket: OwnedFd,
    wake: RawFd,
    sink: Sink,
    pipes: HashMap<RawFd, Pipe>,
    target: Value,
    /// `fork` records seen before the child's registration arrived.
    forked: HashSet<u32>,
    /// The pipes being published (a `sync` inside one reads the others, not these).
    busy: Vec<RawFd>,
}

impl Reader {
    fn new(socket: OwnedFd, wake: RawFd, sink: Sink) -> Reader {
        Reader {
            socket,
            wake,
            sink,
            pipes: HashMap::new(),
            target: Value::Null,
            forked: HashSet::new(),
            busy: Vec::new(),
        }
    }

    fn run(mut self, commands: mpsc::Receiver<Command>) {
        loop {
            let mut fds = vec![
                libc::pollfd {
                    fd: self.wake,
                    events: libc::POLLIN,
                    revents: 0,
                },
                libc::pollfd {
                    fd: self.socket.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                },
            ];
            let now = Instant::now();
            for p in self.pipes.values_mut() {
                if p.held_until.is_some_and(|t| t <= now) {
                    p.held_until = None;
                }
            }
            fds.extend(
                self.pipes
                    .iter()
                    .filter(|(_, p)| p.held_until.is_none())
                    .map(|(&fd, _)| libc::pollfd {
                        fd,
                        events: libc::POLLIN,
                        revents: 0,
                    }),
            );
            let timeout = if self
                .pipes
                .values()
                .any(|p| !p.pending.is_empty() || p.held_until.is_some())
            {
                20
            } else {
                1000
            };
            // SAFETY: a valid array of pollfds.
            unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout) };
            if fds[0].revents != 0 {
                let mut v = 0u64;
                // SAFETY: draining our eventfd.
                unsafe { libc::read(self.wake, (&mut v as *mut u64).cast(), 8) };
            }
            self.accept_registrations();
            let ready: Vec<RawFd> = fds[2..]
                .iter()
                .filter(|p| p.revents != 0)
                .map(|p| p.fd)
                .collect();
            for fd in ready {
                self.read_pipe(fd, Finish::Wait);
            }
            self.flush_stale_partials(false);
            self.publish_deferred();
            loop {
                match commands.try_recv() {
                    Ok(Command::Target(t)) => self.target = t,
                    Ok(Command::Barrier(done)) => {
                        self.drain_everything();
                        let _ = done.send(());
                    }
                    Err(mpsc::TryRecvError::Empty) => break,
                    Err(mpsc::TryRecvError::Disconnected) => {
                        self.drain_everything();
                        return;
                    }
                }
            }
        }
    }

    fn drain_everything(&mut self) {
        self.accept_registrations();
        // The pipes that may be read first; their `fork` records release the others in order.
        let fds: Vec<RawFd> = self.pipes.keys().copied().collect();
        for fd in fds {
            self.read_pipe(fd, Finish::Wait);
        }
        for p in self.pipes.values_mut() {
            p.held_until = None;
        }
        let fds: Vec<RawFd> = self.pipes.keys().copied().collect();
        for fd in fds {
            self.read_pipe(fd, Finish::Wait);
        }
        self.flush_stale_partials(true);
        self.publish_deferred();
    }

    /// Publishes what is parsed but not yet published (until none is left).
    fn publish_deferred(&mut self) {
        loop {
            let waiting: Vec<RawFd> = self
                .pipes
                .iter()
                .filter(|(_, p)| !p.parsed.is_empty() || p.eof)
                .map(|(&fd, _)| fd)
                .collect();
            if waiting.is_empty() {
                return;
            }
            for fd in waiting {
                self.publish(fd);
            }
        }
    }

    /// Publishes the pipe's parsed outputs in order.
    fn publish(&mut self, fd: RawFd) {
        self.busy.push(fd);
        while let Some(pipe) = self.pipes.get_mut(&fd) {
            let Some(output) = pipe.parsed.pop_front() else {
                if pipe.eof {
                    self.pipes.remove(&fd);
                }
                break;
            };
            self.emit(output);
        }
        self.busy.pop();
    }

    /// Handles an output: ordering records here, the rest to the sink.
    fn emit(&mut self, output: Output) {
        match output {
            Output::Fork(pid) => {
                let mut found = false;
                for p in self.pipes.values_mut().filter(|p| p.pid == pid) {
                    p.held_until = None;
                    found = true;
                }
                if !found {
                    self.forked.insert(pid);
                }
            }
            Output::Sync(pids) => self.sync(&pids),
            other => (self.sink)(other, &self.target),
        }
    }

    /// Publishes what processes `pids` wrote so far (partial lines included, and what they
    /// themselves waited for) before the writer's next bytes.
    fn sync(&mut self, pids: &[u32]) {
        if self.busy.len() > MAX_SYNC_DEPTH {
            return;
        }
        self.accept_registrations();
        let fds: Vec<RawFd> = self
            .pipes
            .iter()
            .filter(|(fd, p)| pids.contains(&p.pid) && !self.busy.contains(fd))
            .map(|(&fd, _)| fd)
            .collect();
        for &fd in &fds {
            // Its parent's `fork` record came before this `sync` in the parent's stream.
            if let Some(p) = self.pipes.get_mut(&fd) {
                p.held_until = None;
            }
        }
        for fd in fds {
            self.read_pipe(fd, Finish::Text);
        }
    }

    /// Takes every pending registration: `[stdout, stderr]` read ends.
    fn accept_registrations(&mut self) {
        loop {
            let mut payload = [0u8; 512];
            let mut iov = libc::iovec {
                iov_base: payload.as_mut_ptr().cast(),
                iov_len: payload.len(),
            };
            let mut control = [0u64; 16];
            // SAFETY: recvmsg into our buffers; fds received are ours to own.
            let fds = unsafe {
                let mut msg: libc::msghdr = std::mem::zeroed();
                msg.msg_iov = &mut iov;
                msg.msg_iovlen = 1;
                msg.msg_control = control.as_mut_ptr().cast();
                msg.msg_controllen = std::mem::size_of_val(&control) as _;
                let n = libc::recvmsg(
                    self.socket.as_raw_fd(),
                    &mut msg,
                    libc::MSG_DONTWAIT | libc::MSG_CMSG_CLOEXEC,
                );
                if n < 0 {
                    return;
                }
                let mut fds = Vec::new();
                let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
                while !cmsg.is_null() {
                    if (*cmsg).cmsg_level == libc::SOL_SOCKET
                        && (*cmsg).cmsg_type == libc::SCM_RIGHTS
                    {
                        let count = ((*cmsg).cmsg_len as usize - libc::CMSG_LEN(0) as usize) / 4;
                        for i in 0..count {
                            fds.push(*libc::CMSG_DATA(cmsg).cast::<RawFd>().add(i));
                        }
                    }
                    cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
                }
                fds
            };
            let pid = payload
                .get(..4)
                .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .unwrap_or(0);
            let runtime = payload
                .get(4..)
                .is_some_and(|n| n.starts_with(crate::relay::RUNTIME_NAME.as_bytes()));
            // A child's output waits for its parent's `fork` record, unless it was seen already.
            let held_until =
                (!runtime && !self.forked.remove(&pid)).then(|| Instant::now() + HOLD_MAX);
            for (i, fd) in fds.into_iter().enumerate() {
                // SAFETY: a received fd, now ours.
                let owned = unsafe { OwnedFd::from_raw_fd(fd) };
                if i > 1 {
                    continue;
                }
                // SAFETY: making our own fd non-blocking.
                unsafe {
                    let flags = libc::fcntl(fd, libc::F_GETFL);
                    libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK);
                }
                self.pipes.insert(
                    fd,
                    Pipe {
                        fd: owned,
                        name: if i == 0 { "stdout" } else { "stderr" },
                        pid,
                        held_until,
                        parsed: VecDeque::new(),
                        eof: false,
                        pending: Vec::new(),
                        since: Instant::now(),
                    },
                );
            }
        }
    }

    /// Reads what the pipe holds now; publishes complete lines and records (and a partial line
    /// if `finish` allows).
    fn read_pipe(&mut self, fd: RawFd, finish: Finish) {
        let mut buf = vec![0u8; 64 * 1024];
        let mut eof = false;
        let Some(pipe) = self.pipes.get_mut(&fd) else {
            return;
        };
        if pipe.held_until.is_some() {
            return;
        }
        loop {
            // SAFETY: a non-blocking read into our buffer.
            let n = unsafe { libc::read(pipe.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if n > 0 {
                pipe.pending.extend_from_slice(&buf[..n as usize]);
                pipe.since = Instant::now();
                if pipe.pending.len() > 4 * MAX_LINE {
                    break;
                }
                continue;
            }
            if n == 0 {
                eof = true;
            } else if std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            break;
        }
        let name = pipe.name;
        let finish = if eof { Finish::All } else { finish };
        let (outputs, rest) = parse(std::mem::take(&mut pipe.pending), name, finish);
        pipe.pending = rest;
        pipe.parsed.extend(outputs);
        pipe.eof |= eof;
        self.publish(fd);
    }

    /// Publishes partial lines whose writer paused (or all of them, at a barrier).
    fn flush_stale_partials(&mut self, all: bool) {
        let now = Instant::now();
        let mut touched = Vec::new();
        for (&fd, pipe) in self
            .pipes
            .iter_mut()
            .filter(|(_, p)| p.held_until.is_none())
        {
            if pipe.pending.is_empty() || !(all || now.duration_since(pipe.since) >= PARTIAL_AFTER)
            {
                continue;
            }
            let finish = if all { Finish::All } else { Finish::Text };
            let (outputs, rest) = parse(std::mem::take(&mut pipe.pending), pipe.name, finish);
            pipe.pending = rest;
            pipe.parsed.extend(outputs);
            touched.push(fd);
        }
        for fd in touched {
            self.publish(fd);
        }
    }
}

/// How much of the pending bytes [`parse`] may publish.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Finish {
    /// Only whole lines and whole records: the rest waits for more bytes.
    Wait,
    /// Also a partial line (its writer paused), but an unfinished record or character still waits.
    Text,
    /// Everything (the writer is done: end of file, end of the cell).
    All,
}

/// Splits `data` into outputs; what `finish` does not allow to publish yet is returned as the rest.
pub fn parse(mut data: Vec<u8>, name: &'static str, finish: Finish) -> (Vec<Output>, Vec<u8>) {
    let wait_records = finish != Finish::All;
    let mut outputs = Vec::new();
    let mut text: Vec<u8> = Vec::new();
    let mut i = 0;
    while i < data.len() {
        if data[i] == 0x1b {
            let rest = &data[i..];
            if rest.len() < OSC.len() && OSC.starts_with(rest) && wait_records {
                break; // maybe the start of a record: wait
            }
            if rest.starts_with(OSC) {
                match rest.iter().position(|&b| b == 0x07) {
                    Some(end) => {
                        if !text.is_empty() {
                            outputs.push(stream(name, &std::mem::take(&mut text)));
                        }
                        if let Some(o) = record(&rest[OSC.len()..end]) {
                            outputs.push(o);
                        }
                        i += end + 1;
                        // A record's own newline is not output.
                        if data.get(i) == Some(&b'\n') {
                            i += 1;
                        }
                        continue;
                    }
                    None if wait_records && rest.len() < MAX_LINE => break,
                    None => {}
                }
            }
        }
        text.push(data[i]);
        i += 1;
    }
    let mut rest = data.split_off(i);
    // Publish whole lines; keep a partial line unless finishing (or it is too long).
    if finish == Finish::Wait {
        let cut = match text.iter().rposition(|&b| b == b'\n') {
            Some(p) => p + 1,
            None if text.len() > MAX_LINE => text.len(),
            None => 0,
        };
        let mut tail = text.split_off(cut);
        tail.extend_from_slice(&rest);
        rest = tail;
    }
    if !text.is_empty() {
        // Do not cut a UTF-8 character: carry its first bytes over.
        let keep = if finish == Finish::All {
            0
        } else {
            incomplete_utf8_tail(&text)
        };
        let carry = text.split_off(text.len() - keep);
        if !text.is_empty() {
            outputs.push(stream(name, &text));
        }
        let mut r = carry;
        r.extend_from_slice(&rest);
        rest = r;
    }
    (outputs, rest)
}

fn stream(name: &'static str, bytes: &[u8]) -> Output {
    Output::Stream {
        name,
        text: String::from_utf8_lossy(bytes).into_owned(),
    }
}

/// How many bytes at the end of `b` are the start of a UTF-8 character still missing bytes.
fn incomplete_utf8_tail(b: &[u8]) -> usize {
    for back in 1..=3.min(b.len()) {
        let c = b[b.len() - back];
        if c & 0xC0 == 0x80 {
            continue; // a continuation byte: look further back
        }
        let need = if c & 0xE0 == 0xC0 {
            2
        } else if c & 0xF0 == 0xE0 {
            3
        } else if c & 0xF8 == 0xF0 {
            4
        } else {
            1
        };
        return if need > back { back } else { 0 };
    }
    0
}

/// Decodes one `kind;base64(json)` record.
fn record(body: &[u8]) -> Option<Output> {
    let text = std::str::from_utf8(body).ok()?;
    let (kind, payload) = text.split_once(';')?;
    let json: Value = serde_json::from_slice(&base64_decode(payload)?).ok()?;
    let display_id = json
        .get("display_id")
        .and_then(Value::as_str)
        .map(String::from);
    Some(match kind {
        "display" => Output::Display {
            data: json.get("data")?.clone(),
            display_id,
            update: false,
        },
        "update" => Output::Display {
            data: json.get("data")?.clone(),
            display_id,
            update: true,
        },
        "clear" => Output::Clear {
            wait: json.get("wait").and_then(Value::as_bool).unwrap_or(false),
        },
        "panic" => Output::Panic(json),
        "cellpanic" => Output::CellPanicked,
        "cellerror" => Output::CellErrored,
        "cellerrormsg" => Output::CellErrorMessage(json.get("message")?.as_str()?.to_string()),
        k if k.starts_with("sync:") => Output::Sync(
            k["sync:".len()..]
                .split(',')
                .filter_map(|p| p.parse().ok())
                .collect(),
        ),
        k if k.starts_with("fork:") => Output::Fork(k["fork:".len()..].parse().ok()?),
        _ => return None,
    })
}

fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let bytes: Vec<u8> = s.bytes().filter(|&c| c != b'=').collect();
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            n |= val(c)? << (18 - 6 * i);
        }
        out.push((n >> 16) as u8);
        if chunk.len() > 2 {
            out.push((n >> 8) as u8);
        }
        if chunk.len() > 3 {
            out.push(n as u8);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_failed_eventfd_leaves_no_socket_open() {
        use crate::fd_test::{in_child, is_open, limit_to, lowest_free};
        // Room for the socket pair only: the eventfd after it fails.
        let code = in_child(|| {
            let room = lowest_free(2);
            limit_to(room[1] + 1);
            match Capture::start(Box::new(|_, _| {})) {
                Ok(_) => 2,
                Err(_) if room.iter().any(|&fd| is_open(fd)) => 1,
                Err(_) => 0,
            }
        });
        assert_eq!(
            code, 0,
            "1: the socket pair leaked; 2: the eventfd did not fail"
        );
    }

    use super::*;
    use serde_json::json;

    fn text(s: &str) -> Output {
        Output::Stream {
            name: "stdout",
            text: s.into(),
        }
    }

    #[test]
    fn a_paused_writer_gets_its_partial_line_out_but_an_unfinished_record_waits() {
        let (out, rest) = parse(
            b"partial\x1b]5379;panic;eyJh".to_vec(),
            "stderr",
            Finish::Text,
        );
        assert_eq!(
            out,
            vec![Output::Stream {
                name: "stderr",
                text: "partial".into()
            }]
        );
        assert_eq!(rest, b"\x1b]5379;panic;eyJh");
    }

    #[test]
    fn complete_lines_go_out_and_a_partial_line_waits() {
        let (out, rest) = parse(b"one\ntwo\nthr".to_vec(), "stdout", Finish::Wait);
        assert_eq!(out, vec![text("one\ntwo\n")]);
        assert_eq!(rest, b"thr");
        let (out, rest) = parse(rest, "stdout", Finish::Text);
        assert_eq!(out, vec![text("thr")]);
        assert!(rest.is_empty());
    }

    #[test]
    fn a_utf8_character_split_across_reads_is_joined() {
        let bytes = "é-end\n".as_bytes();
        let (out, rest) = parse(
            [b"aa".as_slice(), &bytes[..1]].concat(),
            "stdout",
            Finish::Wait,
        );
        assert!(out.is_empty());
        let (out, rest) = parse(
            [rest.as_slice(), &bytes[1..]].concat(),
            "stdout",
            Finish::Wait,
        );
        assert_eq!(out, vec![text("aaé-end\n")]);
        assert!(rest.is_empty());
        // Invalid bytes become U+FFFD without stopping anything.
        let (out, _) = parse(b"bad \xff\xfe bytes\n".to_vec(), "stdout", Finish::Wait);
        assert_eq!(out, vec![text("bad \u{fffd}\u{fffd} bytes\n")]);
    }

    #[test]
    fn a_question_mark_error_message_record_is_the_message_not_text() {
        // What rustmp_display's `eprintln_at` writes for the message "é\nboom" after a line.
        let payload = "eyJtZXNzYWdlIjoiw6lcbmJvb20ifQ=="; // {"message":"é\nboom"}
        let input = format!("own line\n\x1b]5379;cellerrormsg;{payload}\x07\n");
        let (out, rest) = parse(input.into_bytes(), "stderr", Finish::Wait);
        assert_eq!(
            out,
            vec![
                Output::Stream {
                    name: "stderr",
                    text: "own line\n".into()
                },
                Output::CellErrorMessage("é\nboom".into())
            ]
        );
        assert!(rest.is_empty());
    }

    #[test]
    fn records_become_displays_and_keep_their_place() {
        let payload = "eyJkYXRhIjp7InRleHQvcGxhaW4iOiJ4In19"; // {"data":{"text/plain":"x"}}
        let input = format!("before\n\x1b]5379;display;{payload}\x07\nafter\n");
        let (out, rest) = parse(input.into_bytes(), "stdout", Finish::Wait);
        assert_eq!(
            out,
            vec![
                text("before\n"),
                Output::Display {
                    data: json!({"text/plain": "x"}),
                    display_id: None,
                    update: false
                },
                text("after\n")
            ]
        );
        assert!(rest.is_empty());
        // A record split across reads waits.
        let (out, rest) = parse(
            format!("\x1b]5379;display;{}", &payload[..5]).into_bytes(),
            "stdout",
            Finish::Wait,
        );
        assert!(out.is_empty());
        let (out, _) = parse(
            [rest, format!("{}\x07\n", &payload[5..]).into_bytes()].concat(),
            "stdout",
            Finish::Wait,
        );
        assert_eq!(out.len(), 1);
    }
}
