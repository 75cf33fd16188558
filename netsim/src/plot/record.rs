//! What a picture of a run shows, recorded while it runs: each member's state as most
//! nodes see it, each group's leaderships, the faults in force, and where a checker
//! fired.

use std::cell::RefCell;
use std::rc::Rc;

use quorate::{ElectionEvent, Event};

use crate::check::{Checker, Report};
use crate::net::NodeIdx;
use crate::scenario::{Action, Outcome};
use crate::sim::{member_event_key, node_idx, Record, Sim};

/// A member's state as most running nodes see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum State {
    /// No node knows it yet.
    Unknown,
    /// Alive.
    Alive,
    /// Suspected.
    Suspect,
    /// Declared failed.
    Failed,
    /// Left.
    Left,
}

const STATES: [State; 5] = [
    State::Unknown,
    State::Alive,
    State::Suspect,
    State::Failed,
    State::Left,
];

/// One leadership: `node` led `group` at `term` from `start` to `end` (seconds).
#[derive(Clone, Debug)]
pub struct Lead {
    /// The group.
    pub group: String,
    /// The leader.
    pub node: NodeIdx,
    /// Its term (fencing token).
    pub term: u64,
    /// When it was elected.
    pub start: f64,
    /// When it stepped down or crashed (the end of the run if neither).
    pub end: f64,
}

/// A fault in force from `start` to `end` (seconds), on one node or the whole network.
#[derive(Clone, Debug)]
pub struct Fault {
    /// What it was.
    pub label: String,
    /// The node it hit (`None`: the network).
    pub node: Option<NodeIdx>,
    /// Start.
    pub start: f64,
    /// End.
    pub end: f64,
}

/// Everything a timeline picture shows.
#[derive(Clone, Debug, Default)]
pub struct Timeline {
    /// The scenario.
    pub name: String,
    /// Node names by index.
    pub names: Vec<String>,
    /// Length of the run, seconds.
    pub end: f64,
    /// Per member, each change of its majority state: (seconds, state).
    pub states: Vec<Vec<(f64, State)>>,
    /// Per member, the intervals (seconds) when some node that knows it sees it
    /// otherwise than most do.
    pub split: Vec<Vec<(f64, f64)>>,
    /// Every leadership.
    pub leads: Vec<Lead>,
    /// Every fault.
    pub faults: Vec<Fault>,
    /// Where a checker fired (seconds) and what it said.
    pub marks: Vec<(f64, String)>,
}

/// Where a recording ends up: the timeline of the first simulation a run makes.
pub type Recording = Rc<RefCell<Option<Timeline>>>;

/// The checker that records a [`Timeline`] into a [`Recording`].
#[derive(Debug)]
pub struct Recorder {
    out: Recording,
    n: usize,
    /// Observer × member: the state each running node gives each member.
    view: Vec<State>,
    /// Per member, how many observers give it each state.
    counts: Vec<[u32; 5]>,
    t: Timeline,
    /// Per member, since when nodes disagree about it.
    split_since: Vec<Option<f64>>,
    open_leads: Vec<usize>,
    open_faults: Vec<usize>,
}

impl Recorder {
    /// Records into `out` (unless it already holds a timeline).
    pub fn new(out: Recording, n: usize) -> Self {
        Recorder {
            out,
            n,
            view: vec![State::Unknown; n * n],
            counts: vec![[n as u32, 0, 0, 0, 0]; n],
            t: Timeline {
                names: (1..=n).map(|k| format!("n{k}")).collect(),
                states: vec![Vec::new(); n],
                split: vec![Vec::new(); n],
                ..Timeline::default()
            },
            split_since: vec![None; n],
            open_leads: Vec::new(),
            open_faults: Vec::new(),
        }
    }

    fn set(&mut self, o: usize, m: usize, s: State, at: f64) {
        let old = std::mem::replace(&mut self.view[o * self.n + m], s);
        if old == s {
            return;
        }
        self.counts[m][old as usize] -= 1;
        self.counts[m][s as usize] += 1;
        let c = self.counts[m];
        // The most common known state, the worse one on a tie; unknown when none is.
        let best = STATES[1..]
            .iter()
            .copied()
            .max_by_key(|&k| (c[k as usize], k))
            .filter(|&k| c[k as usize] > 0)
            .unwrap_or(State::Unknown);
        let lane = &mut self.t.states[m];
        if lane.last().map(|l| l.1) != Some(best) {
            lane.push((at, best));
        }
        let known: u32 = c[1..].iter().sum();
        let split = known > c[best as usize];
        match (self.split_since[m], split) {
            (None, true) => self.split_since[m] = Some(at),
            (Some(from), false) => {
                self.t.split[m].push((from, at));
                self.split_since[m] = None;
            }
            _ => {}
        }
    }

    /// A crashed node's view is gone.
    fn forget(&mut self, o: usize, at: f64) {
        for m in 0..self.n {
            self.set(o, m, State::Unknown, at);
        }
    }

    fn open(&mut self, label: String, node: Option<NodeIdx>, at: f64) {
        self.open_faults.push(self.t.faults.len());
        self.t.faults.push(Fault {
            label,
            node,
            start: at,
            end: f64::INFINITY,
        });
    }

    /// Ends the open faults `which` selects.
    fn close(&mut self, at: f64, which: impl Fn(&Fault) -> bool) {
        let faults = &mut self.t.faults;
        self.open_faults.retain(|&k| {
            let hit = which(&faults[k]);
            if hit {
                faults[k].end = at;
            }
            !hit
        });
    }

    fn end_leads(&mut self, at: f64, which: impl Fn(&Lead) -> bool) {
        let leads = &mut self.t.leads;
        self.open_leads.retain(|&k| {
            let hit = which(&leads[k]);
            if hit {
                leads[k].end = at;
            }
            !hit
        });
    }

    fn on_leadership(&mut self, node: NodeIdx, e: &ElectionEvent, at: f64) {
        match e {
            ElectionEvent::Elected { group, term, .. } => {
                self.end_leads(at, |l| l.node == node && l.group == *group);
                self.open_leads.push(self.t.leads.len());
                self.t.leads.push(Lead {
                    group: group.clone(),
                    node,
                    term: *term,
                    start: at,
                    end: f64::INFINITY,
                });
            }
            ElectionEvent::SteppedDown { group, term, .. } => {
                self.end_leads(at, |l| {
                    l.node == node && l.group == *group && l.term == *term
                });
            }
            _ => {}
        }
    }
}

impl Checker for Recorder {
    fn on_record(&mut self, _sim: &Sim, rec: &Record) {
        let at = rec.at.as_secs_f64();
        let o = rec.node as usize;
        match &rec.event {
            Event::Member(e) if o < self.n => {
                let (kind, id, _) = member_event_key(e);
                let Some(m) = node_idx(id, self.n) else {
                    return;
                };
                let s = match kind {
                    0 | 2 | 5 => State::Alive,
                    1 => State::Suspect,
                    3 => State::Failed,
                    4 => State::Left,
                    _ => return,
                };
                self.set(o, m as usize, s, at);
            }
            Event::Leadership(e) => self.on_leadership(rec.node, e, at),
            _ => {}
        }
    }

    fn on_action(&mut self, sim: &Sim, action: &Action) {
        let at = sim.now().as_secs_f64();
        match action {
            Action::Partition(_) => {
                self.close(at, |f| f.label == "cut");
                self.open("cut".into(), None, at);
            }
            Action::Heal => self.close(at, |f| f.label == "cut"),
            Action::Loss(p) => {
                self.close(at, |f| f.label.starts_with("loss"));
                if *p > 0.0 {
                    self.open(format!("loss {:.0}%", p * 100.0), None, at);
                }
            }
            Action::LinkLoss { loss, .. } => {
                self.close(at, |f| f.label.starts_with("link loss"));
                if *loss > 0.0 {
                    self.open(format!("link loss {:.0}%", loss * 100.0), None, at);
                }
            }
            Action::Crash(i) => {
                self.end_leads(at, |l| l.node == *i);
                if (*i as usize) < self.n {
                    self.forget(*i as usize, at);
                }
                self.open("crash".into(), Some(*i), at);
            }
            Action::Restart(i) => self.close(at, |f| f.node == Some(*i) && f.label == "crash"),
            Action::RestartDown => self.close(at, |f| f.label == "crash"),
            Action::Pause { node, duration } => self.t.faults.push(Fault {
                label: "pause".into(),
                node: Some(*node),
                start: at,
                end: at + duration.as_secs_f64(),
            }),
            Action::Slow { node, .. } => self.open("slow".into(), Some(*node), at),
            Action::Unslow(i) => self.close(at, |f| f.node == Some(*i) && f.label == "slow"),
            Action::Leave(i) => self.end_leads(at, |l| l.node == *i),
            _ => {}
        }
    }

    fn finish(&mut self, sim: &Sim, _report: &mut Report) {
        let end = sim.now().as_secs_f64();
        self.t.end = end;
        for (m, since) in self.split_since.iter().enumerate() {
            if let Some(from) = since {
                self.t.split[m].push((*from, end));
            }
        }
        for f in &mut self.t.faults {
            f.end = f.end.min(end);
        }
        for l in &mut self.t.leads {
            l.end = l.end.min(end);
        }
        let mut out = self.out.borrow_mut();
        if out.is_none() {
            *out = Some(std::mem::take(&mut self.t));
        }
    }
}

/// Marks where the outcome's violations say a checker fired (`at 12.3s`, `elected
/// at 20.9s`); violations without a time are marked at the end.
pub fn marks(o: &Outcome, end: f64) -> Vec<(f64, String)> {
    o.violations
        .iter()
        .map(|v| (time_in(v).unwrap_or(end), v.clone()))
        .collect()
}

fn time_in(v: &str) -> Option<f64> {
    v.match_indices("at ").find_map(|(k, _)| {
        let rest = &v[k + 3..];
        let num: String = rest
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == '.')
            .collect();
        rest[num.len()..]
            .starts_with('s')
            .then(|| num.parse().ok())
            .flatten()
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn times_in_violations() {
        assert_eq!(
            super::time_in("node 3 elected at 20.972s while"),
            Some(20.972)
        );
        assert_eq!(
            super::time_in("did not hold within 2.0s (at 75.3s)"),
            Some(75.3)
        );
        assert_eq!(super::time_in("look at this"), None);
    }
}
