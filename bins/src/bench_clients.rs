//! `quorate bench-clients`: what client connections (the kind `quorate status` opens)
//! cost a node. It starts one `quorate node` process, opens N client-certificate
//! connections to it at once, holds them, closes them, and prints the node's resident
//! memory before, while they are open, and after; and how many the node refused.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Args;
use quorate::{query_status, Identity};
use tokio::task::JoinSet;

use crate::cluster::{ClusterFile, Paths};

/// The application close code of a connection a node refused for want of room.
const BUSY: quinn::VarInt = quinn::VarInt::from_u32(6);
/// The application close code of a client connection past its lifetime.
const EXPIRED: quinn::VarInt = quinn::VarInt::from_u32(7);

/// Arguments of `quorate bench-clients`.
#[derive(Args, Debug)]
pub struct BenchClientsArgs {
    /// Client connections opened at once.
    #[arg(long, default_value_t = 3000)]
    connections: usize,
    /// Seconds the connections are held open before they are closed.
    #[arg(long, default_value_t = 3)]
    hold: u64,
    /// Seconds after closing them before memory is measured again.
    #[arg(long, default_value_t = 5)]
    settle: u64,
    /// UDP port of the node measured.
    #[arg(long, default_value_t = 7391)]
    port: u16,
}

/// The node process, killed when dropped.
struct NodeProc(Child);

impl Drop for NodeProc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A memory figure of process `pid` in MiB from `/proc/PID/status` (Linux):
/// `VmRSS` (resident now) or `VmHWM` (peak resident).
fn mem_mib(pid: u32, key: &str) -> Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .context("reading /proc (Linux only)")?;
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .with_context(|| format!("no {key}"))?;
    Ok(kb / 1024.0)
}

fn rss_mib(pid: u32) -> Result<f64> {
    mem_mib(pid, "VmRSS")
}

/// How many connections are open, and how the others ended: (open, refused as
/// busy, closed at the end of their lifetime, other ends).
fn census(conns: &[quinn::Connection]) -> (usize, usize, usize, usize) {
    let (mut open, mut busy, mut expired, mut other) = (0, 0, 0, 0);
    for c in conns {
        let code = match c.close_reason() {
            None => {
                open += 1;
                continue;
            }
            Some(quinn::ConnectionError::ApplicationClosed(a)) => Some(a.error_code),
            Some(_) => None,
        };
        match code {
            Some(BUSY) => busy += 1,
            Some(EXPIRED) => expired += 1,
            _ => other += 1,
        }
    }
    (open, busy, expired, other)
}

/// Starts the measured node in a fresh one-node cluster under `dir`.
fn start_node(dir: &Path, port: u16) -> Result<NodeProc> {
    let exe = std::env::current_exe()?;
    let init = Command::new(&exe)
        .arg("init")
        .arg(dir)
        .args(["--nodes", "1", "--base-port", &port.to_string(), "--force"])
        .stdout(Stdio::null())
        .status()?;
    if !init.success() {
        bail!("quorate init failed");
    }
    let child = Command::new(&exe)
        .args(["node", "--json", "--id", "1", "--dir"])
        .arg(dir)
        .stdout(Stdio::null())
        .spawn()?;
    Ok(NodeProc(child))
}

/// Waits until the node answers a status query.
async fn wait_up(identity: &Identity, addr: SocketAddr, cluster: &str) -> Result<()> {
    let end = Instant::now() + Duration::from_secs(30);
    while query_status(identity, addr, cluster).await.is_err() {
        if Instant::now() > end {
            bail!("the node did not answer within 30 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

/// Opens `n` client connections at once; those whose handshake completed.
async fn open(
    endpoint: &quinn::Endpoint,
    client: quinn::ClientConfig,
    addr: SocketAddr,
    n: usize,
) -> Vec<quinn::Connection> {
    let mut tasks = JoinSet::new();
    for _ in 0..n {
        let connecting =
            endpoint.connect_with(client.clone(), addr, quorate::identity::MEMBER_SERVER_NAME);
        tasks.spawn(async move { connecting.ok()?.await.ok() });
    }
    let mut conns = Vec::with_capacity(n);
    while let Some(done) = tasks.join_next().await {
        if let Ok(Some(conn)) = done {
            conns.push(conn);
        }
    }
    conns
}

/// Runs the measurement and prints what it saw.
pub async fn run(a: BenchClientsArgs) -> Result<()> {
    let dir: PathBuf =
        std::env::temp_dir().join(format!("quorate-bench-clients-{}", std::process::id()));
    let result = measure(&a, &dir).await;
    let _ = std::fs::remove_dir_all(&dir);
    result
}

async fn measure(a: &BenchClientsArgs, dir: &Path) -> Result<()> {
    let node = start_node(dir, a.port)?;
    let pid = node.0.id();
    let file = ClusterFile::load(dir)?;
    let paths = Paths(dir.to_owned());
    let identity = Identity::load(&paths.client_cert(), &paths.client_key(), &paths.ca_cert())?;
    let addr = file.node(1)?.addr.resolve()?;
    wait_up(&identity, addr, &file.cluster_name).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = rss_mib(pid)?;

    let endpoint = quinn::Endpoint::client(([127, 0, 0, 1], 0).into())?;
    let client = quorate::runtime::client_config(&identity, &file.config()?)?;
    let started = Instant::now();
    let conns = open(&endpoint, client, addr, a.connections).await;
    let opened = started.elapsed();
    tokio::time::sleep(Duration::from_secs(a.hold)).await;
    let during = rss_mib(pid)?;
    let (held, refused, expired, ended) = census(&conns);
    let completed = conns.len();
    let answers = query_status(&identity, addr, &file.cluster_name)
        .await
        .is_ok();

    for c in &conns {
        c.close(0u32.into(), b"done");
    }
    drop(conns);
    let _ = tokio::time::timeout(Duration::from_secs(5), endpoint.wait_idle()).await;
    tokio::time::sleep(Duration::from_secs(a.settle)).await;
    let after = rss_mib(pid)?;
    let answers_after = query_status(&identity, addr, &file.cluster_name)
        .await
        .is_ok();
    let peak = mem_mib(pid, "VmHWM")?;

    println!(
        "one quorate node on 127.0.0.1:{}; {} client connections opened at once in {:.0} ms",
        a.port,
        a.connections,
        opened.as_secs_f64() * 1000.0
    );
    println!(
        "handshakes completed {completed} (the others were refused before it); {a_hold} s \
         later: open {held}, closed as busy {refused}, at their lifetime's end {expired}, \
         otherwise (idle timeout, ...) {ended}",
        a_hold = a.hold
    );
    println!(
        "node RSS: before {before:.1} MiB, with them open {during:.1} MiB, {} s after \
         closing {after:.1} MiB; peak {peak:.1} MiB",
        a.settle
    );
    println!("status answered while open: {answers}; after: {answers_after}");
    drop(node);
    Ok(())
}
