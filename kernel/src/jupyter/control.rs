//! The control channel: kernel info, usage, interrupt and shutdown requests, handled as they
//! come, never queued behind a cell. [`dispatch`] looks the handler up by message type and
//! publishes busy and idle around it, as ipykernel's `dispatch_control` does.

use super::content::{self, BadContent, InterruptReply, ShutdownReply, ShutdownRequest};
use super::kernel_info::kernel_info;
use super::shared::Shared;
use super::sockets::to_frames;
use super::wire::Message;
use serde_json::{Map, Value};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use zeromq::SocketRecv;

/// What the control loop does after a request.
#[derive(Debug, PartialEq, Eq)]
enum After {
    /// Serves the next request.
    Serve,
    /// Exits the process (the kernel shuts down).
    Exit,
}

/// A control request's handler.
type Handler = fn(&Arc<Shared>, &Message) -> Result<After, BadContent>;

/// The handler of the control requests of type `msg_type`.
fn handler(msg_type: &str) -> Option<Handler> {
    Some(match msg_type {
        "kernel_info_request" => |shared, m| {
            let _ = shared.control_out.send(kernel_info(shared, m));
            Ok(After::Serve)
        },
        "usage_request" => usage,
        "interrupt_request" => |shared, m| {
            interrupt(shared);
            let _ = shared
                .control_out
                .send(shared.reply(m, &InterruptReply::default()));
            Ok(After::Serve)
        },
        "shutdown_request" => shutdown,
        _ => return None,
    })
}

/// Handles the control socket's requests until shutdown (which exits the process);
/// `control_sender` is the task that sends the replies.
pub(super) async fn serve<S: SocketRecv>(
    shared: Arc<Shared>,
    mut control_recv: S,
    control_sender: tokio::task::JoinHandle<()>,
) {
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
        if dispatch(&shared, &m) == After::Exit {
            tokio::time::sleep(Duration::from_millis(100)).await;
            control_sender.abort();
            std::process::exit(0);
        }
    }
}

/// Handles one control request between its busy and idle; a request whose content is invalid
/// is answered with an error reply (and logged).
fn dispatch(shared: &Arc<Shared>, m: &Message) -> After {
    shared.while_busy(m, || {
        let msg_type = m.header.msg_type.as_str();
        let Some(handle) = handler(msg_type) else {
            eprintln!("rustmp: unsupported control message {msg_type}");
            return After::Serve;
        };
        handle(shared, m).unwrap_or_else(|e| {
            if let Some(reply) = shared.refuse(m, &e, None) {
                let _ = shared.control_out.send(reply);
            }
            After::Serve
        })
    })
}

/// `usage_request`: the CPU and memory of the kernel's process tree and of the host.
fn usage(shared: &Arc<Shared>, m: &Message) -> Result<After, BadContent> {
    let content = shared
        .usage
        .lock()
        .map(|mut u| u.reply())
        .unwrap_or_else(|_| Value::Object(Map::new()));
    let _ = shared
        .control_out
        .send(shared.message(m, "usage_reply", content));
    Ok(After::Serve)
}

/// `shutdown_request`: ends the running cell's runtime, answers (on control and IOPub) and
/// exits once the idle is published.
fn shutdown(shared: &Arc<Shared>, m: &Message) -> Result<After, BadContent> {
    let request: ShutdownRequest = content::decode(&m.header.msg_type, &m.content)?;
    shared.shutting_down.store(true, Ordering::SeqCst);
    if let Some(i) = shared.interrupter.lock().ok().and_then(|g| g.clone()) {
        i.kill();
    }
    let reply = ShutdownReply::new(request);
    shared.publish_content(&m.header_value(), &reply);
    let _ = shared.control_out.send(shared.reply(m, &reply));
    Ok(After::Exit)
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
