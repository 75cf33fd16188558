//! `quorate bench`: real `quorate node` processes on loopback, measured. For each
//! cluster size: convergence time, crash detection latency (first / all survivors),
//! bytes sent per node per second, CPU and RSS per node in steady state. With
//! `--wire`, packets and bytes on the wire per node per second, IP and UDP headers
//! included, with the kernel's loopback counts as a cross-check ([`crate::bench_wire`]).

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::UdpSocket;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Args;
use serde_json::Value;

use crate::bench_wire::Kernel;

/// Arguments of `quorate bench`.
#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Cluster sizes to measure, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "5,20,50")]
    nodes: Vec<u16>,
    /// Seconds of steady state measured for traffic, CPU and memory.
    #[arg(long, default_value_t = 10)]
    window: u64,
    /// Timing preset: lan, wan, local or edge.
    #[arg(long, default_value = "lan")]
    preset: String,
    /// Also report packets and bytes on the wire (IP and UDP headers included) per node
    /// per second, as each node's socket counted them and as the kernel's loopback
    /// counters saw them over the same window (meaningful when nothing else uses
    /// loopback meanwhile).
    #[arg(long)]
    wire: bool,
}

struct Row {
    n: u16,
    converge: Duration,
    first: Duration,
    all: Duration,
    bytes_per_s: f64,
    udp_per_s: f64,
    cpu_pct: f64,
    rss_mib: f64,
    wire: Wire,
    phases: Phases,
}

/// Per node per second over the steady window: as the nodes counted, and as the
/// kernel counted on loopback.
#[derive(Default)]
struct Wire {
    bytes: f64,
    packets: f64,
    lo_bytes: f64,
    lo_packets: f64,
    udp_out: f64,
}

/// Runs every size in turn and prints the table.
pub fn run(a: BenchArgs) -> Result<()> {
    let exe = std::env::current_exe()?;
    let mut rows = Vec::new();
    for &n in &a.nodes {
        if n < 3 {
            bail!("--nodes values must be at least 3");
        }
        eprintln!("measuring {n} nodes...");
        rows.push(measure(&exe, n, &a).with_context(|| format!("{n} nodes"))?);
    }
    println!(
        "real quorate nodes on 127.0.0.1, preset {}, {} s steady window after two probe rounds",
        a.preset, a.window
    );
    println!(
        "{:>5} {:>12} {:>14} {:>14} {:>15} {:>13} {:>10} {:>13}",
        "nodes",
        "converge_ms",
        "detect_first",
        "detect_all",
        "payload_B/n/s",
        "udp_B/node/s",
        "cpu%/node",
        "rss_MiB/node"
    );
    for r in &rows {
        println!(
            "{:>5} {:>12.0} {:>14.0} {:>14.0} {:>15.0} {:>13.0} {:>10.2} {:>13.1}",
            r.n,
            ms(r.converge),
            ms(r.first),
            ms(r.all),
            r.bytes_per_s,
            r.udp_per_s,
            r.cpu_pct,
            r.rss_mib
        );
    }
    if a.wire {
        print_wire(&rows);
    }
    print_phases(&rows);
    Ok(())
}

fn print_phases(rows: &[Row]) {
    println!("where the join time goes, ms, median/slowest node (spawning: all processes, before the converge clock; cpu_ms: all processes, first spawn to convergence, over wall_ms; join_kB: on the wire from start to convergence and up to 1 s more)");
    println!(
        "{:>5} {:>9} {:>15} {:>15} {:>15} {:>8} {:>8} {:>12}",
        "nodes",
        "spawning",
        "spawn->started",
        "started->first",
        "first->all",
        "cpu_ms",
        "wall_ms",
        "join_kB/node"
    );
    let pair = |(a, b): (Duration, Duration)| format!("{:.0}/{:.0}", ms(a), ms(b));
    for r in rows {
        let p = &r.phases;
        println!(
            "{:>5} {:>9.0} {:>15} {:>15} {:>15} {:>8.0} {:>8.0} {:>12.1}",
            r.n,
            ms(p.spawning),
            pair(p.started),
            pair(p.joined),
            pair(p.filled),
            ms(p.cpu),
            ms(p.wall),
            p.bytes / 1000.0
        );
    }
}

fn print_wire(rows: &[Row]) {
    println!("on the wire, per node per second, IP+UDP headers included (nodes' sockets | kernel, loopback)");
    println!(
        "{:>5} {:>12} {:>10} {:>12} {:>10} {:>13}",
        "nodes", "wire_B/s", "wire_pkt/s", "lo_B/s", "lo_pkt/s", "udp_out_pkt/s"
    );
    for r in rows {
        let w = &r.wire;
        println!(
            "{:>5} {:>12.0} {:>10.1} {:>12.0} {:>10.1} {:>13.1}",
            r.n, w.bytes, w.packets, w.lo_bytes, w.lo_packets, w.udp_out
        );
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

struct Cluster {
    procs: HashMap<u64, Child>,
    rx: mpsc::Receiver<Value>,
    /// Latest stats line per node.
    stats: HashMap<u64, Value>,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for c in self.procs.values_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Cluster {
    /// Receives events until `done(event)` returns true for the last needed one.
    fn until(&mut self, limit: Duration, mut done: impl FnMut(&Value) -> bool) -> Result<()> {
        let end = Instant::now() + limit;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            let v = self.rx.recv_timeout(left).context("timed out")?;
            if v["event"] == "stats" {
                self.stats
                    .insert(v["node"].as_u64().unwrap_or(0), v.clone());
            }
            if done(&v) {
                return Ok(());
            }
        }
    }
}

fn measure(exe: &Path, n: u16, a: &BenchArgs) -> Result<Row> {
    let tmp = std::env::temp_dir().join(format!("quorate-bench-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let base = free_base(n)?;
    let ok = Command::new(exe)
        .args([
            "init",
            tmp.to_str().unwrap_or("."),
            "--nodes",
            &n.to_string(),
        ])
        .args(["--base-port", &base.to_string(), "--preset", &a.preset])
        .stdout(Stdio::null())
        .status()?
        .success();
    if !ok {
        bail!("quorate init failed");
    }
    let spawn0 = Instant::now();
    let mut c = spawn_all(exe, &tmp, n)?;
    let t0 = Instant::now();
    let mut joins = Joins::default();
    c.until(Duration::from_secs(120), |v| joins.on(v, n, Instant::now()))?;
    let converge = t0.elapsed();
    let mut phases = joins.phases(spawn0, t0);
    phases.cpu = Duration::from_secs_f64(
        c.procs.values().map(|p| cpu_ticks(p.id())).sum::<u64>() as f64 / clock_ticks() as f64,
    );
    phases.wall = spawn0.elapsed();
    phases.bytes = join_bytes(&mut c, Instant::now())? / f64::from(n);
    let Steady {
        bytes_per_s,
        udp_per_s,
        cpu_pct,
        rss_mib,
        wire,
    } = steady(&mut c, warmup(n, &a.preset)?, a.window)?;
    let (first, all) = crash(&mut c, u64::from(n))?;
    let _ = std::fs::remove_dir_all(&tmp);
    Ok(Row {
        n,
        converge,
        first,
        all,
        bytes_per_s,
        udp_per_s,
        cpu_pct,
        rss_mib,
        wire,
        phases,
    })
}

/// Bytes on the wire of all nodes since their start, from the first stats line each
/// node prints after `after` (stats come every second: up to a second of steady
/// traffic is included).
fn join_bytes(c: &mut Cluster, after: Instant) -> Result<f64> {
    let mut seen: HashMap<u64, u64> = HashMap::new();
    let n = c.procs.len();
    c.until(Duration::from_secs(10), |v| {
        if v["event"] == "stats" && Instant::now() > after {
            let node = v["node"].as_u64().unwrap_or(0);
            seen.insert(node, v["wire_bytes_out"].as_u64().unwrap_or(0));
        }
        seen.len() == n
    })?;
    Ok(seen.values().sum::<u64>() as f64)
}

/// When each node started, first saw a member (its join answered) and saw them all.
#[derive(Default)]
struct Joins {
    started: HashMap<u64, Instant>,
    first: HashMap<u64, Instant>,
    count: HashMap<u64, usize>,
    full: HashMap<u64, Instant>,
}

impl Joins {
    /// Records one event; true once every node has seen all `n - 1` others.
    fn on(&mut self, v: &Value, n: u16, at: Instant) -> bool {
        let node = v["node"].as_u64().unwrap_or(0);
        if v["event"] == "node_started" {
            self.started.insert(node, at);
        }
        if v["event"] == "member_joined" {
            self.first.entry(node).or_insert(at);
            let k = self.count.entry(node).or_default();
            *k += 1;
            if *k == usize::from(n) - 1 {
                self.full.insert(node, at);
            }
        }
        self.full.len() == usize::from(n)
    }

    /// The phases, each as (median, slowest) over the nodes.
    fn phases(&self, spawn0: Instant, spawned: Instant) -> Phases {
        let spread = |f: &dyn Fn(u64) -> Option<Duration>| {
            let mut d: Vec<Duration> = self.full.keys().filter_map(|id| f(*id)).collect();
            d.sort();
            (
                d.get(d.len() / 2).copied().unwrap_or_default(),
                d.last().copied().unwrap_or_default(),
            )
        };
        let since =
            |a: Option<&Instant>, b: Option<&Instant>| Some(a?.saturating_duration_since(*b?));
        Phases {
            spawning: spawned - spawn0,
            started: spread(&|id| since(self.started.get(&id), Some(&spawn0))),
            joined: spread(&|id| since(self.first.get(&id), self.started.get(&id))),
            filled: spread(&|id| since(self.full.get(&id), self.first.get(&id))),
            cpu: Duration::ZERO,
            wall: Duration::ZERO,
            bytes: 0.0,
        }
    }
}

/// Where a join's time goes, (median, slowest) over the nodes.
struct Phases {
    /// Spawning every process (the converge clock starts after it).
    spawning: Duration,
    /// From the first spawn to the node's start line (process start, identity, bind).
    started: (Duration, Duration),
    /// From its start to its first member (handshake with a seed, join exchange).
    joined: (Duration, Duration),
    /// From its first member to all of them (the rest by gossip and exchanges).
    filled: (Duration, Duration),
    /// CPU time of all the processes from their spawn to convergence...
    cpu: Duration,
    /// ...over this much time (first spawn to convergence).
    wall: Duration,
    /// Bytes on the wire per node from its start to convergence (and up to a second
    /// more).
    bytes: f64,
}

struct Steady {
    bytes_per_s: f64,
    udp_per_s: f64,
    cpu_pct: f64,
    rss_mib: f64,
    wire: Wire,
}

fn total(c: &Cluster, field: &str) -> u64 {
    c.stats
        .values()
        .map(|v| v[field].as_u64().unwrap_or(0))
        .sum()
}

fn spawn_all(exe: &Path, dir: &Path, n: u16) -> Result<Cluster> {
    let (tx, rx) = mpsc::channel();
    let mut procs = HashMap::new();
    for id in 1..=u64::from(n) {
        let mut child = Command::new(exe)
            .args([
                "node",
                "--dir",
                dir.to_str().unwrap_or("."),
                "--id",
                &id.to_string(),
            ])
            .args(["--json", "--stats-every", "1"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let out = child.stdout.take().context("stdout")?;
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str::<Value>(&line) {
                    if tx.send(v).is_err() {
                        break;
                    }
                }
            }
        });
        procs.insert(id, child);
    }
    Ok(Cluster {
        procs,
        rx,
        stats: HashMap::new(),
    })
}

/// Traffic, CPU and memory per node over the steady window.
/// Time for two full probe rounds (every node has then talked to every other and its
/// connections are up), at least 5 s: steady state starts after it.
fn warmup(n: u16, preset: &str) -> Result<Duration> {
    let probe = crate::cluster::preset(preset)?.probe_interval;
    Ok((probe * u32::from(n) * 2).max(Duration::from_secs(5)))
}

fn steady(c: &mut Cluster, warmup: Duration, window: u64) -> Result<Steady> {
    c.until(warmup, |_| false).ok();
    let (bytes0, udp0) = (total(c, "bytes_out"), total(c, "udp_bytes_out"));
    let (wb0, wp0) = (total(c, "wire_bytes_out"), total(c, "wire_packets_out"));
    let kernel0 = Kernel::now();
    let cpu0: u64 = c.procs.values().map(|p| cpu_ticks(p.id())).sum();
    let t = Instant::now();
    c.until(Duration::from_secs(window), |_| false).ok();
    let secs = t.elapsed().as_secs_f64();
    let kernel = kernel0.since(Kernel::now());
    let (bytes1, udp1) = (total(c, "bytes_out"), total(c, "udp_bytes_out"));
    let (wb1, wp1) = (total(c, "wire_bytes_out"), total(c, "wire_packets_out"));
    let cpu1: u64 = c.procs.values().map(|p| cpu_ticks(p.id())).sum();
    let n = c.procs.len() as f64;
    let rss: u64 = c.procs.values().map(|p| rss_kib(p.id())).sum();
    let ticks = clock_ticks() as f64;
    let per_node_s = |d: u64| d as f64 / secs / n;
    Ok(Steady {
        bytes_per_s: per_node_s(bytes1.saturating_sub(bytes0)),
        udp_per_s: per_node_s(udp1.saturating_sub(udp0)),
        cpu_pct: (cpu1.saturating_sub(cpu0)) as f64 / ticks / secs / n * 100.0,
        rss_mib: rss as f64 / n / 1024.0,
        wire: Wire {
            bytes: per_node_s(wb1.saturating_sub(wb0)),
            packets: per_node_s(wp1.saturating_sub(wp0)),
            lo_bytes: per_node_s(kernel.lo_bytes),
            lo_packets: per_node_s(kernel.lo_packets),
            udp_out: per_node_s(kernel.udp_out),
        },
    })
}

/// `kill -9` of node `victim`: time to the first and to the last survivor's report.
fn crash(c: &mut Cluster, victim: u64) -> Result<(Duration, Duration)> {
    let mut p = c.procs.remove(&victim).context("victim")?;
    let t0 = Instant::now();
    p.kill()?;
    p.wait()?;
    let survivors = c.procs.len();
    let mut first = None;
    let mut seen = std::collections::HashSet::new();
    c.until(Duration::from_secs(60), |v| {
        if v["event"] == "member_failed" && v["member"] == victim {
            first.get_or_insert(t0.elapsed());
            seen.insert(v["node"].as_u64().unwrap_or(0));
        }
        seen.len() == survivors
    })?;
    Ok((first.unwrap_or_default(), t0.elapsed()))
}

fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are 14th and 15th.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let get = |i: usize| f.get(i).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0);
    get(11) + get(12)
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn clock_ticks() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100)
}

/// A base port with `n` consecutive free UDP ports on 127.0.0.1.
fn free_base(n: u16) -> Result<u16> {
    let mut x = u64::from(std::process::id()) ^ 0x9e37_79b9_7f4a_7c15;
    for _ in 0..2000 {
        x = x
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let base = 20_000 + (x >> 33) as u16 % 40_000;
        let held: Vec<_> = (0..n)
            .map_while(|i| UdpSocket::bind(("127.0.0.1", base + i)).ok())
            .collect();
        if held.len() == usize::from(n) {
            return Ok(base);
        }
    }
    bail!("no range of {n} free ports found")
}
