//! One remote worker as the manager and the relay both see it: its rank, its pid on its host,
//! and how it ended ([`Ended`]).

use super::job::JobState;
use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
use std::sync::{Arc, Mutex};

/// How a remote worker ended.
#[derive(Clone, Debug)]
pub(crate) enum Ended {
    /// It exited with this code (Python's convention: `-9` for SIGKILL).
    Exit(i32),
    /// It could not be started: the rank's message.
    NotStarted(String),
    /// The whole job ended: why.
    Job(String),
}

/// One remote worker as the manager sees it: its rank, host and pid, and how it ended.
pub(crate) struct Link {
    pub(crate) rank: u32,
    pid: AtomicU32,
    ended: Mutex<Option<Ended>>,
    job: Arc<JobState>,
}

impl Link {
    pub(super) fn new(rank: u32, pid: u32, job: Arc<JobState>) -> Link {
        Link {
            rank,
            pid: AtomicU32::new(pid),
            ended: Mutex::new(None),
            job,
        }
    }

    /// The worker's pid on its host (0 until it started).
    pub(crate) fn pid(&self) -> u32 {
        self.pid.load(SeqCst)
    }

    pub(super) fn set_pid(&self, pid: u32) {
        self.pid.store(pid, SeqCst);
    }

    pub(super) fn end(&self, how: Ended) {
        let mut ended = self.ended.lock().unwrap_or_else(|e| e.into_inner());
        ended.get_or_insert(how);
    }

    /// How it ended, if it has (the job's end counts).
    pub(crate) fn ended(&self) -> Option<Ended> {
        let own = self.ended.lock().unwrap_or_else(|e| e.into_inner()).clone();
        own.or_else(|| self.job.dead().map(Ended::Job))
    }
}
