//! The live view on a terminal: one compact screen, redrawn in place whenever the
//! node's view changes (and every second, for the uptime and traffic), computed from
//! the same state as the events, so it is never one event behind. In a pipe or with
//! `--json`, `quorate node` prints lines instead.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use quorate::{Member, NodeId, State, TransportStats};

use crate::view;

/// Event lines kept at the bottom of the screen.
pub const RECENT: usize = 10;

/// Members listed at most; the rest are counted.
const MAX_LISTED: usize = 40;

/// Moves to the top left and clears the screen.
const CLEAR: &str = "\x1b[H\x1b[2J";

/// What the screen remembers between redraws: when the node started, its latest
/// event lines and the last traffic sample.
#[derive(Debug)]
pub struct Screen {
    started: Instant,
    recent: VecDeque<String>,
    sample: Option<(Instant, u64, u64, u64)>,
    rates: (f64, f64, f64),
}

/// What one redraw shows besides what [`Screen`] keeps.
pub struct Frame<'a> {
    /// This node.
    pub id: NodeId,
    /// Its members, itself included.
    pub members: &'a [Member],
    /// The cluster's voters.
    pub voters: &'a [NodeId],
    /// The groups it runs for.
    pub campaigns: Vec<&'a str>,
    /// Each group shown, with its leader and term when there is one.
    pub leaders: Vec<(&'a str, Option<(NodeId, u64)>)>,
    /// The transport's counters now.
    pub traffic: TransportStats,
}

impl Screen {
    /// A screen for a node that starts now.
    pub fn new() -> Self {
        Screen {
            started: Instant::now(),
            recent: VecDeque::new(),
            sample: None,
            rates: (0.0, 0.0, 0.0),
        }
    }

    /// Keeps an event line for the bottom of the screen (the last [`RECENT`]).
    pub fn event(&mut self, line: String) {
        if self.recent.len() == RECENT {
            self.recent.pop_front();
        }
        self.recent.push_back(line);
    }

    /// The whole screen, with the codes that redraw it in place.
    pub fn draw(&mut self, f: &Frame<'_>) -> String {
        self.measure(&f.traffic);
        let mut o = String::from(CLEAR);
        let up = self.started.elapsed().as_secs();
        let (bps, out_pps, in_pps) = self.rates;
        let _ = writeln!(
            o,
            "quorate node {}   up {}:{:02}:{:02}   out {:.0} B/s ({:.1} pkt/s)  in {:.1} pkt/s",
            f.id,
            up / 3600,
            (up / 60) % 60,
            up % 60,
            bps,
            out_pps,
            in_pps
        );
        let _ = writeln!(o, "{}", role(f));
        let _ = writeln!(o, "\n{}", view::summary(f.members));
        let mut members: Vec<&Member> = f.members.iter().collect();
        members.sort_by_key(|m| m.id);
        for m in members.into_iter().take(MAX_LISTED) {
            let me = if m.id == f.id { "  (this node)" } else { "" };
            let _ = writeln!(
                o,
                "  {:>6}  {:<8} {}{me}",
                m.id.0,
                view::state_name(m.state),
                m.addr
            );
        }
        if f.members.len() > MAX_LISTED {
            let _ = writeln!(o, "  ... and {} more", f.members.len() - MAX_LISTED);
        }
        if !f.leaders.is_empty() {
            let _ = writeln!(o, "\ngroups:");
            for (g, l) in &f.leaders {
                let _ = match l {
                    Some((id, term)) if *id == f.id => {
                        writeln!(o, "  {g}: led by this node, term {term}")
                    }
                    Some((id, term)) => writeln!(o, "  {g}: leader {id}, term {term}"),
                    None => writeln!(o, "  {g}: no leader"),
                };
            }
        }
        let _ = writeln!(o, "\nrecent:");
        for line in &self.recent {
            let _ = writeln!(o, "  {line}");
        }
        o.trim_end().to_owned()
    }

    /// Updates the traffic rates from the counters now (over the last redraw).
    fn measure(&mut self, t: &TransportStats) {
        let now = Instant::now();
        let counts = (t.udp_bytes_out, t.datagrams_out, t.datagrams_in);
        if let Some((at, b, o, i)) = self.sample {
            let dt = now.duration_since(at);
            if dt >= Duration::from_millis(500) {
                let rate = |new: u64, old: u64| new.saturating_sub(old) as f64 / dt.as_secs_f64();
                self.rates = (rate(counts.0, b), rate(counts.1, o), rate(counts.2, i));
                self.sample = Some((now, counts.0, counts.1, counts.2));
            }
        } else {
            self.sample = Some((now, counts.0, counts.1, counts.2));
        }
    }
}

/// This node's role and whether the voters alive make a quorum.
fn role(f: &Frame<'_>) -> String {
    let mut parts = Vec::new();
    if f.voters.contains(&f.id) {
        parts.push("voter".to_owned());
    }
    if !f.campaigns.is_empty() {
        parts.push(format!("candidate for {}", f.campaigns.join(", ")));
    }
    if parts.is_empty() {
        parts.push("member".to_owned());
    }
    let states: Vec<(NodeId, State)> = f.members.iter().map(|m| (m.id, m.state)).collect();
    let quorum = view::quorum_line(f.voters, &states).unwrap_or_else(|| "elections off".into());
    format!("role: {}   {quorum}", parts.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_screen_shows_role_quorum_groups_and_recent_events() {
        let mut s = Screen::new();
        for i in 0..(RECENT + 2) {
            s.event(format!("event {i}"));
        }
        let voters = [NodeId(1), NodeId(2), NodeId(3)];
        let frame = Frame {
            id: NodeId(1),
            members: &[],
            voters: &voters,
            campaigns: vec!["g"],
            leaders: vec![("g", None), ("h", Some((NodeId(2), 7)))],
            traffic: TransportStats::default(),
        };
        let text = s.draw(&frame);
        assert!(text.starts_with(CLEAR), "{text}");
        assert!(text.contains("role: voter, candidate for g"), "{text}");
        assert!(
            text.contains("no quorum: 0 of 3 voters reachable"),
            "{text}"
        );
        assert!(text.contains("g: no leader") && text.contains("h: leader 2, term 7"));
        assert!(!text.contains("event 1\n") && text.contains(&format!("event {}", RECENT + 1)));
    }
}
