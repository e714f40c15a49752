//! The manager's side of a cluster pool's workers: one per MPI rank, reached through the
//! front's relay by a local socketpair (so the rest of the manager treats it as a spawn
//! worker), ended when the relay closes that socket (the [`Link`] says how).

use super::Manager;
use crate::error::{Error, Result, TaskError};
use crate::interrupt;
use crate::pool::cluster::{Ended, Link};
use crate::pool::link::{PIPELINE, Worker, read_answers};
use crate::runtime;
use crate::sys::{self, Events};
use std::os::fd::AsFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

impl Manager {
    /// Starts a worker on a free rank (the first ones were started with the job; later ones
    /// are restarts of the rank's program). With no rank free (a retiring worker still holds
    /// its rank), nothing now: the manager tries again once it has exited.
    pub(super) fn spawn_remote(&mut self) -> Result<()> {
        let used: Vec<u32> = self
            .workers
            .iter()
            .filter_map(|w| w.remote.as_ref().map(|l| l.rank))
            .collect();
        let Some(front) = self.cluster.as_mut() else {
            return Err(Error::Broken("not a cluster pool".into()));
        };
        let Some(rank) = front.free_rank(&used)? else {
            return Ok(());
        };
        let (mine, theirs) = sys::socketpair()?;
        let (name, identity) = runtime::next_name("MpiPoolWorker");
        let name = format!("{name}@{}", front.host(rank));
        let link: Arc<Link> = front.attach(rank, theirs, name.clone())?;
        sys::set_nonblocking(&mine, true)?;
        let row = self
            .shared
            .recorder
            .row(&name, link.pid(), Some(front.host(rank)));
        self.workers.push(Worker {
            pid: link.pid(),
            name,
            pidfd: None,
            sock: mine,
            inbuf: Vec::new(),
            partial: None,
            ready: false,
            out: Vec::new(),
            out_pos: 0,
            in_flight: Default::default(),
            since: Instant::now(),
            short: None,
            depth: PIPELINE,
            tasks: 0,
            row,
            generation: 0,
            retiring: false,
            defined: Default::default(),
            sent: Default::default(),
            remote: Some(link),
            stages: None,
        });
        self.queue_setup(self.workers.len() - 1, identity)
    }

    /// Removes remote worker `i` if it has ended: the chunk it ran fails with
    /// [`Error::WorkerDied`] and those queued behind it go to another worker, or all fail with
    /// [`Error::Cluster`] when the whole job ended.
    pub(super) fn check_remote_exit(&mut self, i: usize) {
        let Some(ended) = self.workers[i].remote.as_ref().and_then(|l| l.ended()) else {
            return;
        };
        for a in read_answers(&mut self.workers[i]) {
            self.handle_answer(i, a);
        }
        if !matches!(ended, Ended::Job(_)) {
            // Everything up to the end of the socket first: the relay closes it once it wrote
            // the worker's last bytes (at once after the link ended); until then, later.
            let sock = self.workers[i].sock.as_fd();
            match sys::poll_fd(sock, Events::IN, Duration::ZERO) {
                Ok(events) if events.intersects(Events::HUP | Events::ERR) => {
                    for a in read_answers(&mut self.workers[i]) {
                        self.handle_answer(i, a);
                    }
                }
                Ok(_) => return,
                Err(_) => {}
            }
        }
        let w = self.workers.remove(i);
        let pid = w.remote.as_ref().map_or(w.pid, |l| l.pid());
        if !w.ready && !w.retiring && !matches!(ended, Ended::Job(_)) {
            // Died (or could not start) before it was ready: as a local spawn worker.
            self.init_failures += 1;
            self.init_failure = Some(TaskError {
                message: match &ended {
                    Ended::NotStarted(why) => format!("the worker could not start: {why}"),
                    Ended::Exit(code) => {
                        format!("the spawn worker exited with code {code} before it was ready")
                    }
                    Ended::Job(why) => why.clone(),
                },
                location: None,
                backtrace: String::new(),
                worker: w.name.clone(),
                pid,
            });
        }
        let err = || match &ended {
            Ended::Job(why) | Ended::NotStarted(why) => Error::Cluster(why.clone()),
            Ended::Exit(code) => Error::WorkerDied {
                worker: w.name.clone(),
                pid,
                exitcode: *code,
            },
        };
        self.lost(
            (w.row, w.since),
            w.in_flight,
            !matches!(ended, Ended::Job(_)),
            err,
        );
    }

    /// A cluster pool's `build` waits until every worker is ready, so that a host that cannot
    /// load the pool's code (its staging directory is `noexec`, a library is missing there)
    /// fails the pool at once with the loader's message, not each task later. Workers that
    /// end before they are ready are started again (as a local pool does), until
    /// [`Manager::init_retries`] starts in a row have failed.
    /// `started` is when `build` began and `epoch` the interrupt count then: the wait ends at
    /// the start timeout counted from `started`, or with [`Error::Interrupted`].
    pub(crate) fn await_ready(&mut self, started: Instant, epoch: u64) -> Result<()> {
        let Some(limit) = self.config.mpi.as_ref().map(|m| m.start_timeout) else {
            return Ok(());
        };
        self.settled = Some(Default::default());
        let waited = self.wait_ready(started + limit, limit, epoch);
        self.settled = None;
        self.start_failure = None;
        waited
    }

    fn wait_ready(&mut self, deadline: Instant, limit: Duration, epoch: u64) -> Result<()> {
        loop {
            // An interrupt ends the job too: it is the cause to report.
            if interrupt::raised_count() != epoch {
                return Err(Error::Interrupted);
            }
            if let Some(why) = self.start_failure.take() {
                return Err(Error::Cluster(why));
            }
            if let Some(why) = self.cluster.as_ref().and_then(|f| f.ended()) {
                return Err(Error::Cluster(why));
            }
            // Every rank's worker was ready, or ran the initializer (whose failure is the
            // calls' to report, as in a local pool).
            let settled = self.settled.as_ref().map_or(0, |s| s.len());
            if settled >= self.config.processes {
                return Ok(());
            }
            // Workers that ended before they were ready are started again, as in a local pool,
            // until that has failed too often in a row.
            if self.init_gave_up() {
                let why = self
                    .init_failure
                    .as_ref()
                    .map_or_else(String::new, |f| format!("{}: {}", f.worker, f.message));
                return Err(Error::Cluster(format!(
                    "the workers cannot start ({} failed starts in a row): {why}",
                    self.init_failures
                )));
            }
            if Instant::now() > deadline {
                let waiting: Vec<&str> = self
                    .workers
                    .iter()
                    .filter(|w| !w.ready && !w.retiring)
                    .map(|w| w.name.as_str())
                    .collect();
                return Err(Error::Cluster(format!(
                    "{settled} of {} workers were ready within the start timeout ({limit:?}); \
                     not ready: {}",
                    self.config.processes,
                    waiting.join(", ")
                )));
            }
            self.wait_for_events(Duration::from_millis(50));
            self.maintain();
        }
    }
}
