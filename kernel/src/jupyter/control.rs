//! The control channel: kernel info, usage, interrupt and shutdown requests, handled as they
//! come, never queued behind a cell.

use super::fields::bool_field;
use super::kernel_info::kernel_info;
use super::shared::Shared;
use super::sockets::to_frames;
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use zeromq::SocketRecv;

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
