//! Nobody else gets in: forged MPI frames and outside connections run nothing.

use crate::support::fake::FakeCluster;
use crate::support::front::Front;
use crate::support::{Outcome, ensure, ports, run};
use crate::{Job, LIMIT, REPLY, Setup, ask, worker_ranks};
use rustmp_mpi::frame::{Frame, Kind};
use rustmp_mpi::mac;
use rustmp_mpi::proto::{PeerRaw, Program, Start};
use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// A `Start` for rank 1 that would create `marker` if it ever ran.
fn forged_start(marker: &Path) -> Frame {
    let start = Start {
        program: Program::Path("/bin/sh".into()),
        args: vec!["-c".into(), format!("touch {}", marker.display()).into()],
        env: vec![],
    };
    Frame::new(1, Kind::Start, start.encode())
}

/// On the /tmp that this host and the fake hosts share.
fn marker_path() -> PathBuf {
    PathBuf::from(format!("/tmp/rustmp-forged-{}", std::process::id()))
}

/// Messages to rank 1 that are not the bridge's run nothing and are reported as dropped: no
/// MAC, a MAC under another key, a replay of an old sequence number, a runt, and a frame with a
/// valid MAC that another rank sends; rank 1 still answers afterwards.
pub fn forged_frames(front: &mut Front) -> Outcome {
    let marker = marker_path();
    let _ = std::fs::remove_file(&marker);
    let body = forged_start(&marker).encode();
    let key = mac::link_key(&front.secret);
    let seq = front.sent.get(&1).copied().unwrap_or(0);
    let with = |tag: [u8; 32]| [body.clone(), tag.to_vec()].concat();
    let other_key = mac::link_key(&[9u8; 32]);
    let forged = [
        with([0; 32]),
        with(mac::frame_mac(&other_key, seq, 1, &body)),
        with(mac::frame_mac(&key, 0, 1, &body)),
        b"runt".to_vec(),
    ];
    for bytes in forged {
        front.send(1, Kind::Raw, bytes)?;
    }
    let peer = PeerRaw {
        dest: 1,
        bytes: with(mac::frame_mac(&key, seq, 1, &body)),
    };
    front.send(2, Kind::PeerRaw, peer.encode())?;
    let mut reasons = Vec::new();
    for _ in 0..5 {
        let frame = front.expect(LIMIT, "dropped", |f| f.rank == 1 && f.kind == Kind::Dropped)?;
        reasons.push(frame.text());
    }
    println!("  rank 1 dropped: {reasons:#?}");
    ensure(reasons.iter().any(|r| r.contains("from rank 2")), || {
        "the other rank's frame was not dropped for its source".into()
    })?;
    let wrong = reasons.iter().filter(|r| r.contains("wrong MAC")).count();
    ensure(wrong == 3, || format!("{wrong} wrong MACs, 3 expected"))?;
    let answer = ask(front, 1, "square 5")?;
    ensure(answer.starts_with("25 "), || answer.clone())?;
    let ran = front
        .unclaimed
        .iter()
        .any(|f| f.rank == 1 && matches!(f.kind, Kind::Started | Kind::StartFailed | Kind::Error));
    ensure(!ran && !marker.exists(), || {
        format!("a forged frame ran (marker {})", marker.display())
    })
}

/// Nobody else gets in: another user cannot reach the front's socket (0700 directory); a
/// same-user connection without the secret was refused before the bridge's; every TCP port of
/// the job's processes (mpirun, bridge, orteds, ranks, workers, on every host) gets a
/// connection and a forged `Start`, nothing runs, and every rank still answers.
pub fn outside(setup: &Setup, cluster: &FakeCluster, front: &mut Front, job: &Job) -> Outcome {
    ensure(front.rejected == 1, || {
        format!("{} connections refused, 1 expected", front.rejected)
    })?;
    let mut nobody = Command::new(&setup.echo);
    nobody
        .arg("connect")
        .arg(&front.socket)
        .uid(65534)
        .gid(65534);
    let done = run::run(&mut nobody, REPLY)?;
    ensure(
        !done.status.success() && done.stdout.contains("Permission denied"),
        || done.describe("connect as nobody"),
    )?;
    let marker = marker_path();
    let forged = [
        forged_start(&marker).encode(),
        vec![0u8; 32],
        vec![0x5a; 4096],
    ]
    .concat();
    let forged_file = front.dir.join("forged");
    std::fs::write(&forged_file, &forged).map_err(|e| e.to_string())?;
    let mut pids = ports::descendants(front.job.pid());
    for host in &cluster.hosts {
        pids.extend(
            cluster
                .pids_in(host)?
                .iter()
                .filter_map(|p| p.parse::<u32>().ok()),
        );
    }
    let mut listeners = ports::listeners(&pids);
    listeners.dedup_by_key(|l| (l.netns, l.addr.clone(), l.port));
    ensure(!listeners.is_empty(), || "no listening port found".into())?;
    let workers: BTreeSet<u32> = job.started.values().map(|s| s.pid).collect();
    let leaked: Vec<_> = listeners
        .iter()
        .filter(|l| workers.contains(&l.pid))
        .collect();
    ensure(leaked.is_empty(), || {
        format!("workers hold the rank's listeners: {leaked:?}")
    })?;
    let names: BTreeMap<u64, String> = cluster.netns.iter().map(|(h, n)| (*n, h.clone())).collect();
    let mut attempts = Vec::new();
    for listener in &listeners {
        let addr = match listener.addr.as_str() {
            "0.0.0.0" => "127.0.0.1".to_string(),
            "::" => "::1".to_string(),
            other => other.to_string(),
        };
        let script = format!(
            "exec 3<>/dev/tcp/{addr}/{} && cat {} >&3; sleep 0.2",
            listener.port,
            forged_file.display()
        );
        let host = names.get(&listener.netns).cloned();
        let mut command = Command::new(if host.is_some() { "ip" } else { "bash" });
        if let Some(ns) = &host {
            command.args(["netns", "exec", ns, "bash"]);
        }
        command.args(["-c", &script]);
        let shown = format!(
            "{} {addr}:{} (pid {})",
            host.as_deref().unwrap_or(&setup.here),
            listener.port,
            listener.pid
        );
        attempts.push((shown, run::spawn(&mut command)?));
    }
    for (shown, mut attempt) in attempts {
        let done = attempt.finish(REPLY)?;
        let what = if done.status.success() {
            "connected, forged bytes sent"
        } else {
            "refused"
        };
        println!("  {shown}: {what}");
    }
    std::thread::sleep(Duration::from_millis(500));
    ensure(!marker.exists(), || {
        format!("a forged frame ran: {} exists", marker.display())
    })?;
    for rank in worker_ranks(front) {
        let answer = ask(front, rank, "square 9")?;
        ensure(answer.starts_with("81 "), || {
            format!("rank {rank} after the forged bytes: {answer}")
        })?;
    }
    let started = front.unclaimed.iter().any(|f| f.kind == Kind::Started);
    ensure(!started, || "something started".into())
}
