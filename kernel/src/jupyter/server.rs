//! Starting the kernel: the connection file, the sockets, the tasks that serve them and the
//! executor thread; the kernel exits when the process that started it is gone.

use super::connection::ConnectionInfo;
use super::content::ExecutionState;
use super::iopub;
use super::shared::{Publish, Shared};
use super::shell::Executor;
use super::sockets::{recv_loop, send_loop};
use super::wire::{self, Message, Signer};
use crate::engine;
use serde_json::{Map, Value};
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;
use tokio::sync::mpsc as tmpsc;
use zeromq::{Socket, SocketRecv, SocketSend};

/// Why the kernel stopped.
#[derive(Debug, thiserror::Error)]
pub enum KernelError {
    /// The connection file is unusable.
    #[error(transparent)]
    Connection(#[from] super::connection::ConnectionError),
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

    let (iopub_tx, iopub_rx) = tmpsc::unbounded_channel::<Publish>();
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
    iopub::spawn(shared.clone(), iopub, iopub_rx);
    shared.publish_status(&Value::Object(Map::new()), ExecutionState::Starting);
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
    let (control_send, control_recv) = control.split();
    let (stdin_send, stdin_recv) = stdin.split();
    tokio::spawn(send_loop(shared.clone(), shell_rx, shell_send));
    tokio::spawn(send_loop(shared.clone(), stdin_rx, stdin_send));
    tokio::spawn(recv_loop(shared.clone(), stdin_recv, stdin_in_tx, "stdin"));
    tokio::spawn(recv_loop(shared.clone(), shell_recv, exec_tx, "shell"));
    // Control: handled here, never queued behind a cell.
    let control_sender = tokio::spawn(send_loop(shared.clone(), control_rx, control_send));
    super::control::serve(shared, control_recv, control_sender).await;
    Ok(())
}

/// Exits (ending the runtime's process group) when the process that started the kernel is gone:
/// `JPY_PARENT_PID` if Jupyter set it, else the parent process.
fn watch_parent(shared: Arc<Shared>) {
    let parent = nix::unistd::getppid();
    let jpy: Option<i32> = std::env::var("JPY_PARENT_PID")
        .ok()
        .and_then(|p| p.parse().ok());
    std::thread::spawn(move || {
        loop {
            std::thread::sleep(Duration::from_millis(500));
            let gone = nix::unistd::getppid() != parent
                || jpy.is_some_and(|p| {
                    p > 1 && nix::sys::signal::kill(nix::unistd::Pid::from_raw(p), None).is_err()
                });
            if gone {
                if let Some(i) = shared.interrupter.lock().ok().and_then(|g| g.clone()) {
                    i.kill();
                }
                std::process::exit(1);
            }
        }
    });
}
