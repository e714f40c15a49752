//! The fake cluster of `scripts/fake-cluster.sh`: network namespaces as hosts, brought up and
//! torn down around the scenarios that need them.

use super::run::run;
use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

/// `scripts/fake-cluster.sh` exits with this when it cannot work here (not root, no
/// CAP_NET_ADMIN, no iproute2): the scenarios are skipped, not failed (except under CI).
pub const CANNOT_HERE: i32 = 77;

/// Why the cluster could not be brought up.
pub enum UpError {
    /// This machine cannot host it (the reason is the script's message).
    CannotHere(String),
    /// It should have worked and did not.
    Failed(String),
}

/// A fake cluster that is up; dropping it takes it down.
pub struct FakeCluster {
    /// The variables `up` printed (what mpirun needs to reach the fake hosts).
    pub env: Vec<(String, String)>,
    /// The fake hosts, in hostfile order.
    pub hosts: Vec<String>,
    /// The generated hostfile.
    pub hostfile: PathBuf,
    /// The rsh agent.
    pub agent: PathBuf,
    /// The inode of each host's network namespace.
    pub netns: BTreeMap<String, u64>,
    is_up: bool,
}

/// The script, found from this crate's directory.
pub fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/fake-cluster.sh")
}

impl FakeCluster {
    /// Runs `fake-cluster.sh up` (which clears stale state first) and reads what it printed.
    pub fn up() -> Result<FakeCluster, UpError> {
        FakeCluster::up_with(&[])
    }

    /// [`FakeCluster::up`] with settings for the script (`RUSTMP_FAKE_UNREACHABLE`, …).
    pub fn up_with(settings: &[(&str, &str)]) -> Result<FakeCluster, UpError> {
        let mut command = Command::new(script());
        command.arg("up").envs(settings.iter().copied());
        let done = run(&mut command, Duration::from_secs(60)).map_err(UpError::Failed)?;
        if done.status.code() == Some(CANNOT_HERE) {
            return Err(UpError::CannotHere(done.stderr.trim().to_string()));
        }
        if !done.status.success() {
            return Err(UpError::Failed(done.describe("fake-cluster.sh up")));
        }
        let mut cluster = FakeCluster {
            env: Vec::new(),
            hosts: Vec::new(),
            hostfile: PathBuf::new(),
            agent: PathBuf::new(),
            netns: BTreeMap::new(),
            is_up: true,
        };
        for line in done.stdout.lines() {
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            match key {
                "RUSTMP_FAKE_HOSTS" => {
                    cluster.hosts = value.split(',').map(str::to_string).collect();
                }
                "RUSTMP_FAKE_HOSTFILE" => cluster.hostfile = PathBuf::from(value),
                "OMPI_MCA_plm_rsh_agent" => cluster.agent = PathBuf::from(value),
                _ => {}
            }
            cluster.env.push((key.to_string(), value.to_string()));
        }
        if cluster.hosts.is_empty() || !cluster.agent.is_file() || !cluster.hostfile.is_file() {
            return Err(UpError::Failed(
                done.describe("fake-cluster.sh up printed no usable cluster"),
            ));
        }
        for host in &cluster.hosts {
            let inode = std::fs::metadata(format!("/run/netns/{host}"))
                .map_err(|e| UpError::Failed(format!("no namespace for {host}: {e}")))?
                .ino();
            cluster.netns.insert(host.clone(), inode);
        }
        Ok(cluster)
    }

    /// Gives `command` the cluster's environment.
    pub fn apply<'c>(&self, command: &'c mut Command) -> &'c mut Command {
        command.envs(self.env.iter().map(|(k, v)| (k, v)))
    }

    /// Pids in `host`'s namespace (`ip netns pids`).
    pub fn pids_in(&self, host: &str) -> Result<Vec<String>, String> {
        let done = run(
            Command::new("ip").args(["netns", "pids", host]),
            Duration::from_secs(10),
        )?;
        if !done.status.success() {
            return Err(done.describe("ip netns pids"));
        }
        Ok(done.stdout.split_whitespace().map(str::to_string).collect())
    }

    /// Waits up to `limit` for every host to be empty; the pids still there otherwise.
    pub fn wait_empty(&self, limit: Duration) -> Result<(), String> {
        let start = Instant::now();
        loop {
            let mut left = Vec::new();
            for host in &self.hosts {
                for pid in self.pids_in(host)? {
                    let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                    left.push(format!(
                        "{host}: pid {pid} {}",
                        String::from_utf8_lossy(&cmd).replace('\0', " ")
                    ));
                }
            }
            if left.is_empty() {
                return Ok(());
            }
            if start.elapsed() > limit {
                return Err(format!(
                    "still running {} s after the job: {left:?}",
                    limit.as_secs()
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Runs `fake-cluster.sh down`: no namespace, bridge, hosts line or job process may remain.
    pub fn down(&mut self) -> Result<(), String> {
        self.is_up = false;
        let done = run(Command::new(script()).arg("down"), Duration::from_secs(60))?;
        if done.status.success() {
            Ok(())
        } else {
            Err(done.describe("fake-cluster.sh down"))
        }
    }
}

impl Drop for FakeCluster {
    fn drop(&mut self) {
        if self.is_up
            && let Err(error) = self.down()
        {
            eprintln!("{error}");
        }
    }
}
