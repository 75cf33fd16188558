//! `quorate elect GROUP` and `quorate lock NAME` (as `etcdctl elect`/`etcdctl lock`
//! and `consul lock` with a command): lead the group (hold the lock) and run a command
//! only while leading, either as node K of the cluster directory (`--id K`, a member
//! for as long as the command runs) or through a node that runs already (`--node`,
//! with the directory's client certificate: that node campaigns on the command's
//! behalf, its id is the leader everyone sees, and it resigns when the command ends or
//! this process goes away). Through a node, the lease end acted on is counted from
//! when this process asked, so it never lies after the node's own.
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
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Args;
use quorate::groups::check_name;
use quorate::{
    Campaign, DelegatedCampaign, DelegatedLeadership, Identity, Leadership, LockGuard, Node,
    NodeId, Term,
};
use serde_json::{json, Map, Value};
use tokio::signal::unix::{signal, Signal, SignalKind};

use crate::child::{self, Running};
use crate::cluster::{ClusterFile, Paths};
use crate::printer::{self, Printer};
use crate::run::{node_config, NodeSettings};
use crate::status::first_answer;
use crate::view;
use crate::watch::{node_targets, NodeRef};

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
    /// The cluster directory written by `quorate init`.
    #[arg(long, value_parser = crate::parse_dir)]
    dir: PathBuf,
    /// Run as this node of the cluster (its certificate is in DIR), a member for as
    /// long as the command runs.
    #[arg(long, required_unless_present = "node", conflicts_with = "node")]
    id: Option<u64>,
    /// Campaign through this running node instead (its id in cluster.toml, or an
    /// address HOST:PORT), with DIR's client certificate: the node leads on this
    /// command's behalf and resigns when it ends.
    #[arg(
        long,
        value_name = "NODE",
        conflicts_with_all = ["listen", "advertise", "seeds", "meta", "preset", "data_dir"]
    )]
    node: Option<NodeRef>,
    #[command(flatten)]
    settings: NodeSettings,
    /// With --node: seconds to wait for the node to accept the campaign.
    #[arg(long, default_value_t = 5)]
    timeout: u64,
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

/// A held leadership or lock: this process's own, or a running node's on its behalf.
enum Hold {
    Lead(Campaign, Leadership),
    Lock(LockGuard),
    Delegated(DelegatedCampaign, DelegatedLeadership),
}

impl Hold {
    fn term(&self) -> Term {
        match self {
            Hold::Lead(_, l) => l.term(),
            Hold::Lock(g) => g.fencing_token(),
            Hold::Delegated(_, l) => l.term(),
        }
    }

    fn deadline(&self) -> Instant {
        match self {
            Hold::Lead(_, l) => l.deadline(),
            Hold::Lock(g) => g.deadline(),
            Hold::Delegated(_, l) => l.deadline(),
        }
    }

    async fn lost(&self) {
        match self {
            Hold::Lead(_, l) => l.lost().await,
            Hold::Lock(g) => g.lost().await,
            Hold::Delegated(_, l) => l.lost().await,
        }
    }

    /// Resigns (releases), confirmed by a quorum of voters; else why not.
    async fn release(self) -> Result<(), String> {
        match self {
            Hold::Lead(campaign, lead) => {
                drop(lead);
                campaign.resign().await.map_err(|e| e.to_string())
            }
            Hold::Lock(g) => g.release().await.map_err(|e| e.to_string()),
            Hold::Delegated(campaign, lead) => {
                drop(lead);
                let node = campaign.node();
                match campaign.resign().await {
                    true => Ok(()),
                    false => Err(format!("node {node} could not confirm the release")),
                }
            }
        }
    }

    /// The command's environment.
    fn env(&self, what: &What, until_ms: u64) -> Vec<(&'static str, String)> {
        let until = until_ms.to_string();
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

/// Leads as `a` says: as a node of its own (`--id`), or through a running node
/// (`--node`).
async fn run(what: What, a: RunOpts) -> Result<u8> {
    let file = ClusterFile::load(&a.dir)?;
    if file.voters.is_empty() {
        bail!("elections need voters: cluster.toml names none (see `quorate init --voters`)");
    }
    let stops = Stops::new()?;
    match (&a.node, a.id) {
        (Some(node), _) => delegated(what, &a, &file, node, stops).await,
        (None, Some(id)) => own(what, &a, &file, id, stops).await,
        (None, None) => bail!("--id or --node is needed"),
    }
}

/// When the command is stopped: `warn` before the lease's end without a renewal, and
/// killed `margin` before it at the latest.
struct Guard {
    warn: Duration,
    margin: Duration,
}

/// Runs node K, waits to hold `what`, runs the command while holding it, then
/// releases and leaves.
async fn own(what: What, a: &RunOpts, file: &ClusterFile, id: u64, mut stops: Stops) -> Result<u8> {
    let nc = node_config(&a.dir, id, &a.settings, file)?;
    let t = &nc.config.election.timing;
    let guard = Guard {
        warn: t.renew_interval,
        margin: t.margin,
    };
    let mut out = Report::new(nc.id, a.json)?;
    let node = Node::start(nc)
        .await
        .with_context(|| format!("cannot start node {id}"))?;
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
    let (ending, released) = lead(hold, &what, a, &guard, &mut stops, &mut out).await;
    out.line("leaving", Map::new());
    let left = node.leave().await.context("graceful leave failed");
    out.line("stopped", Map::new());
    out.finish();
    conclude(&what, ending, released, left)
}

/// Asks a running node to campaign on this command's behalf, waits until it leads,
/// runs the command while it does, then has it resign.
async fn delegated(
    what: What,
    a: &RunOpts,
    file: &ClusterFile,
    node: &NodeRef,
    mut stops: Stops,
) -> Result<u8> {
    let paths = Paths(a.dir.clone());
    let identity = Identity::load(&paths.client_cert(), &paths.client_key(), &paths.ca_cert())?;
    let (group, once) = what.campaign();
    let cluster = &file.cluster_name;
    let targets = node_targets(file, Some(node))?;
    let (_, mut campaign) = first_answer(targets, a.timeout, |addr| {
        quorate::campaign_through(&identity, addr, cluster, &group, once)
    })
    .await
    .with_context(|| format!("node {node} did not take the campaign"))?;
    let t = campaign.timing();
    let guard = Guard {
        warn: t.renew_interval,
        margin: t.margin,
    };
    let mut out = Report::new(campaign.node(), a.json)?;
    out.line("campaigning", Map::new());
    let held = tokio::select! {
        held = campaign.leadership() => held,
        code = stops.recv() => {
            let confirmed = campaign.resign().await;
            let mut f = Map::new();
            f.insert("confirmed".into(), json!(confirmed));
            out.line("resigned", f);
            out.finish();
            return Ok(code);
        }
    };
    let leadership = match held {
        Ok(l) => l,
        Err(e) => {
            out.finish();
            return Err(e).context("the campaign ended before it led");
        }
    };
    let hold = Hold::Delegated(campaign, leadership);
    let (ending, released) = lead(hold, &what, a, &guard, &mut stops, &mut out).await;
    out.line("stopped", Map::new());
    out.finish();
    conclude(&what, ending, released, Ok(()))
}

/// Runs the command while `hold` lasts, then releases it: how the command's run ended,
/// and whether the release was confirmed.
async fn lead(
    hold: Hold,
    what: &What,
    a: &RunOpts,
    guard: &Guard,
    stops: &mut Stops,
    out: &mut Report,
) -> (Result<Ending>, Result<(), String>) {
    // One lease end for the report and the command, so both say the same millisecond.
    let until = view::wall_ms(hold.deadline());
    out.held(what, &hold, until);
    let env = hold.env(what, until);
    let ending = supervise(&hold, &env, a, guard, stops, out).await;
    let released = hold.release().await;
    let mut f = Map::new();
    f.insert("confirmed".into(), json!(released.is_ok()));
    out.line("released", f);
    (ending, released)
}

/// The exit code from how the command's run ended.
fn conclude(
    what: &What,
    ending: Result<Ending>,
    released: Result<(), String>,
    left: Result<()>,
) -> Result<u8> {
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
    /// The election group and whether its campaign ends with its first leadership.
    fn campaign(&self) -> (String, bool) {
        match self {
            What::Group(g) => (g.clone(), false),
            What::Lock(n) => (format!("{}{n}", quorate::LOCK_PREFIX), true),
        }
    }

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
    env: &[(&'static str, String)],
    a: &RunOpts,
    guard: &Guard,
    stops: &mut Stops,
    out: &mut Report,
) -> Result<Ending> {
    let mut cmd = child::spawn(&a.command, env)?;
    let mut f = Map::new();
    f.insert("pid".into(), json!(cmd.pid()));
    out.line("command_started", f);
    let losing = tokio::select! {
        status = cmd.wait() => {
            let status = status?;
            out.exited(status, "exited");
            return Ok(Ending::Exited(status));
        }
        () = at_risk(hold, guard.warn) => true,
        _ = stops.recv() => false,
    };
    let status = stop(&mut cmd, hold, a.grace, guard.margin, out).await?;
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
    fn held(&mut self, what: &What, hold: &Hold, until_ms: u64) {
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
        f.insert("lease_until_ms".into(), json!(until_ms));
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
