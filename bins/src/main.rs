//! The `quorate` command: make a cluster, run its nodes, ask them what they see, or
//! watch a whole cluster work in one command (`quorate demo`).

mod bench;
mod bench_clients;
mod bench_election;
mod bench_wire;
mod child;
mod demo;
mod elect;
mod printer;
mod run;
mod screen;
mod status;
mod watch;

use quorate_cli::{cert, cluster, init, view};

use std::net::SocketAddr;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "quorate",
    version,
    about = "Membership and leader election for edge clusters"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Write a cluster directory: CA, node certificates and keys, cluster.toml.
    Init(init::InitArgs),
    /// Certificates of an existing cluster: add a node, renew one.
    #[command(subcommand)]
    Cert(cert::CertCmd),
    /// Run one node until SIGINT/SIGTERM (which leave the cluster gracefully).
    Node(run::NodeArgs),
    /// Ask a running node for its view: members, voters and quorum, groups and leaders.
    Status(status::QueryArgs),
    /// Print a group's leader and term as a running node sees it ("none" without one).
    Leader(status::GroupArgs),
    /// Give a running node a revocation list (from `quorate cert revoke`): it refuses
    /// the revoked certificates and sends the list to every member.
    Revoke(status::RevokeArgs),
    /// List every group a running node knows, with leader, members and candidates.
    Groups(status::QueryArgs),
    /// List a group's members and their capabilities.
    Members(status::GroupArgs),
    /// Run as node ID, lead GROUP, and run a command only while leading (stopped
    /// before the lease can run out; exits with the command's status).
    Elect(elect::ElectArgs),
    /// Run as node ID, hold lock NAME, and run a command only while holding it.
    Lock(elect::LockArgs),
    /// Print a running node's events as they happen (JSON lines with --json).
    Watch(watch::WatchArgs),
    /// Start a local cluster, crash a node and report what happened, with timings.
    Demo(demo::DemoArgs),
    /// Measure real node processes on loopback and print a table.
    Bench(bench::BenchArgs),
    /// Measure leader failover (crash) and handover (resign) times and print a table.
    BenchElection(bench_election::BenchElectionArgs),
    /// Open many client connections to one node and print its memory before, during
    /// and after.
    BenchClients(bench_clients::BenchClientsArgs),
}

/// `--listen`/`--seed` values.
pub(crate) fn parse_addr(s: &str) -> Result<SocketAddr, String> {
    s.parse()
        .map_err(|_| format!("{s:?} is not an address like 127.0.0.1:7101"))
}

/// `--dir` values.
pub(crate) use quorate_cli::parse_dir;

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("QUORATE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let result = match cli.cmd {
        Cmd::Elect(a) => return exit_with(runtime().and_then(|rt| rt.block_on(elect::elect(a)))),
        Cmd::Lock(a) => return exit_with(runtime().and_then(|rt| rt.block_on(elect::lock(a)))),
        Cmd::Init(a) => init::run(a),
        Cmd::Cert(c) => cert::run(c),
        Cmd::Node(a) => runtime().and_then(|rt| rt.block_on(run::run(a))),
        Cmd::Status(a) => runtime().and_then(|rt| rt.block_on(status::status(a))),
        Cmd::Leader(a) => runtime().and_then(|rt| rt.block_on(status::leader(a))),
        Cmd::Revoke(a) => runtime().and_then(|rt| rt.block_on(status::revoke(a))),
        Cmd::Groups(a) => runtime().and_then(|rt| rt.block_on(status::groups(a))),
        Cmd::Members(a) => runtime().and_then(|rt| rt.block_on(status::members(a))),
        Cmd::Watch(a) => runtime().and_then(|rt| rt.block_on(watch::run(a))),
        Cmd::Demo(a) => runtime().and_then(|rt| rt.block_on(demo::run(a))),
        Cmd::Bench(a) => bench::run(a),
        Cmd::BenchElection(a) => runtime().and_then(|rt| rt.block_on(bench_election::run(a))),
        Cmd::BenchClients(a) => runtime().and_then(|rt| rt.block_on(bench_clients::run(a))),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The exit code a command returned (`elect`, `lock`), or its error.
fn exit_with(result: anyhow::Result<u8>) -> ExitCode {
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}
