//! `rustmp kernel`: the Jupyter kernel. ZeroMQ sockets (shell, control, stdin, iopub, heartbeat),
//! the message handlers, and the executor thread that runs cells one at a time.

use crate::capture::Output;
use crate::connection::ConnectionInfo;
use crate::engine::{self, Engine, Interrupter, Outcome};
use crate::is_complete::{self, Verdict};
use crate::wire::{self, Message, Signer};
use bytes::Bytes;
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;
use tokio::sync::mpsc as tmpsc;
use zeromq::{Socket, SocketRecv, SocketSend, ZmqMessage};

/// Why the kernel stopped.
#[derive(Debug, thiserror::Error)]
pub enum KernelError {
    /// The connection file is unusable.
    #[error(transparent)]
    Connection(#[from] crate::connection::ConnectionError),
    /// The signature scheme is unknown.
    #[error(transparent)]
    Wire(#[from] wire::WireError),
    /// A socket could not be bound.
    #[error("cannot bind {endpoint}: {error}")]
    Bind {
        /// The endpoint.
        endpoint: String,
        /// Why.
        error: String,
    },
    /// The engine's cache could not be prepared.
    #[error(transparent)]
    Engine(#[from] engine::EngineError),
    /// Tokio failed.
    #[error("runtime: {0}")]
    Runtime(#[from] std::io::Error),
}

/// What the IOPub task publishes.
struct Publish {
    msg_type: &'static str,
    parent: Value,
    content: Value,
}

/// Shared state of the kernel's threads.
struct Shared {
    session: String,
    signer: Mutex<Signer>,
    iopub: tmpsc::UnboundedSender<Publish>,
    /// Replies to send on the shell and control sockets (identities included).
    shell_out: tmpsc::UnboundedSender<Message>,
    control_out: tmpsc::UnboundedSender<Message>,
    stdin_out: tmpsc::UnboundedSender<Message>,
    stdin_in: Mutex<mpsc::Receiver<Message>>,
    /// The running cell: its number (0 when idle) and when it was interrupted.
    running: AtomicU64,
    interrupter: Mutex<Option<Interrupter>>,
    /// The last CPU sample for `usage_request`.
    usage: Mutex<crate::usage::Usage>,
    shutting_down: AtomicBool,
    /// A request waits for the engine: it does not prime rust-analyzer then (see
    /// `Engine::prime`).
    engine_wanted: AtomicBool,
}

impl Shared {
    fn publish(&self, msg_type: &'static str, parent: &Value, content: Value) {
        let _ = self.iopub.send(Publish {
            msg_type,
            parent: parent.clone(),
            content,
        });
    }

    fn reply(&self, request: &Message, msg_type: &str, content: Value) -> Message {
        Message {
            identities: request.identities.clone(),
            header: wire::new_header(&self.session, msg_type),
            parent_header: request.header_value(),
            metadata: json!({}),
            content,
            buffers: Vec::new(),
        }
    }
}

fn kernel_info(session_shared: &Shared, request: &Message) -> Message {
    let content = json!({
        "status": "ok",
        "protocol_version": wire::PROTOCOL_VERSION,
        "implementation": "rustmp",
        "implementation_version": env!("CARGO_PKG_VERSION"),
        "language_info": {
            "name": "rust",
            "version": rustc_version(),
            "mimetype": "text/rust",
            "file_extension": ".rs",
            "pygments_lexer": "rust",
            "codemirror_mode": "rust",
            "nbconvert_exporter": "rust"
        },
        "banner": format!("rustmp {}: Rust with Python's multiprocessing (use multiprocessing::...)", env!("CARGO_PKG_VERSION")),
        "help_links": [
            {"text": "Rust standard library", "url": "https://doc.rust-lang.org/std/"}
        ],
        "supported_features": []
    });
    session_shared.reply(request, "kernel_info_reply", content)
}

/// The toolchain's version (`rustc --version`), for `language_info`.
pub fn rustc_version() -> String {
    static VERSION: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    VERSION
        .get_or_init(|| {
            std::process::Command::new("rustc")
                .arg("--version")
                .output()
                .ok()
                .and_then(|o| String::from_utf8(o.stdout).ok())
                .and_then(|s| s.split_whitespace().nth(1).map(String::from))
                .unwrap_or_default()
        })
        .clone()
}

/// Runs the kernel until shutdown.
pub fn run(connection_file: &std::path::Path) -> Result<(), KernelError> {
    let info = ConnectionInfo::load(connection_file)?;
    let signer = Signer::new(&info.key, &info.signature_scheme)?;
    let paths = engine::prepare()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(serve(info, signer, paths))
}

async fn bind<S: Socket>(socket: &mut S, endpoint: String) -> Result<(), KernelError> {
    socket
        .bind(&endpoint)
        .await
        .map(|_| ())
        .map_err(|e| KernelError::Bind {
            endpoint,
            error: e.to_string(),
        })
}

fn to_frames(msg: ZmqMessage) -> Vec<Bytes> {
    msg.into_vec()
}

fn to_zmq(frames: Vec<Bytes>) -> Option<ZmqMessage> {
    ZmqMessage::try_from(frames).ok()
}

async fn serve(
    info: ConnectionInfo,
    signer: Signer,
    paths: engine::Paths,
) -> Result<(), KernelError> {
    let mut shell = zeromq::RouterSocket::new();
    let mut control = zeromq::RouterSocket::new();
    let mut stdin = zeromq::RouterSocket::new();
    let mut iopub = zeromq::XPubSocket::new();
    let mut hb = zeromq::RepSocket::new();
    bind(&mut shell, info.endpoint(info.shell_port)).await?;
    bind(&mut control, info.endpoint(info.control_port)).await?;
    bind(&mut stdin, info.endpoint(info.stdin_port)).await?;
    bind(&mut iopub, info.endpoint(info.iopub_port)).await?;
    bind(&mut hb, info.endpoint(info.hb_port)).await?;

    let (iopub_tx, mut iopub_rx) = tmpsc::unbounded_channel::<Publish>();
    let (shell_tx, shell_rx) = tmpsc::unbounded_channel::<Message>();
    let (control_tx, control_rx) = tmpsc::unbounded_channel::<Message>();
    let (stdin_tx, stdin_rx) = tmpsc::unbounded_channel::<Message>();
    let (stdin_in_tx, stdin_in_rx) = mpsc::channel::<Message>();
    let shared = Arc::new(Shared {
        session: uuid::Uuid::new_v4().to_string(),
        signer: Mutex::new(signer),
        iopub: iopub_tx,
        shell_out: shell_tx,
        control_out: control_tx,
        stdin_out: stdin_tx,
        stdin_in: Mutex::new(stdin_in_rx),
        running: AtomicU64::new(0),
        interrupter: Mutex::new(None),
        usage: Mutex::new(crate::usage::Usage::default()),
        shutting_down: AtomicBool::new(false),
        engine_wanted: AtomicBool::new(false),
    });

    // Heartbeat: echo.
    tokio::spawn(async move {
        while let Ok(m) = hb.recv().await {
            if hb.send(m).await.is_err() {
                break;
            }
        }
    });

    // IOPub: publish in order; welcome every subscriber (5.5).
    {
        let shared = shared.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    sub = iopub.recv() => {
                        if let Ok(m) = sub
                            && let Some(frame) = m.get(0)
                            && frame.first() == Some(&1)
                        {
                            let topic = String::from_utf8_lossy(&frame[1..]).into_owned();
                            let msg = Message {
                                identities: vec![Bytes::from_static(b"iopub_welcome")],
                                header: wire::new_header(&shared.session, "iopub_welcome"),
                                parent_header: json!({}),
                                metadata: json!({}),
                                content: json!({"subscription": topic}),
                                buffers: Vec::new(),
                            };
                            let frames = shared.signer.lock().map(|s| s.encode(&msg)).unwrap_or_default();
                            if let Some(z) = to_zmq(frames) {
                                let _ = iopub.send(z).await;
                            }
                        }
                    }
                    out = iopub_rx.recv() => {
                        let Some(p) = out else { break };
                        let msg = Message {
                            identities: vec![Bytes::from(p.msg_type.as_bytes().to_vec())],
                            header: wire::new_header(&shared.session, p.msg_type),
                            parent_header: p.parent,
                            metadata: json!({}),
                            content: p.content,
                            buffers: Vec::new(),
                        };
                        let frames = shared.signer.lock().map(|s| s.encode(&msg)).unwrap_or_default();
                        if let Some(z) = to_zmq(frames) {
                            let _ = iopub.send(z).await;
                        }
                    }
                }
            }
        });
    }
    shared.publish("status", &json!({}), json!({"execution_state": "starting"}));
    watch_parent(shared.clone());

    // The executor thread: every shell request, in order.
    let (exec_tx, exec_rx) = mpsc::channel::<Message>();
    {
        let shared = shared.clone();
        std::thread::Builder::new()
            .name("rustmp-executor".into())
            .spawn(move || Executor::new(shared, paths).run(exec_rx))?;
    }

    // Socket tasks. Router sockets are split so receiving and sending do not block each other.
    let (shell_send, shell_recv) = shell.split();
    let (control_send, mut control_recv) = control.split();
    let (stdin_send, stdin_recv) = stdin.split();
    tokio::spawn(send_loop(shared.clone(), shell_rx, shell_send));
    tokio::spawn(send_loop(shared.clone(), stdin_rx, stdin_send));
    tokio::spawn(recv_loop(shared.clone(), stdin_recv, stdin_in_tx, "stdin"));
    tokio::spawn(recv_loop(shared.clone(), shell_recv, exec_tx, "shell"));
    // Control: handled here, never queued behind a cell.
    let control_sender = tokio::spawn(send_loop(shared.clone(), control_rx, control_send));
    loop {
        let z = match control_recv.recv().await {
            Ok(z) => z,
            Err(e) => {
                eprintln!("rustmp: control socket error: {e}");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let decoded = shared.signer.lock().map(|mut s| s.decode(to_frames(z)));
        let m = match decoded {
            Ok(Ok(m)) => m,
            Ok(Err(e)) => {
                eprintln!("rustmp: dropped a control message: {e}");
                continue;
            }
            Err(_) => continue,
        };
        let parent = m.header_value();
        shared.publish("status", &parent, json!({"execution_state": "busy"}));
        match m.header.msg_type.as_str() {
            "kernel_info_request" => {
                let _ = shared.control_out.send(kernel_info(&shared, &m));
            }
            "usage_request" => {
                let content = shared
                    .usage
                    .lock()
                    .map(|mut u| u.reply())
                    .unwrap_or_else(|_| json!({}));
                let _ = shared
                    .control_out
                    .send(shared.reply(&m, "usage_reply", content));
            }
            "interrupt_request" => {
                interrupt(&shared);
                let _ = shared.control_out.send(shared.reply(
                    &m,
                    "interrupt_reply",
                    json!({"status": "ok"}),
                ));
            }
            "shutdown_request" => {
                let restart = bool_field(&m.content, "restart", false);
                shared.shutting_down.store(true, Ordering::SeqCst);
                if let Some(i) = shared.interrupter.lock().ok().and_then(|g| g.clone()) {
                    i.kill();
                }
                let reply = shared.reply(
                    &m,
                    "shutdown_reply",
                    json!({"status": "ok", "restart": restart}),
                );
                shared.publish(
                    "shutdown_reply",
                    &parent,
                    json!({"status": "ok", "restart": restart}),
                );
                let _ = shared.control_out.send(reply);
                shared.publish("status", &parent, json!({"execution_state": "idle"}));
                tokio::time::sleep(Duration::from_millis(100)).await;
                control_sender.abort();
                std::process::exit(0);
            }
            other => {
                eprintln!("rustmp: unsupported control message {other}");
            }
        }
        shared.publish("status", &parent, json!({"execution_state": "idle"}));
    }
}

/// Signs and sends the messages queued for one socket.
async fn send_loop<S: SocketSend>(
    shared: Arc<Shared>,
    mut rx: tmpsc::UnboundedReceiver<Message>,
    mut socket: S,
) {
    while let Some(m) = rx.recv().await {
        let frames = shared
            .signer
            .lock()
            .map(|s| s.encode(&m))
            .unwrap_or_default();
        if let Some(z) = to_zmq(frames) {
            let _ = socket.send(z).await;
        }
    }
}

/// Receives, authenticates and hands on the messages of one socket; drops (and logs) bad ones.
async fn recv_loop<S: SocketRecv>(
    shared: Arc<Shared>,
    mut socket: S,
    to: mpsc::Sender<Message>,
    name: &'static str,
) {
    loop {
        match socket.recv().await {
            Ok(z) => {
                let decoded = shared.signer.lock().map(|mut s| s.decode(to_frames(z)));
                match decoded {
                    Ok(Ok(m)) => {
                        if to.send(m).is_err() {
                            return;
                        }
                    }
                    Ok(Err(e)) => eprintln!("rustmp: dropped a {name} message: {e}"),
                    Err(_) => {}
                }
            }
            Err(e) => {
                eprintln!("rustmp: {name} socket error: {e}");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

/// Exits (ending the runtime's process group) when the process that started the kernel is gone:
/// `JPY_PARENT_PID` if Jupyter set it, else the parent process.
fn watch_parent(shared: Arc<Shared>) {
    // SAFETY: getppid has no preconditions.
    let parent = unsafe { libc::getppid() };
    let jpy: Option<i32> = std::env::var("JPY_PARENT_PID")
        .ok()
        .and_then(|p| p.parse().ok());
    std::thread::spawn(move || {
        loop {
            std::thread::sleep(Duration::from_millis(500));
            // SAFETY: plain syscalls.
            let gone = unsafe {
                libc::getppid() != parent || jpy.is_some_and(|p| p > 1 && libc::kill(p, 0) != 0)
            };
            if gone {
                if let Some(i) = shared.interrupter.lock().ok().and_then(|g| g.clone()) {
                    i.kill();
                }
                std::process::exit(1);
            }
        }
    });
}

/// Interrupts the running cell: SIGINT now; if it still runs after the grace period, restart.
fn interrupt(shared: &Arc<Shared>) {
    let cell = shared.running.load(Ordering::SeqCst);
    if cell == 0 {
        return; // idle: nothing to interrupt, nothing to harm
    }
    let Some(interrupter) = shared.interrupter.lock().ok().and_then(|g| g.clone()) else {
        return;
    };
    let shared = shared.clone();
    interrupter.interrupt_cell(move || shared.running.load(Ordering::SeqCst) == cell);
}

struct HistoryEntry {
    line: u64,
    input: String,
    /// The text/plain of the cell's result, if it had one.
    output: Option<String>,
}

/// The path of a `?path` help request (letters, digits, `_` and `::`), if the cell is one.
fn help_subject(code: &str) -> Option<&str> {
    let subject = code.trim().strip_prefix('?')?.trim();
    let path = !subject.is_empty()
        && subject
            .chars()
            .all(|c| c.is_alphanumeric() || c == '_' || c == ':');
    path.then_some(subject)
}

struct Executor {
    shared: Arc<Shared>,
    paths: Option<engine::Paths>,
    engine_rx: Option<mpsc::Receiver<Result<(Engine, engine::Paths), String>>>,
    engine: Option<Result<(Engine, engine::Paths), String>>,
    execution_count: u64,
    /// Numbers every cell run (silent ones too), for the interrupt's grace timer.
    cell_seq: u64,
    history: Vec<HistoryEntry>,
    queue: VecDeque<Message>,
}

impl Executor {
    fn new(shared: Arc<Shared>, paths: engine::Paths) -> Executor {
        Executor {
            shared,
            paths: Some(paths),
            engine_rx: None,
            engine: None,
            execution_count: 0,
            cell_seq: 0,
            history: Vec::new(),
            queue: VecDeque::new(),
        }
    }

    /// Starts the engine on its own thread at once: kernel_info and friends are answered while it
    /// starts; the first request that needs it waits for it.
    fn start_engine(&mut self) {
        let Some(paths) = self.paths.take() else {
            return;
        };
        let shared = self.shared.clone();
        let (tx, rx) = mpsc::channel();
        self.engine_rx = Some(rx);
        std::thread::spawn(move || {
            let sink_shared = shared.clone();
            let sink =
                Box::new(move |o: Output, target: &Value| publish_output(&sink_shared, o, target));
            let t0 = std::time::Instant::now();
            let started = Engine::start(&paths, sink).map_err(|e| e.to_string());
            engine::timing(|| format!("engine start {:?}", t0.elapsed()));
            if let Ok(e) = &started
                && let Ok(mut i) = shared.interrupter.lock()
            {
                *i = Some(e.interrupter());
            }
            let started = started.map(|mut e| {
                if !shared.engine_wanted.load(Ordering::SeqCst) {
                    let t0 = std::time::Instant::now();
                    e.prime();
                    engine::timing(|| format!("rust-analyzer primed in {:?}", t0.elapsed()));
                }
                e
            });
            // Keep the build slot locked as long as the engine lives.
            let _ = tx.send(started.map(|e| (e, paths)));
        });
    }

    fn engine(&mut self) -> Result<&mut Engine, String> {
        if self.engine.is_none() {
            self.shared.engine_wanted.store(true, Ordering::SeqCst);
            let started = match self.engine_rx.take() {
                Some(rx) => rx
                    .recv()
                    .unwrap_or_else(|_| Err("the engine thread died".into())),
                None => Err("the engine was not started".into()),
            };
            self.engine = Some(started);
        }
        match self.engine.as_mut() {
            Some(Ok((e, _))) => Ok(e),
            Some(Err(e)) => Err(e.clone()),
            None => Err("the engine did not start".into()),
        }
    }

    fn run(mut self, rx: mpsc::Receiver<Message>) {
        self.start_engine();
        loop {
            let m = match self.queue.pop_front() {
                Some(m) => m,
                None => match rx.recv() {
                    Ok(m) => m,
                    Err(_) => return,
                },
            };
            while let Ok(more) = rx.try_recv() {
                self.queue.push_back(more);
            }
            let parent = m.header_value();
            self.shared
                .publish("status", &parent, json!({"execution_state": "busy"}));
            let aborted = self.handle(&m);
            // Before this request's idle (as ipykernel does): a request sent after a client saw
            // the failed cell end is not aborted, only those already queued.
            if aborted {
                self.abort_queued(&rx);
            }
            self.shared
                .publish("status", &parent, json!({"execution_state": "idle"}));
        }
    }

    /// After an error with `stop_on_error`: answer queued execute requests with `aborted`.
    fn abort_queued(&mut self, rx: &mpsc::Receiver<Message>) {
        while let Ok(more) = rx.try_recv() {
            self.queue.push_back(more);
        }
        let mut kept = VecDeque::new();
        while let Some(m) = self.queue.pop_front() {
            if m.header.msg_type == "execute_request" {
                let parent = m.header_value();
                self.shared
                    .publish("status", &parent, json!({"execution_state": "busy"}));
                let reply = self.shared.reply(
                    &m,
                    "execute_reply",
                    json!({"status": "aborted", "execution_count": self.execution_count}),
                );
                let _ = self.shared.shell_out.send(reply);
                self.shared
                    .publish("status", &parent, json!({"execution_state": "idle"}));
            } else {
                kept.push_back(m);
            }
        }
        self.queue = kept;
    }

    /// Handles one shell request; true if queued cells must be aborted.
    fn handle(&mut self, m: &Message) -> bool {
        let reply = |s: &Self, t: &str, c: Value| {
            let _ = s.shared.shell_out.send(s.shared.reply(m, t, c));
        };
        match m.header.msg_type.as_str() {
            "kernel_info_request" => {
                let _ = self.shared.shell_out.send(kernel_info(&self.shared, m));
            }
            "execute_request" => return self.execute(m),
            "is_complete_request" => {
                let code = str_field(&m.content, "code", "");
                let content = match is_complete::check(code) {
                    Verdict::Complete => json!({"status": "complete"}),
                    Verdict::Incomplete(indent) => {
                        json!({"status": "incomplete", "indent": indent})
                    }
                    Verdict::Invalid => json!({"status": "invalid"}),
                };
                reply(self, "is_complete_reply", content);
            }
            "complete_request" => {
                let (code, byte) = code_and_cursor(&m.content);
                let (matches, start, end) = match self.engine() {
                    Ok(e) => e.complete(&code, byte),
                    Err(_) => (Vec::new(), byte, byte),
                };
                reply(
                    self,
                    "complete_reply",
                    json!({
                        "status": "ok",
                        "matches": matches,
                        "cursor_start": byte_to_char(&code, start),
                        "cursor_end": byte_to_char(&code, end),
                        "metadata": {}
                    }),
                );
            }
            "inspect_request" => {
                let (code, byte) = code_and_cursor(&m.content);
                let found = self.engine().ok().and_then(|e| e.inspect(&code, byte));
                let content = match found {
                    Some((plain, html)) => json!({
                        "status": "ok", "found": true,
                        "data": {"text/plain": plain, "text/html": html}, "metadata": {}
                    }),
                    None => json!({"status": "ok", "found": false, "data": {}, "metadata": {}}),
                };
                reply(self, "inspect_reply", content);
            }
            "history_request" => {
                let content = self.history(&m.content);
                reply(self, "history_reply", content);
            }
            "comm_info_request" => reply(
                self,
                "comm_info_reply",
                json!({"status": "ok", "comms": {}}),
            ),
            "comm_open" => {
                let id = m.content.get("comm_id").cloned().unwrap_or(Value::Null);
                self.shared.publish(
                    "comm_close",
                    &m.header_value(),
                    json!({"comm_id": id, "data": {}}),
                );
            }
            "comm_msg" | "comm_close" => {}
            "shutdown_request" => {
                // Deprecated on shell; answer it like the control channel would.
                reply(
                    self,
                    "shutdown_reply",
                    json!({"status": "ok", "restart": false}),
                );
            }
            other => eprintln!("rustmp: unsupported shell message {other}"),
        }
        false
    }

    fn history(&self, content: &Value) -> Value {
        let op = str_field(content, "hist_access_type", "tail");
        let with_output = bool_field(content, "output", false);
        let entry = |h: &HistoryEntry| {
            if with_output {
                json!([1, h.line, [h.input, h.output]])
            } else {
                json!([1, h.line, h.input])
            }
        };
        let items: Vec<Value> = match op {
            "tail" => {
                let n = u64_field(content, "n", 10) as usize;
                let skip = self.history.len().saturating_sub(n);
                self.history[skip..].iter().map(entry).collect()
            }
            "range" => {
                let start = u64_field(content, "start", 0);
                let stop = u64_field(content, "stop", u64::MAX);
                self.history
                    .iter()
                    .filter(|h| h.line >= start && h.line < stop)
                    .map(entry)
                    .collect()
            }
            "search" => {
                let pattern = str_field(content, "pattern", "*");
                let unique = bool_field(content, "unique", false);
                let mut seen = std::collections::HashSet::new();
                let mut v: Vec<Value> = self
                    .history
                    .iter()
                    .filter(|h| glob(pattern, &h.input))
                    .filter(|h| !unique || seen.insert(h.input.clone()))
                    .map(entry)
                    .collect();
                if let Some(n) = content.get("n").and_then(Value::as_u64) {
                    let skip = v.len().saturating_sub(n as usize);
                    v.drain(..skip);
                }
                v
            }
            _ => Vec::new(),
        };
        json!({"status": "ok", "history": items})
    }

    /// `?path` (IPython's help syntax, spelled before the path: `x?` is Rust's `?` operator):
    /// the documentation of `path` in the frontend's pager (an execute reply's `page` payload),
    /// or a line saying there is none.
    fn page_help(&mut self, m: &Message, subject: &str, count: u64, silent: bool) {
        let found = self
            .engine()
            .ok()
            .and_then(|e| e.inspect(subject, subject.len()));
        let payload = match found {
            Some((plain, html)) => json!([{
                "source": "page",
                "data": {"text/plain": plain, "text/html": html},
                "start": 0
            }]),
            None => {
                if !silent {
                    self.shared.publish(
                        "stream",
                        &m.header_value(),
                        json!({"name": "stdout", "text": format!("no documentation found for `{subject}`\n")}),
                    );
                }
                json!([])
            }
        };
        let _ = self.shared.shell_out.send(self.shared.reply(
            m,
            "execute_reply",
            json!({"status": "ok", "execution_count": count, "payload": payload, "user_expressions": {}}),
        ));
    }

    fn execute(&mut self, m: &Message) -> bool {
        let code = str_field(&m.content, "code", "").to_string();
        let silent = bool_field(&m.content, "silent", false);
        let store_history = !silent && bool_field(&m.content, "store_history", true);
        let stop_on_error = bool_field(&m.content, "stop_on_error", true);
        let allow_stdin = bool_field(&m.content, "allow_stdin", false);
        let parent = m.header_value();
        if store_history {
            self.execution_count += 1;
            self.history.push(HistoryEntry {
                line: self.execution_count,
                input: code.clone(),
                output: None,
            });
        }
        let count = self.execution_count;
        if !silent {
            self.shared.publish(
                "execute_input",
                &parent,
                json!({"code": code, "execution_count": count}),
            );
        }
        if let Some(subject) = help_subject(&code) {
            self.page_help(m, subject, count, silent);
            return false;
        }
        let outcome = if code.trim().is_empty() {
            Outcome::Ok { result: None }
        } else {
            let shared = self.shared.clone();
            let identities = m.identities.clone();
            let request = m.clone();
            let input = move |prompt: &str, password: bool| -> String {
                if !allow_stdin {
                    return String::new();
                }
                request_input(&shared, &request, &identities, prompt, password)
            };
            let target = if silent { Value::Null } else { parent.clone() };
            self.cell_seq += 1;
            self.shared.running.store(self.cell_seq, Ordering::SeqCst);
            let outcome = match self.engine() {
                Ok(engine) => {
                    let label = if store_history {
                        crate::cells::Label::Count(count)
                    } else {
                        crate::cells::Label::Uncounted
                    };
                    engine.execute(&code, label, target, &input)
                }
                Err(e) => Outcome::Error {
                    ename: "KernelError".into(),
                    evalue: format!("the Rust engine could not start: {e}"),
                    traceback: vec![format!("the Rust engine could not start: {e}")],
                },
            };
            self.shared.running.store(0, Ordering::SeqCst);
            outcome
        };
        match outcome {
            Outcome::Ok { result } => {
                if store_history && let Some(last) = self.history.last_mut() {
                    last.output = result
                        .as_ref()
                        .and_then(|d| d.get("text/plain"))
                        .and_then(Value::as_str)
                        .map(String::from);
                }
                if let Some(data) = result
                    && !silent
                {
                    self.shared.publish(
                        "execute_result",
                        &parent,
                        json!({"execution_count": count, "data": data, "metadata": {}}),
                    );
                }
                let _ = self.shared.shell_out.send(self.shared.reply(
                    m,
                    "execute_reply",
                    json!({"status": "ok", "execution_count": count, "payload": [], "user_expressions": {}}),
                ));
                false
            }
            Outcome::Error {
                ename,
                evalue,
                traceback,
            } => {
                if !silent {
                    self.shared.publish(
                        "error",
                        &parent,
                        json!({"ename": ename, "evalue": evalue, "traceback": traceback}),
                    );
                }
                let _ = self.shared.shell_out.send(self.shared.reply(
                    m,
                    "execute_reply",
                    json!({"status": "error", "execution_count": count,
                           "ename": ename, "evalue": evalue, "traceback": traceback}),
                ));
                stop_on_error
            }
        }
    }
}

/// Asks the frontend for input on the stdin channel and waits for the matching reply.
fn request_input(
    shared: &Arc<Shared>,
    request: &Message,
    identities: &[Bytes],
    prompt: &str,
    password: bool,
) -> String {
    let mut msg = shared.reply(
        request,
        "input_request",
        json!({"prompt": prompt, "password": password}),
    );
    msg.identities = identities.to_vec();
    let _ = shared.stdin_out.send(msg);
    let Ok(rx) = shared.stdin_in.lock() else {
        return String::new();
    };
    // jupyter_client's `input()` sends the reply without a parent header: any input_reply on the
    // stdin channel answers the one pending request.
    loop {
        let interrupted = shared
            .interrupter
            .lock()
            .ok()
            .and_then(|g| g.as_ref().map(Interrupter::was_interrupted))
            .unwrap_or(false);
        if interrupted {
            return String::new();
        }
        match rx.recv_timeout(Duration::from_millis(100)) {
            Err(mpsc::RecvTimeoutError::Timeout) => continue,
            Ok(reply) if reply.header.msg_type == "input_reply" => {
                return str_field(&reply.content, "value", "").to_string();
            }
            Ok(_) => continue,
            Err(mpsc::RecvTimeoutError::Disconnected) => return String::new(),
        }
    }
}

fn publish_output(shared: &Shared, output: Output, target: &Value) {
    if target.is_null() {
        return; // a silent cell
    }
    match output {
        Output::Stream { name, text } => {
            shared.publish("stream", target, json!({"name": name, "text": text}))
        }
        Output::Display {
            data,
            display_id,
            update,
        } => {
            let transient = display_id
                .map(|id| json!({"display_id": id}))
                .unwrap_or(json!({}));
            let kind = if update {
                "update_display_data"
            } else {
                "display_data"
            };
            shared.publish(
                kind,
                target,
                json!({"data": data, "metadata": {}, "transient": transient}),
            );
        }
        Output::Clear { wait } => shared.publish("clear_output", target, json!({"wait": wait})),
        Output::Panic(_)
        | Output::CellPanicked
        | Output::CellErrored
        | Output::CellErrorMessage(_)
        | Output::Fork(_)
        | Output::Sync(_) => {}
    }
}

fn str_field<'a>(content: &'a Value, key: &str, default: &'a str) -> &'a str {
    content.get(key).and_then(Value::as_str).unwrap_or(default)
}

fn bool_field(content: &Value, key: &str, default: bool) -> bool {
    content.get(key).and_then(Value::as_bool).unwrap_or(default)
}

fn u64_field(content: &Value, key: &str, default: u64) -> u64 {
    content.get(key).and_then(Value::as_u64).unwrap_or(default)
}

/// A request's `code` and its `cursor_pos` (in code points, default: the end) as a byte offset.
fn code_and_cursor(content: &Value) -> (String, usize) {
    let code = str_field(content, "code", "").to_string();
    let cursor = content
        .get("cursor_pos")
        .and_then(Value::as_u64)
        .map_or(code.len(), |c| char_to_byte(&code, c as usize));
    (code, cursor)
}

fn char_to_byte(s: &str, chars: usize) -> usize {
    s.char_indices()
        .nth(chars)
        .map(|(b, _)| b)
        .unwrap_or(s.len())
}

fn byte_to_char(s: &str, byte: usize) -> usize {
    s[..byte.min(s.len())].chars().count()
}

/// Shell-style `*` and `?` matching (history search).
fn glob(pattern: &str, text: &str) -> bool {
    fn go(p: &[char], t: &[char]) -> bool {
        match p.first() {
            None => t.is_empty(),
            Some('*') => go(&p[1..], t) || (!t.is_empty() && go(p, &t[1..])),
            Some('?') => !t.is_empty() && go(&p[1..], &t[1..]),
            Some(c) => t.first() == Some(c) && go(&p[1..], &t[1..]),
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    go(&p, &t)
}

#[cfg(test)]
mod tests {
    use super::help_subject;

    #[test]
    fn only_a_question_mark_before_a_path_asks_for_help() {
        assert_eq!(help_subject("?std::vec::Vec"), Some("std::vec::Vec"));
        assert_eq!(help_subject("  ? HashMap \n"), Some("HashMap"));
        // Rust's `?` operator, and code that is not a path, are cells.
        assert_eq!(help_subject("result?"), None);
        assert_eq!(help_subject("?"), None);
        assert_eq!(help_subject("?x + 1"), None);
    }
}
