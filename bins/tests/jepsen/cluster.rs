//! The `quorate node` processes of a run: five nodes, each in the namespace of its id,
//! and at times a duplicate (the same id and certificate) or a member of a spare id in
//! slot 6. Every process's stdout is read by a thread that stamps each line with its
//! receipt time on the harness's clock; kills, stops and continues are stamped the
//! same way.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use serde_json::Value;

use crate::net::{self, Net, PORT};

/// The quorate binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_quorate");
/// The campaigned group.
pub const GROUP: &str = "g";
/// Node ids 1..=NODES; slot NODES + 1 hosts duplicates.
pub const NODES: u64 = 5;
/// The duplicate's slot (also where a spare id runs, see [`Cluster::spawn_member`]).
pub const DUP_SLOT: usize = 6;

/// A point on the harness's clock: Unix ms.
pub type Ms = f64;

/// Now on the harness's clock.
pub fn now_ms() -> Ms {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64() * 1000.0)
        .unwrap_or(0.0)
}

/// One stdout line and when the harness read it.
#[derive(Clone, Debug)]
pub struct Line {
    pub recv: Ms,
    pub v: Value,
}

/// A SIGSTOP and, once sent, its SIGCONT.
#[derive(Clone, Copy, Debug)]
pub struct Stop {
    pub at: Ms,
    pub cont: Option<Ms>,
}

/// One process: a node id run once (a restart is a new instance).
pub struct Instance {
    pub serial: usize,
    pub id: u64,
    /// Its clock rate relative to real time (1.0 unless run under libfaketime).
    pub rate: f64,
    pub duplicate: bool,
    /// When it was started.
    pub started: Ms,
    /// When it was killed and reaped (or exited after SIGTERM).
    pub ended: Option<Ms>,
    pub stops: Vec<Stop>,
    pub lines: Arc<Mutex<Vec<Line>>>,
    child: Option<Child>,
    reader: Option<JoinHandle<()>>,
}

impl Instance {
    /// A finished process made of recorded lines (for checking the checker).
    pub fn recorded(serial: usize, id: u64, rate: f64, lines: Vec<Line>, ended: Ms) -> Self {
        Instance {
            serial,
            id,
            rate,
            duplicate: false,
            started: lines.first().map_or(0.0, |l| l.recv),
            ended: Some(ended),
            stops: Vec::new(),
            lines: Arc::new(Mutex::new(lines)),
            child: None,
            reader: None,
        }
    }

    /// Whether it runs and is not stopped.
    pub fn running(&self) -> bool {
        self.ended.is_none() && !matches!(self.stops.last(), Some(Stop { cont: None, .. }))
    }

    /// A readable name: `n3#7` (node 3, process 7), `dup n3#9`, `n3#7@x1.005`.
    pub fn name(&self) -> String {
        let dup = if self.duplicate { "dup " } else { "" };
        let rate = if self.rate == 1.0 {
            String::new()
        } else {
            format!("@x{}", self.rate)
        };
        format!("{dup}n{}#{}{rate}", self.id, self.serial)
    }

    /// The last leadership event it printed about the group: leader or not.
    fn leads(&self) -> bool {
        let lines = self.lines.lock().unwrap();
        let last = lines.iter().rev().find_map(|l| {
            let ev = l.v["event"].as_str()?;
            (l.v["group"] == GROUP && ev.starts_with("leadership_")).then_some(ev)
        });
        matches!(last, Some("leadership_acquired" | "leadership_renewed"))
    }
}

/// What `quorate node --help` offers beyond the basics.
#[derive(Clone, Copy, Debug, Default)]
pub struct Features {
    pub data_dir: bool,
    pub renewals: bool,
}

impl Features {
    pub fn detect() -> Result<Features> {
        let help = net::run(BIN, &["node", "--help"])?;
        Ok(Features {
            data_dir: help.contains("--data-dir"),
            renewals: help.contains("--renewals"),
        })
    }
}

/// How a cluster is made beyond the defaults.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Certificates for this many more node ids (`NODES + 1`, ...), not voters: members
    /// run by [`Cluster::spawn_member`].
    pub spares: u64,
    /// More `quorate node` arguments for every process of the five campaigning ids.
    pub node_args: Vec<String>,
}

/// The running cluster. Dropping it kills every process, then the network.
pub struct Cluster {
    pub instances: Vec<Instance>,
    /// The instance currently run for each id in its own slot.
    pub current: BTreeMap<u64, usize>,
    /// The running duplicate, if any.
    pub dup: Option<usize>,
    /// Harness actions, in order.
    pub timeline: Vec<(Ms, String)>,
    pub features: Features,
    pub t0: Ms,
    faketime: PathBuf,
    dir: PathBuf,
    node_args: Vec<String>,
    pub net: Net,
    tmp: Option<tempfile::TempDir>,
}

impl Cluster {
    /// `quorate init` with the namespace addresses, and the network; no process yet.
    pub fn new(features: Features, faketime: PathBuf) -> Result<Cluster> {
        Cluster::with_options(features, faketime, Options::default())
    }

    /// As [`Cluster::new`], with spare node ids and more arguments for the nodes.
    pub fn with_options(features: Features, faketime: PathBuf, opts: Options) -> Result<Cluster> {
        let tmp = tempfile::tempdir()?;
        let dir = tmp.path().join("cluster");
        let voters = (1..=NODES).map(|k| k.to_string()).collect::<Vec<_>>();
        let nodes = (NODES + opts.spares).to_string();
        net::run(
            BIN,
            &[
                "init",
                dir.to_str().unwrap(),
                "--nodes",
                &nodes,
                "--voters",
                &voters.join(","),
            ],
        )?;
        write_addresses(&dir)?;
        std::fs::create_dir_all(dir.join("logs"))?;
        Ok(Cluster {
            instances: Vec::new(),
            current: BTreeMap::new(),
            dup: None,
            timeline: Vec::new(),
            features,
            t0: now_ms(),
            faketime,
            dir,
            node_args: opts.node_args,
            net: Net::create(DUP_SLOT)?,
            tmp: Some(tmp),
        })
    }

    pub fn note(&mut self, text: impl Into<String>) {
        let text = text.into();
        eprintln!("[{:>8.3}s] {text}", (now_ms() - self.t0) / 1000.0);
        self.timeline.push((now_ms(), text));
    }

    /// Starts node `id` in its own slot (or, as a duplicate, in the spare slot), at
    /// clock rate `rate` (1.0: the real clock; otherwise under libfaketime), running
    /// for the group.
    pub fn spawn(&mut self, id: u64, duplicate: bool, rate: f64) -> Result<usize> {
        let slot = if duplicate { DUP_SLOT } else { id as usize };
        let mut args = vec!["--campaign".to_owned(), GROUP.to_owned()];
        args.extend(self.node_args.iter().cloned());
        self.start(id, slot, duplicate, rate, &args)
    }

    /// Starts node `id`, a spare id (see [`Options::spares`]), in the spare slot: a
    /// member that runs for nothing, given only `args` beyond the basics.
    #[allow(dead_code)] // not every test binary runs one
    pub fn spawn_member(&mut self, id: u64, args: &[String]) -> Result<usize> {
        if id <= NODES {
            bail!("node {id} is one of the five, not a spare id");
        }
        self.start(id, DUP_SLOT, false, 1.0, args)
    }

    fn start(
        &mut self,
        id: u64,
        slot: usize,
        duplicate: bool,
        rate: f64,
        args: &[String],
    ) -> Result<usize> {
        let serial = self.instances.len();
        let listen = format!("{}:{PORT}", net::addr(slot));
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.net.ns(slot), "env"]);
        if rate != 1.0 {
            cmd.arg(format!("LD_PRELOAD={}", self.faketime.display()));
            cmd.arg(format!("FAKETIME=+0 x{rate}"));
        }
        cmd.arg(BIN)
            .args(["node", "--dir", self.dir.to_str().unwrap()]);
        cmd.args(["--id", &id.to_string(), "--json"]);
        cmd.args(["--listen", &listen]);
        cmd.args(args);
        if self.features.data_dir {
            let data = self.data_dir(id, duplicate)?;
            cmd.args(["--data-dir", data.to_str().unwrap()]);
        }
        if self.features.renewals {
            cmd.arg("--renewals");
        }
        let err = std::fs::File::create(self.dir.join(format!("logs/{serial}-n{id}.err")))?;
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(err)
            .spawn()
            .context("cannot start quorate node")?;
        let lines = Arc::new(Mutex::new(Vec::new()));
        let reader = read_lines(child.stdout.take().unwrap(), Arc::clone(&lines));
        self.instances.push(Instance {
            serial,
            id,
            rate,
            duplicate,
            started: now_ms(),
            ended: None,
            stops: Vec::new(),
            lines,
            child: Some(child),
            reader: Some(reader),
        });
        if duplicate {
            self.dup = Some(serial);
        } else {
            self.current.insert(id, serial);
        }
        let name = self.instances[serial].name();
        self.note(format!("start {name} in slot {slot}"));
        Ok(serial)
    }

    /// The data directory of node `id`: its own, or for a duplicate a copy of it made
    /// now (a cloned machine).
    fn data_dir(&self, id: u64, duplicate: bool) -> Result<PathBuf> {
        let own = self.dir.join(format!("data-{id}"));
        if !duplicate {
            return Ok(own);
        }
        let copy = self.dir.join(format!("dup-data-{id}"));
        let _ = std::fs::remove_dir_all(&copy);
        if own.exists() {
            net::run("cp", &["-a", own.to_str().unwrap(), copy.to_str().unwrap()])?;
        }
        Ok(copy)
    }

    /// `kill -9` and reap.
    pub fn kill(&mut self, serial: usize) -> Result<()> {
        let inst = &mut self.instances[serial];
        let Some(mut child) = inst.child.take() else {
            bail!("{} is not running", inst.name());
        };
        child.kill()?;
        child.wait()?;
        inst.ended = Some(now_ms());
        if self.dup == Some(serial) {
            self.dup = None;
        }
        let name = self.instances[serial].name();
        self.note(format!("kill -9 {name}"));
        Ok(())
    }

    /// SIGSTOP (`stop`) or SIGCONT.
    pub fn pause(&mut self, serial: usize, stop: bool) -> Result<()> {
        let inst = &mut self.instances[serial];
        let pid = inst.child.as_ref().context("not running")?.id().to_string();
        let sig = if stop { "-STOP" } else { "-CONT" };
        let before = now_ms();
        net::run("kill", &[sig, &pid])?;
        if stop {
            inst.stops.push(Stop {
                at: now_ms(),
                cont: None,
            });
        } else if let Some(s) = inst.stops.last_mut() {
            s.cont = Some(before);
        }
        let name = self.instances[serial].name();
        self.note(format!(
            "{} {name}",
            if stop { "SIGSTOP" } else { "SIGCONT" }
        ));
        Ok(())
    }

    /// SIGTERM, a graceful stop (a leader resigns and releases its voters, then the
    /// node leaves), and waits up to `within` for the process to exit; past that it is
    /// killed and this fails. Returns when the signal was sent.
    #[allow(dead_code)] // not every test binary stops a node gracefully
    pub fn terminate(&mut self, serial: usize, within: Duration) -> Result<Ms> {
        let name = self.instances[serial].name();
        let pid = self.pid(serial).context("not running")?.to_string();
        self.note(format!("SIGTERM {name}"));
        let sent = now_ms();
        net::run("kill", &["-TERM", &pid])?;
        let end = Instant::now() + within;
        let status = loop {
            let child = self.instances[serial].child.as_mut().unwrap();
            if let Some(status) = child.try_wait()? {
                break status;
            }
            if Instant::now() >= end {
                self.kill(serial)?;
                bail!("{name} did not exit within {within:?} of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let inst = &mut self.instances[serial];
        inst.child = None;
        inst.ended = Some(now_ms());
        if self.dup == Some(serial) {
            self.dup = None;
        }
        self.note(format!("{name} exited: {status}"));
        Ok(sent)
    }

    /// The process id of `serial` while it runs.
    #[allow(dead_code)] // not every test binary asks
    pub fn pid(&self, serial: usize) -> Option<u32> {
        self.instances[serial].child.as_ref().map(Child::id)
    }

    /// Since when the cluster has been steady: a running leader that has held the
    /// group since then, every running process reported alive by every other one, and
    /// the end (failure or departure) of every node id that no longer runs reported by
    /// every running process that knew it. `Err` says what is not settled yet.
    #[allow(dead_code)] // not every test binary asks
    pub fn steady_since(&self) -> std::result::Result<(usize, Ms), String> {
        let Some(leader) = self.leader() else {
            return Err("no running leader".into());
        };
        let mut since = self.instances[leader]
            .lines
            .lock()
            .unwrap()
            .iter()
            .rfind(|l| l.v["group"] == GROUP && l.v["event"] == "leadership_acquired")
            .map_or(0.0, |l| l.recv);
        let running: Vec<&Instance> = self.instances.iter().filter(|i| i.running()).collect();
        // Each node id that no longer runs, and when its last process started (a
        // departing one is reported gone before it exits).
        let ended: BTreeMap<u64, Ms> = self
            .instances
            .iter()
            .filter(|i| !running.iter().any(|r| r.id == i.id))
            .map(|i| (i.id, i.started))
            .collect();
        for x in &running {
            let lines = x.lines.lock().unwrap();
            // What `x` reported about member `id`: when, and whether up (joined,
            // alive, updated), suspected, or gone (failed, left).
            let about = |id: u64| -> Vec<(Ms, &str)> {
                lines
                    .iter()
                    .filter(|l| l.v["member"] == id)
                    .filter_map(|l| {
                        let kind = match l.v["event"].as_str()? {
                            "member_joined" | "member_alive" | "member_updated" => "up",
                            "member_suspect" => "suspect",
                            "member_failed" | "member_left" => "gone",
                            _ => return None,
                        };
                        Some((l.recv, kind))
                    })
                    .collect()
            };
            for y in running.iter().filter(|y| y.serial != x.serial) {
                // The last run of "up" reports since y started.
                let seen: Vec<(Ms, &str)> = about(y.id)
                    .into_iter()
                    .filter(|s| s.0 >= y.started)
                    .collect();
                let first_up = seen.iter().rposition(|s| s.1 != "up").map_or(0, |p| p + 1);
                match seen.get(first_up) {
                    Some(s) => since = since.max(s.0),
                    None => return Err(format!("{} has not seen {} up", x.name(), y.name())),
                }
            }
            for (&id, &start) in &ended {
                match about(id).last() {
                    // Never heard of it, or heard of its end.
                    None => {}
                    Some((t, "gone")) if *t >= start => since = since.max(*t),
                    Some(_) => return Err(format!("{} has not seen node {id} end", x.name())),
                }
            }
        }
        Ok((leader, since))
    }

    /// Waits up to `within` until the cluster has been steady (see
    /// [`Cluster::steady_since`]) for `settle`; returns the leader.
    #[allow(dead_code)] // not every test binary asks
    pub fn wait_steady(&self, settle: Duration, within: Duration) -> Result<usize> {
        let end = Instant::now() + within;
        loop {
            let state = self.steady_since();
            if let Ok((leader, since)) = state {
                if now_ms() - since >= settle.as_secs_f64() * 1000.0 {
                    return Ok(leader);
                }
            }
            if Instant::now() >= end {
                bail!("the cluster was not steady for {settle:?} within {within:?}: {state:?}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The running instance that last reported holding the group, if any.
    pub fn leader(&self) -> Option<usize> {
        self.instances
            .iter()
            .filter(|i| i.running() && i.leads())
            .map(|i| i.serial)
            .next()
    }

    /// Starts nodes 1 to [`NODES`] and waits (a minute at most) for a first leader,
    /// failing with every process's stderr when none comes.
    pub fn start_all(&mut self) -> Result<()> {
        for id in 1..=NODES {
            self.spawn(id, false, 1.0)?;
        }
        if self.wait_leader(Duration::from_secs(60)).is_none() {
            let errs: Vec<String> = (0..self.instances.len())
                .map(|s| self.stderr_of(s))
                .collect();
            bail!("no leader within 60 s of starting; stderr: {errs:#?}");
        }
        Ok(())
    }

    /// Waits up to `within` for a running leader.
    pub fn wait_leader(&self, within: Duration) -> Option<usize> {
        let end = Instant::now() + within;
        loop {
            if let Some(l) = self.leader() {
                return Some(l);
            }
            if Instant::now() >= end {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Continues every stopped process, kills them all and reads their last lines.
    pub fn shutdown(&mut self) -> Result<()> {
        let stopped: Vec<usize> = (0..self.instances.len())
            .filter(|s| self.instances[*s].ended.is_none() && !self.instances[*s].running())
            .collect();
        for serial in &stopped {
            self.pause(*serial, false)?;
        }
        if !stopped.is_empty() {
            // Time to report the leadership each may have lost while stopped.
            std::thread::sleep(Duration::from_secs(1));
        }
        for serial in 0..self.instances.len() {
            if self.instances[serial].child.is_some() {
                self.kill(serial)?;
            }
        }
        for inst in &mut self.instances {
            if let Some(r) = inst.reader.take() {
                let _ = r.join();
            }
        }
        for inst in &self.instances {
            let mut text = String::new();
            for l in inst.lines.lock().unwrap().iter() {
                text += &format!("{:.3}\t{}\n", l.recv, l.v);
            }
            let name = format!("logs/{}-n{}.out", inst.serial, inst.id);
            std::fs::write(self.dir.join(name), text)?;
        }
        Ok(())
    }

    /// Keeps the cluster directory (certificates, each process's stdout lines with
    /// their receipt times, and stderr, under `logs/`) past the test, for a report.
    pub fn keep(&mut self) -> PathBuf {
        if let Some(tmp) = self.tmp.take() {
            let _ = tmp.keep();
        }
        self.dir.clone()
    }

    /// The stderr of process `serial` (for reports).
    pub fn stderr_of(&self, serial: usize) -> String {
        let id = self.instances[serial].id;
        std::fs::read_to_string(self.dir.join(format!("logs/{serial}-n{id}.err")))
            .unwrap_or_default()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for inst in &mut self.instances {
            if let Some(mut child) = inst.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

fn read_lines(stdout: std::process::ChildStdout, lines: Arc<Mutex<Vec<Line>>>) -> JoinHandle<()> {
    std::thread::spawn(move || {
        for text in BufReader::new(stdout).lines().map_while(Result::ok) {
            let recv = now_ms();
            let v = serde_json::from_str(&text).unwrap_or(Value::String(text));
            lines.lock().unwrap().push(Line { recv, v });
        }
    })
}

/// Points `cluster.toml` at the namespace addresses: node K at 10.77.0.K, seeds 1..=3.
fn write_addresses(dir: &Path) -> Result<()> {
    let path = dir.join("cluster.toml");
    let mut file: toml::Table = toml::from_str(&std::fs::read_to_string(&path)?)?;
    let at = |k: u64| toml::Value::String(format!("{}:{PORT}", net::addr(k as usize)));
    file.insert("seeds".into(), (1..=3).map(at).collect::<Vec<_>>().into());
    let Some(toml::Value::Array(nodes)) = file.get_mut("node") else {
        bail!("cluster.toml has no [[node]]");
    };
    for node in nodes.iter_mut() {
        let id = node["id"].as_integer().context("node without id")? as u64;
        node.as_table_mut().unwrap().insert("addr".into(), at(id));
    }
    std::fs::write(&path, toml::to_string_pretty(&file)?)?;
    Ok(())
}
