//! `quorate elect GROUP` and `quorate lock NAME` (as `etcdctl elect`/`etcdctl lock`
//! and `consul lock` with a command): run as node K of the cluster directory, lead the
//! group (hold the lock), and run a command only while leading.
//!
//! The command gets `QUORATE_GROUP` and `QUORATE_TERM` (a lock: `QUORATE_LOCK` and
//! `QUORATE_FENCING_TOKEN`), the fencing token to pass with every side effect, and
//! `QUORATE_LEASE_UNTIL_MS`, the lease end (Unix ms) when it started; renewals push
//! the lease back without telling the command.
//!
//! It is stopped before anyone else can lead: when the lease is about to run out
//! unrenewed (less than a renewal interval left, or the leadership ended), it gets
//! SIGTERM, then SIGKILL after `--grace` ms, never later than the lease's end
//! (default grace: half the time left). The signals go to its whole process group. A
//! command that exits on its own ends the leadership: quorate resigns (confirmed by
//! the voters), leaves the cluster and exits with the command's status. SIGINT or
//! SIGTERM to quorate stops the command the same way, then resigns and leaves.
//!
//! quorate's own reports go to stderr (stdout is the command's): a line per step, or
//! one JSON object per line with `--json`.

use std::io::Write as _;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Args;
use quorate::groups::check_name;
use quorate::{Campaign, Leadership, LockGuard, Node, NodeId, ResignError, Term};
use serde_json::{json, Map, Value};
use tokio::signal::unix::{signal, Signal, SignalKind};

use crate::child::{self, Running};
use crate::cluster::ClusterFile;
use crate::printer::{self, Printer};
use crate::run::{node_config, NodeOpts};
use crate::view;

/// Arguments of `quorate elect`.
#[derive(Args, Debug)]
pub struct ElectArgs {
    /// The group to lead.
    #[arg(value_parser = parse_group)]
    group: String,
    #[command(flatten)]
    run: RunOpts,
}

/// Arguments of `quorate lock`.
#[derive(Args, Debug)]
pub struct LockArgs {
    /// The lock to hold (the election group `lock/NAME`).
    #[arg(value_parser = parse_lock)]
    name: String,
    #[command(flatten)]
    run: RunOpts,
}

/// What `elect` and `lock` share: the node, the grace, the reports, the command.
#[derive(Args, Debug)]
struct RunOpts {
    #[command(flatten)]
    node: NodeOpts,
    /// Milliseconds the command gets between SIGTERM and SIGKILL, at most the time
    /// left before the lease ends [default: half of that time].
    #[arg(long, value_name = "MS")]
    grace: Option<u64>,
    /// Report each step as one JSON object per line on stderr.
    #[arg(long)]
    json: bool,
    /// The command to run while leading, and its arguments (after `--`).
    #[arg(last = true, required = true, value_name = "CMD")]
    command: Vec<String>,
}

/// `GROUP` values: a valid group name.
fn parse_group(s: &str) -> Result<String, String> {
    check_name(s).map_err(|e| format!("{s:?}: {e}"))?;
    Ok(s.to_owned())
}

/// `NAME` values of `lock`: not empty, and a valid group name once prefixed.
fn parse_lock(s: &str) -> Result<String, String> {
    let prefixed = format!("{}{s}", quorate::LOCK_PREFIX);
    if s.is_empty() || check_name(&prefixed).is_err() {
        return Err(format!(
            "{s:?} is not a lock name (1 to {} bytes, no control characters)",
            quorate::MAX_GROUP_NAME - quorate::LOCK_PREFIX.len()
        ));
    }
    Ok(s.to_owned())
}

/// `quorate elect`: the command's exit code, or an error.
pub async fn elect(a: ElectArgs) -> Result<u8> {
    run(What::Group(a.group), a.run).await
}

/// `quorate lock`: the command's exit code, or an error.
pub async fn lock(a: LockArgs) -> Result<u8> {
    run(What::Lock(a.name), a.run).await
}

/// What is held: a group's leadership or a lock.
enum What {
    Group(String),
    Lock(String),
}

/// A held leadership or lock.
enum Hold {
    Lead(Campaign, Leadership),
    Lock(LockGuard),
}

impl Hold {
    fn term(&self) -> Term {
        match self {
            Hold::Lead(_, l) => l.term(),
            Hold::Lock(g) => g.fencing_token(),
        }
    }

    fn deadline(&self) -> Instant {
        match self {
            Hold::Lead(_, l) => l.deadline(),
            Hold::Lock(g) => g.deadline(),
        }
    }

    async fn lost(&self) {
        match self {
            Hold::Lead(_, l) => l.lost().await,
            Hold::Lock(g) => g.lost().await,
        }
    }

    /// Resigns (releases), confirmed by a quorum of voters.
    async fn release(self) -> Result<(), ResignError> {
        match self {
            Hold::Lead(campaign, lead) => {
                drop(lead);
                campaign.resign().await
            }
            Hold::Lock(g) => g.release().await,
        }
    }

    /// The command's environment.
    fn env(&self, what: &What) -> Vec<(&'static str, String)> {
        let until = view::wall_ms(self.deadline()).to_string();
        match what {
            What::Group(g) => vec![
                ("QUORATE_GROUP", g.clone()),
                ("QUORATE_TERM", self.term().to_string()),
                ("QUORATE_LEASE_UNTIL_MS", until),
            ],
            What::Lock(n) => vec![
                ("QUORATE_LOCK", n.clone()),
                ("QUORATE_FENCING_TOKEN", self.term().to_string()),
                ("QUORATE_LEASE_UNTIL_MS", until),
            ],
        }
    }
}

/// How the command's run ended.
enum Ending {
    /// It exited on its own.
    Exited(std::process::ExitStatus),
    /// The leadership was about to be lost: the command was stopped.
    Losing(std::process::ExitStatus),
    /// quorate was asked to stop (SIGINT/SIGTERM): the command was stopped.
    Interrupted(std::process::ExitStatus),
}

/// SIGINT and SIGTERM to quorate.
struct Stops {
    int: Signal,
    term: Signal,
}

impl Stops {
    fn new() -> Result<Self> {
        Ok(Stops {
            int: signal(SignalKind::interrupt())?,
            term: signal(SignalKind::terminate())?,
        })
    }

    /// The next one, as the exit code a shell gives for it.
    async fn recv(&mut self) -> u8 {
        tokio::select! {
            _ = self.int.recv() => 130,
            _ = self.term.recv() => 143,
        }
    }
}

/// Runs node K, waits to hold `what`, runs the command while holding it, then
/// releases and leaves.
async fn run(what: What, a: RunOpts) -> Result<u8> {
    let file = ClusterFile::load(&a.node.dir)?;
    if file.voters.is_empty() {
        bail!("elections need voters: cluster.toml names none (see `quorate init --voters`)");
    }
    let nc = node_config(&a.node, &file)?;
    let timing = nc.config.election.timing.clone();
    let mut stops = Stops::new()?;
    let mut out = Report::new(nc.id, a.json)?;
    let node = Node::start(nc)
        .await
        .with_context(|| format!("cannot start node {}", a.node.id))?;
    let mut f = Map::new();
    f.insert("addr".into(), json!(node.local_addr().to_string()));
    out.line("node_started", f);
    let held = tokio::select! {
        held = acquire(&node, &what) => held,
        code = stops.recv() => {
            out.line("leaving", Map::new());
            let left = node.leave().await.context("graceful leave failed");
            out.finish();
            return left.map(|()| code);
        }
    };
    let hold = match held {
        Ok(hold) => hold,
        Err(e) => {
            let _ = node.leave().await;
            out.finish();
            return Err(e);
        }
    };
    out.held(&what, &hold);
    let ending = supervise(&hold, &what, &a, &timing, &mut stops, &mut out).await;
    let released = hold.release().await;
    let mut f = Map::new();
    f.insert("confirmed".into(), json!(released.is_ok()));
    out.line("released", f);
    out.line("leaving", Map::new());
    let left = node.leave().await.context("graceful leave failed");
    out.line("stopped", Map::new());
    out.finish();
    let ending = ending?;
    if let Err(e) = released {
        eprintln!("warning: {e} (the next holder may wait for the lease to run out)");
    }
    left?;
    match ending {
        Ending::Exited(status) | Ending::Interrupted(status) => Ok(child::exit_code(status)),
        Ending::Losing(status) => bail!(
            "{} was about to be lost (no quorum of voters renewed it): the command was \
             stopped (exit status {})",
            what.describe(),
            child::exit_code(status)
        ),
    }
}

impl What {
    fn describe(&self) -> String {
        match self {
            What::Group(g) => format!("the leadership of group {g:?}"),
            What::Lock(n) => format!("lock {n:?}"),
        }
    }
}

/// Waits until this node leads the group or holds the lock.
async fn acquire(node: &Node, what: &What) -> Result<Hold> {
    match what {
        What::Group(g) => {
            let mut campaign = node
                .campaign(g)
                .await
                .with_context(|| format!("cannot run for group {g:?}"))?;
            let lead = campaign.leadership().await?;
            Ok(Hold::Lead(campaign, lead))
        }
        What::Lock(n) => {
            let lock = node.lock(n);
            loop {
                match lock.acquire(Duration::from_secs(24 * 3600)).await {
                    Ok(guard) => return Ok(Hold::Lock(guard)),
                    Err(quorate::LockError::Timeout { .. }) => continue,
                    Err(e) => return Err(e).with_context(|| format!("cannot take lock {n:?}")),
                }
            }
        }
    }
}

/// Runs the command while `hold` lasts; stops it when the lease is about to run out
/// unrenewed or quorate is asked to stop.
async fn supervise(
    hold: &Hold,
    what: &What,
    a: &RunOpts,
    timing: &quorate::election::Timing,
    stops: &mut Stops,
    out: &mut Report,
) -> Result<Ending> {
    let mut cmd = child::spawn(&a.command, &hold.env(what))?;
    let mut f = Map::new();
    f.insert("pid".into(), json!(cmd.pid()));
    out.line("command_started", f);
    let losing = tokio::select! {
        status = cmd.wait() => {
            let status = status?;
            out.exited(status, "exited");
            return Ok(Ending::Exited(status));
        }
        () = at_risk(hold, timing.renew_interval) => true,
        _ = stops.recv() => false,
    };
    let status = stop(&mut cmd, hold, a.grace, timing.margin, out).await?;
    let ending = match losing {
        true => Ending::Losing(status),
        false => Ending::Interrupted(status),
    };
    out.exited(status, ending.reason());
    Ok(ending)
}

impl Ending {
    fn reason(&self) -> &'static str {
        match self {
            Ending::Exited(_) => "exited",
            Ending::Losing(_) => "losing",
            Ending::Interrupted(_) => "interrupted",
        }
    }
}

/// Stops the command before the lease can end: SIGTERM, then SIGKILL when the grace
/// is over or the lease's end (less the election margin) comes.
async fn stop(
    cmd: &mut Running,
    hold: &Hold,
    grace: Option<u64>,
    margin: Duration,
    out: &mut Report,
) -> Result<std::process::ExitStatus> {
    let kill_by = || {
        hold.deadline()
            .checked_sub(margin)
            .unwrap_or_else(Instant::now)
    };
    let left = kill_by().saturating_duration_since(Instant::now());
    let grace = grace.map_or(left / 2, Duration::from_millis).min(left);
    let until = view::wall_ms(hold.deadline());
    cmd.stop(grace, kill_by, |signal| {
        let mut f = Map::new();
        f.insert("signal".into(), json!(signal));
        f.insert("grace_ms".into(), json!(grace.as_millis() as u64));
        f.insert("lease_until_ms".into(), json!(until));
        out.line("command_signalled", f);
    })
    .await
}

/// Completes when the leadership ended, or when less than `warn` is left before its
/// deadline without a renewal having pushed it back.
async fn at_risk(hold: &Hold, warn: Duration) {
    loop {
        let deadline = hold.deadline();
        let from = deadline.checked_sub(warn).unwrap_or(deadline);
        tokio::select! {
            () = hold.lost() => return,
            () = tokio::time::sleep_until(from.into()) => {
                if hold.deadline() <= deadline {
                    return;
                }
            }
        }
    }
}

/// quorate's own reports, on stderr through a bounded queue (a stalled stderr costs
/// lines, never the lease).
struct Report {
    id: NodeId,
    json: bool,
    printer: Printer,
}

impl Report {
    fn new(id: NodeId, json: bool) -> Result<Self> {
        let printer = Printer::to(std::io::stderr(), printer::DEFAULT_QUEUE)
            .context("cannot set up stderr")?;
        Ok(Report { id, json, printer })
    }

    fn line(&mut self, kind: &str, fields: Map<String, Value>) {
        let line = match self.json {
            true => view::json_line(self.id, kind, fields),
            false => {
                let rest: Vec<String> = fields.iter().map(|(k, v)| format!("{k}={v}")).collect();
                format!(
                    "[node {}] {} {}",
                    self.id,
                    kind.replace('_', " "),
                    rest.join(" ")
                )
            }
        };
        self.printer.line(line.trim_end().to_owned());
    }

    /// `leadership_acquired` (a group) or `lock_acquired`, with the fencing token and
    /// the lease's end.
    fn held(&mut self, what: &What, hold: &Hold) {
        let mut f = Map::new();
        let kind = match what {
            What::Group(g) => {
                f.insert("group".into(), json!(g));
                f.insert("term".into(), json!(hold.term()));
                "leadership_acquired"
            }
            What::Lock(n) => {
                f.insert("lock".into(), json!(n));
                f.insert("fencing_token".into(), json!(hold.term()));
                "lock_acquired"
            }
        };
        f.insert(
            "lease_until_ms".into(),
            json!(view::wall_ms(hold.deadline())),
        );
        self.line(kind, f);
    }

    /// `command_exited`: its status, and why it ended (`exited`, `losing`,
    /// `interrupted`).
    fn exited(&mut self, status: std::process::ExitStatus, reason: &str) {
        let mut f = child::status_fields(status);
        f.insert("reason".into(), json!(reason));
        self.line("command_exited", f);
    }

    fn finish(self) {
        let outcome = self.printer.finish(printer::DRAIN_AT_EXIT);
        if outcome.dropped > 0 {
            let _ = writeln!(
                std::io::stderr(),
                "node {}: {} report lines dropped",
                self.id,
                outcome.dropped
            );
        }
    }
}
