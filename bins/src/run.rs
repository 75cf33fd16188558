//! `quorate node`: one node of a cluster made by `quorate init`.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Args;
use quorate::election::lease::UnsafeVariant;
use quorate::groups::check_name;
use quorate::{Event, EventStream, Identity, LeaderChange, MemberEvent, Node, NodeConfig, NodeId};
use serde_json::{json, Map};
use tokio::signal::unix::{signal, SignalKind};

use crate::cluster::{ClusterFile, HostPort, Paths};
use crate::printer::{self, Printer};
use crate::view::{self, Reporter};

/// What makes a process node K of a cluster directory (`quorate node`).
#[derive(Args, Debug)]
pub struct NodeOpts {
    /// The cluster directory written by `quorate init`.
    #[arg(long, value_parser = crate::parse_dir)]
    pub dir: PathBuf,
    /// This node's id (its certificate is DIR/node-ID.pem).
    #[arg(long)]
    pub id: u64,
    #[command(flatten)]
    pub settings: NodeSettings,
}

/// How a node of a cluster directory runs: shared by `quorate node`, `quorate elect`
/// and `quorate lock`.
#[derive(Args, Debug)]
pub struct NodeSettings {
    /// Listen address, an IP or a host name with the port (default: the node's address
    /// in cluster.toml).
    #[arg(long)]
    listen: Option<HostPort>,
    /// The address peers reach this node at (default: the listen address; when that is
    /// a wildcard such as 0.0.0.0, the node's address in cluster.toml). Host names are
    /// resolved at start.
    #[arg(long)]
    advertise: Option<HostPort>,
    /// Join through this address (IP or host name, with the port) instead of
    /// cluster.toml's seeds (repeatable).
    #[arg(long = "seed")]
    seeds: Vec<HostPort>,
    /// Metadata to publish (text, at most the configured limit).
    #[arg(long, default_value = "")]
    meta: String,
    /// Override cluster.toml's timing preset: lan, wan, local or edge.
    #[arg(long)]
    preset: Option<String>,
    /// Where the node keeps its durable state (a voter's granted terms), created if
    /// missing [default: DIR/data/node-ID].
    #[arg(long, value_parser = crate::parse_dir)]
    data_dir: Option<PathBuf>,
}

/// Arguments of `quorate node`.
#[derive(Args, Debug)]
pub struct NodeArgs {
    #[command(flatten)]
    node: NodeOpts,
    /// Serve Prometheus metrics on http://ADDR/metrics (plain HTTP, no authentication:
    /// bind it where only the monitoring network reaches).
    #[arg(long, value_parser = crate::parse_addr)]
    metrics: Option<SocketAddr>,
    /// One JSON object per line on stdout instead of the live view.
    #[arg(long)]
    json: bool,
    /// Print the live view as lines even on a terminal (there it is otherwise one
    /// screen, redrawn in place).
    #[arg(long)]
    lines: bool,
    /// With --json, also print `leadership_renewed` at every lease renewal.
    #[arg(long, requires = "json")]
    renewals: bool,
    /// Also print every counter and gauge of this node every N seconds (0 = never).
    #[arg(long, default_value_t = 0)]
    stats_every: u64,
    /// Run for the leadership of this group (repeatable); needs voters in cluster.toml.
    #[arg(long = "campaign", value_name = "GROUP")]
    campaigns: Vec<String>,
    /// Lines waiting for stdout; when a reader falls this far behind, further lines
    /// are dropped (and counted) rather than slowing the node.
    #[arg(long, default_value_t = printer::DEFAULT_QUEUE, value_parser = parse_queue)]
    output_queue: usize,
    /// For tests only, never in production (hidden from --help): run the elections of
    /// this node under a deliberately unsafe variant, by the simulator's `--break`
    /// names (`highest-first`, `gossip-terms`, ...), so that a real-process test can
    /// show that its checks catch what the safe design prevents.
    #[arg(long, hide = true, value_name = "VARIANT", value_parser = parse_unsafe_variant)]
    unsafe_variant: Option<UnsafeVariant>,
    /// For tests only, never in production (hidden from --help): gossip that this node
    /// leads GROUP at TERM though no voter granted it (a lying member), e.g.
    /// `g:18446744073709551615`; repeatable.
    #[arg(long, hide = true, value_name = "GROUP:TERM", value_parser = parse_claim)]
    unsafe_claim_leadership: Vec<(String, u64)>,
}

/// `--unsafe-variant` values: the simulator's names of the unsafe variants.
fn parse_unsafe_variant(s: &str) -> Result<UnsafeVariant, String> {
    UnsafeVariant::from_name(s).ok_or_else(|| {
        let names: Vec<&str> = UnsafeVariant::ALL.iter().map(|v| v.name()).collect();
        format!("{s:?} is not one of {}", names.join(", "))
    })
}

/// `--unsafe-claim-leadership` values: `GROUP:TERM`.
fn parse_claim(s: &str) -> Result<(String, u64), String> {
    let bad = || format!("{s:?} is not GROUP:TERM (like g:18446744073709551615)");
    let (group, term) = s.rsplit_once(':').ok_or_else(bad)?;
    let term = term.parse().map_err(|_| bad())?;
    check_name(group).map_err(|e| format!("{group:?}: {e}"))?;
    Ok((group.to_owned(), term))
}

/// `--output-queue` values: at least one line.
fn parse_queue(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!("{s:?} is not a number of lines (at least 1)")),
    }
}

/// The data directory of node `id` when `--data-dir` is not given.
pub fn default_data_dir(dir: &Path, id: NodeId) -> PathBuf {
    dir.join("data").join(format!("node-{id}"))
}

/// Refuses bad `--campaign` values before anything starts.
fn check_campaigns(campaigns: &[String], file: &ClusterFile) -> Result<()> {
    if campaigns.is_empty() {
        return Ok(());
    }
    if file.voters.is_empty() {
        bail!("--campaign needs voters: cluster.toml names none (see `quorate init --voters`)");
    }
    let mut unique = BTreeSet::new();
    for group in campaigns {
        check_name(group).with_context(|| format!("--campaign {group:?}"))?;
        if !unique.insert(group) {
            bail!("--campaign {group:?} is given twice");
        }
    }
    Ok(())
}

/// The seeds: IP addresses as written, and host names for the node to resolve (at
/// start, and again while it needs them: `NodeConfig::seed_names`). A name that does
/// not resolve now is named in a warning; it is tried again.
fn split_seeds(seeds: &[HostPort]) -> (Vec<SocketAddr>, Vec<String>) {
    let mut addrs = Vec::new();
    let mut names = Vec::new();
    for s in seeds {
        match s.to_string().parse::<SocketAddr>() {
            Ok(a) => addrs.push(a),
            Err(_) => {
                if let Err(e) = s.resolve() {
                    eprintln!("warning: seed {s}: {e:#} (tried again until the node joins)");
                }
                names.push(s.to_string());
            }
        }
    }
    (addrs, names)
}

/// The library's configuration of the node `a` describes.
pub fn node_config(
    dir: &Path,
    id: u64,
    a: &NodeSettings,
    file: &ClusterFile,
) -> Result<NodeConfig> {
    let entry = file.node(id)?;
    let id = NodeId(id);
    let paths = Paths(dir.to_owned());
    let identity = Identity::load(&paths.node_cert(id), &paths.node_key(id), &paths.ca_cert())?;
    let cfg = file.config_with(a.preset.as_deref().unwrap_or(&file.preset))?;
    let listen = a.listen.as_ref().unwrap_or(&entry.addr).resolve()?;
    let mut nc = NodeConfig::new(id, listen, identity);
    nc.advertise = match &a.advertise {
        Some(h) => Some(h.resolve()?),
        None if listen.ip().is_unspecified() => Some(entry.addr.resolve()?),
        None => None,
    };
    let seeds = match a.seeds.is_empty() {
        true => &file.seeds,
        false => &a.seeds,
    };
    (nc.seeds, nc.seed_names) = split_seeds(seeds);
    nc.config = cfg;
    nc.metadata = a.meta.clone().into_bytes();
    nc.data_dir = Some(
        a.data_dir
            .clone()
            .unwrap_or_else(|| default_data_dir(dir, id)),
    );
    Ok(nc)
}

/// Runs the node until SIGINT or SIGTERM, then leaves gracefully: a leader steps down
/// and releases its voters first, so the next candidate takes over at once.
pub async fn run(a: NodeArgs) -> Result<()> {
    let file = ClusterFile::load(&a.node.dir)?;
    check_campaigns(&a.campaigns, &file)?;
    let mut nc = node_config(&a.node.dir, a.node.id, &a.node.settings, &file)?;
    nc.metrics = a.metrics;
    nc.config.election.unsafe_variant = a.unsafe_variant;
    let id = nc.id;
    let voters = nc.config.election.voters.clone();
    let printer = Printer::stdout(a.output_queue).context("cannot set up stdout")?;
    let node = Node::start(nc)
        .await
        .with_context(|| format!("cannot start node {id}"))?;
    let mut out = Output {
        id,
        json: a.json,
        reporter: Reporter::new(a.renewals),
        leaders: a.campaigns.iter().map(|g| (g.clone(), None)).collect(),
        campaigning: !a.campaigns.is_empty(),
        campaigns: a.campaigns.clone(),
        voters,
        printer,
        screen: (!a.json && !a.lines && std::io::stdout().is_terminal())
            .then(crate::screen::Screen::new),
    };
    out.started(&node);
    out.view(&node);
    if let Some(v) = a.unsafe_variant {
        eprintln!(
            "node {id}: elections run under the unsafe variant {:?} (tests only)",
            v.name()
        );
    }
    for (group, term) in &a.unsafe_claim_leadership {
        eprintln!("node {id}: claims to lead {group:?} at term {term} unbacked (tests only)");
        node.claim_leadership_unsafe(group, *term)
            .await
            .context("cannot publish the claimed leadership")?;
    }
    let mut events = node.events();
    let mut campaigns = Vec::new();
    for group in &a.campaigns {
        match node.campaign(group).await {
            Ok(campaign) => campaigns.push(campaign),
            Err(e) => {
                // Leave rather than vanish: peers must not see a failure.
                let _ = node.leave().await;
                out.finish();
                return Err(e).with_context(|| format!("cannot run for group {group:?}"));
            }
        }
    }
    if let Err(e) = serve(&node, &mut events, &mut out, a.stats_every, &a.node.dir).await {
        // Another process had this id first: stop without a word (a departure would
        // be announced under the other one's id), resigning what this one may hold.
        resign_all(campaigns, &mut events, &mut out).await;
        out.line("stopped", Map::new());
        out.finish();
        node.shutdown().await;
        return Err(e);
    }
    // Step down first: `leave` then resigns whatever is left and lingers while the
    // releases and the departure go out.
    resign_all(campaigns, &mut events, &mut out).await;
    out.line("leaving", Map::new());
    let left = node.leave().await.context("graceful leave failed");
    while let Some(ev) = events.try_recv() {
        out.event(&ev);
    }
    let mut f = Map::new();
    f.insert("dropped_lines".into(), json!(out.printer.dropped()));
    out.line("stopped", f);
    out.finish();
    left
}

/// Resigns every campaign, reporting events as they come meanwhile: a resignation
/// returns once the voters confirmed the release, by which time the next leader may
/// lead, so the step-down (`leadership_lost`) is printed when it happens, not after.
async fn resign_all(campaigns: Vec<quorate::Campaign>, events: &mut EventStream, out: &mut Output) {
    for campaign in campaigns {
        // Stopping anyway: an unconfirmed release only delays the next leader.
        let resign = campaign.resign();
        tokio::pin!(resign);
        let mut open = true;
        loop {
            tokio::select! {
                _ = &mut resign => break,
                ev = events.recv(), if open => match ev {
                    Some(ev) => {
                        out.event(&ev);
                    }
                    None => open = false,
                },
            }
        }
    }
    while let Some(ev) = events.try_recv() {
        out.event(&ev);
    }
}

/// The address of the earlier process when `ev` says this one is a second process
/// of its node id that started later.
fn later_duplicate(ev: &Event) -> Option<std::net::SocketAddr> {
    match ev {
        Event::Member(MemberEvent::Duplicate {
            addr,
            newcomer: true,
        }) => Some(*addr),
        _ => None,
    }
}

/// Reports events until SIGINT or SIGTERM (or the node stops by itself); an error
/// when another process runs with this node's id and was there first. SIGHUP reloads
/// the node's certificate and key from `dir` (a renewal) without leaving.
async fn serve(
    node: &Node,
    events: &mut EventStream,
    out: &mut Output,
    stats_every: u64,
    dir: &std::path::Path,
) -> Result<()> {
    let mut term = signal(SignalKind::terminate())?;
    let mut hup = signal(SignalKind::hangup())?;
    apply_revocation(node, out, dir).await;
    let mut stats_tick = tokio::time::interval(Duration::from_secs(stats_every.max(1)));
    stats_tick.tick().await;
    let mut redraw = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            ev = events.recv() => match ev {
                Some(ev) => {
                    // Report what arrived together, then sum up the view once.
                    let mut reported = out.event(&ev);
                    let mut later = later_duplicate(&ev);
                    while let Some(ev) = events.try_recv() {
                        reported |= out.event(&ev);
                        later = later.or(later_duplicate(&ev));
                    }
                    if reported {
                        out.view(node);
                    }
                    if let Some(addr) = later {
                        bail!(
                            "node id {} already runs at {addr}: this process started later \
                             and stops",
                            out.id
                        );
                    }
                }
                None => return Ok(()),
            },
            _ = stats_tick.tick(), if stats_every > 0 => out.stats(node).await,
            _ = redraw.tick(), if out.screen.is_some() => out.view(node),
            _ = tokio::signal::ctrl_c() => return Ok(()),
            _ = term.recv() => return Ok(()),
            _ = hup.recv() => {
                reload(node, out, dir).await;
                apply_revocation(node, out, dir).await;
            }
        }
    }
}

/// Puts the revocation list in `dir` (revoked.crl) in force if there is one, and says
/// how it went (`revocation_applied` with its number, or `revocation_refused`).
async fn apply_revocation(node: &Node, out: &mut Output, dir: &std::path::Path) {
    let Ok(list) = std::fs::read(Paths(dir.to_owned()).revocation()) else {
        return;
    };
    let mut f = Map::new();
    match node.apply_revocation(&list).await {
        Ok(a) => {
            f.insert("number".into(), json!(a.number));
            f.insert("fresh".into(), json!(a.fresh));
            out.line("revocation_applied", f);
        }
        Err(e) => {
            f.insert("reason".into(), json!(e.to_string()));
            out.line("revocation_refused", f);
        }
    }
}

/// Reloads node `node`'s identity from the files in `dir`, and says how it went
/// (`identity_reloaded`, or `identity_reload_failed` with the reason: the node keeps
/// its previous identity then).
async fn reload(node: &Node, out: &mut Output, dir: &std::path::Path) {
    let paths = Paths(dir.to_owned());
    let id = node.id();
    let result = match Identity::load(&paths.node_cert(id), &paths.node_key(id), &paths.ca_cert()) {
        Ok(identity) => node
            .reload_identity(identity)
            .await
            .map_err(anyhow::Error::from),
        Err(e) => Err(anyhow::Error::from(e)),
    };
    let mut f = Map::new();
    match result {
        Ok(()) => out.line("identity_reloaded", f),
        Err(e) => {
            f.insert("reason".into(), json!(format!("{e:#}")));
            out.line("identity_reload_failed", f);
        }
    }
}

struct Output {
    id: NodeId,
    json: bool,
    reporter: Reporter,
    /// Groups shown in the live view (those this node runs for or saw a leader of),
    /// with their latest leader change (`None`: none seen yet).
    leaders: BTreeMap<String, Option<LeaderChange>>,
    /// This node runs for some group: the view says whether it reaches a quorum.
    campaigning: bool,
    /// The voters of the cluster's elections.
    voters: Vec<NodeId>,
    /// Where every line goes (stdout, through a bounded queue).
    printer: Printer,
    /// The groups this node runs for.
    campaigns: Vec<String>,
    /// On a terminal: the screen redrawn in place of the lines.
    screen: Option<crate::screen::Screen>,
}

impl Output {
    fn line(&mut self, kind: &str, fields: Map<String, serde_json::Value>) {
        let line = if self.json {
            view::json_line(self.id, kind, fields)
        } else {
            format!("[node {}] {}", self.id, kind.replace('_', " "))
        };
        match &mut self.screen {
            // Stopping: the last screen stays, the closing lines follow it.
            Some(_) if kind == "leaving" => {
                self.screen = None;
                self.printer.line(format!("\n{line}"));
            }
            Some(s) => s.event(format!("{} {line}", view::clock(view::now_ms()))),
            None => self.printer.line(line),
        }
    }

    fn started(&mut self, node: &Node) {
        let mut f = Map::new();
        f.insert("addr".into(), json!(node.local_addr().to_string()));
        let line = if self.json {
            view::json_line(self.id, "node_started", f)
        } else {
            format!(
                "[node {}] listening on {}; Ctrl-C leaves the cluster",
                self.id,
                node.local_addr()
            )
        };
        self.printer.line(line);
    }

    /// Lets the printer write what is queued (for a bounded time) and reports on
    /// stderr what stdout did not take.
    fn finish(self) {
        let outcome = self.printer.finish(printer::DRAIN_AT_EXIT);
        let mut err = std::io::stderr();
        if outcome.dropped > 0 {
            let _ = writeln!(
                err,
                "node {}: {} output lines dropped (stdout was not read fast enough)",
                self.id, outcome.dropped
            );
        }
        if let Some(e) = outcome.failed {
            let _ = writeln!(err, "node {}: printing stopped: {e}", self.id);
        }
    }

    /// Reports one event; false when it is not one reported (a renewal, ...).
    fn event(&mut self, ev: &Event) -> bool {
        if let Event::Leader(c) = ev {
            self.leaders.insert(c.group.clone(), Some(c.clone()));
        }
        let Some((kind, fields)) = self.reporter.describe(ev) else {
            return false;
        };
        let line = if self.json {
            view::json_line(self.id, kind, fields)
        } else {
            let ts = view::clock(view::now_ms());
            format!("{ts} {}", view::human_line(kind, &fields))
        };
        match &mut self.screen {
            Some(s) => s.event(line),
            None => self.printer.line(line),
        }
        true
    }

    /// The live view's summary: members by state, and each group's leader as the
    /// reported changes tell it (or `node`'s gossiped view before any change).
    fn view(&mut self, node: &Node) {
        if self.json {
            return;
        }
        if self.screen.is_some() {
            return self.draw(node);
        }
        let ts = view::clock(view::now_ms());
        let members = node.members();
        let summary = format!("{ts}   {}", view::summary(&members));
        self.printer.line(summary);
        if self.campaigning {
            let states: Vec<_> = members.iter().map(|m| (m.id, m.state)).collect();
            if let Some(q) = view::quorum_line(&self.voters, &states) {
                self.printer.line(format!("{ts}   {q}"));
            }
        }
        if !self.leaders.is_empty() {
            let line = view::leaders(self.leaders.keys(), |g| match &self.leaders[g] {
                Some(c) => c.leader.map(|l| (l, c.term)),
                None => node.leader(g),
            });
            self.printer.line(format!("{ts}   {line}"));
        }
    }

    /// Redraws the screen from `node`'s state now.
    fn draw(&mut self, node: &Node) {
        let members = node.members();
        let leaders: Vec<(&str, Option<(NodeId, u64)>)> = self
            .leaders
            .iter()
            .map(|(g, c)| {
                let l = match c {
                    Some(c) => c.leader.map(|l| (l, c.term)),
                    None => node.leader(g),
                };
                (g.as_str(), l)
            })
            .collect();
        let frame = crate::screen::Frame {
            id: self.id,
            members: &members,
            voters: &self.voters,
            campaigns: self.campaigns.iter().map(String::as_str).collect(),
            leaders,
            traffic: node.transport_stats(),
        };
        let Some(screen) = &mut self.screen else {
            return;
        };
        let text = screen.draw(&frame);
        self.printer.line(text);
    }

    /// Every metric of `node` (`Node::metrics`): one `stats` line, its fields named
    /// as the metrics are. Nothing once the node stopped.
    async fn stats(&mut self, node: &Node) {
        let Ok(metrics) = node.metrics().await else {
            return;
        };
        let line = if self.json {
            view::json_line(self.id, "stats", view::metric_fields(&metrics))
        } else {
            let ts = view::clock(view::now_ms());
            format!("{ts} stats {}", view::metric_text(&metrics))
        };
        match &mut self.screen {
            Some(screen) => screen.event(line),
            None => self.printer.line(line),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{Args, Command};

    #[test]
    fn a_claim_is_a_group_and_a_term() {
        assert_eq!(
            parse_claim("g:18446744073709551615"),
            Ok(("g".to_owned(), u64::MAX))
        );
        assert_eq!(parse_claim("a:b:7"), Ok(("a:b".to_owned(), 7)));
        for bad in ["g", "g:", ":3", "g:-1", "g:18446744073709551616"] {
            assert!(parse_claim(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn unsafe_variants_go_by_the_simulators_names() {
        assert_eq!(
            parse_unsafe_variant("highest-first"),
            Ok(UnsafeVariant::HighestFirst)
        );
        assert!(parse_unsafe_variant("safe").is_err());
    }

    #[test]
    fn the_test_only_flags_are_not_in_the_help() {
        let help = NodeArgs::augment_args(Command::new("node"))
            .render_long_help()
            .to_string();
        assert!(help.contains("--campaign"), "{help}");
        assert!(!help.contains("unsafe"), "{help}");
    }
}
