//! `quorate-netsim why TRACE.jsonl --node N --at T`: from a trace, the chain of
//! messages and timers that led to node N being suspected or declared failed, or to
//! its leadership, at or before time T.
//!
//! Every record a node's message or timer produces follows that message or timer in
//! the trace at the same instant, so the cause of a view change at node O is the
//! delivery or timer at O just before it: a delivery from S passes the chain on to S
//! (and S's own view change before), a timer ends it at O's own probe or suspicion.

use serde_json::Value;

/// One trace record.
#[derive(Debug)]
pub struct Rec {
    /// Simulated time, s.
    pub t: f64,
    /// The record.
    pub v: Value,
}

impl Rec {
    fn kind(&self) -> &str {
        self.v["type"].as_str().unwrap_or_default()
    }
    fn node(&self) -> u64 {
        self.v["node"].as_u64().unwrap_or(0)
    }
    fn from(&self) -> u64 {
        self.v["from"].as_u64().unwrap_or(0)
    }
    /// The message's kind (`Ping`, `Election.Answer`, ...).
    fn msg_kind(&self) -> String {
        let m = &self.v["msg"];
        let top = tag(m);
        match top.as_str() {
            "Election" => format!("Election.{}", tag(&m["Election"]["msg"])),
            _ => top,
        }
    }
    fn elected(&self) -> Option<&Value> {
        let e = &self.v["event"]["Leadership"]["Elected"];
        (self.kind() == "event" && e.is_object()).then_some(e)
    }
}

fn tag(v: &Value) -> String {
    match v {
        Value::Object(m) => m.keys().next().cloned().unwrap_or_default(),
        Value::String(s) => s.clone(),
        _ => "?".into(),
    }
}

/// Reads a trace's lines.
pub fn parse(text: &str) -> Result<Vec<Rec>, String> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(k, l)| {
            let v: Value = serde_json::from_str(l).map_err(|e| format!("line {}: {e}", k + 1))?;
            let t = v["t"]
                .as_f64()
                .ok_or(format!("line {}: no time `t`", k + 1))?;
            Ok(Rec { t, v })
        })
        .collect()
}

/// The explanation, one line per step, of what happened to `node` at or before `at`.
pub fn explain(recs: &[Rec], node: u64, at: f64) -> Result<Vec<String>, String> {
    let is_target = |r: &Rec| {
        let bad_view = r.kind() == "view"
            && r.v["member"] == node
            && matches!(r.v["state"].as_str(), Some("suspect" | "failed"));
        bad_view || (r.node() == node && r.elected().is_some())
    };
    let before = recs
        .iter()
        .enumerate()
        .rfind(|(_, r)| r.t <= at + 1e-9 && is_target(r));
    let after = || {
        recs.iter()
            .enumerate()
            .find(|(_, r)| r.t > at && is_target(r))
    };
    let (i, r) = before.or_else(after).ok_or(format!(
        "node {node} was never suspected, declared failed or elected"
    ))?;
    let mut out = Vec::new();
    if r.elected().is_some() {
        leadership(recs, i, &mut out);
    } else {
        view_chain(recs, i, &mut out);
    }
    Ok(out)
}

fn at(t: f64) -> String {
    format!("{t:>12.6}s")
}

/// The delivery or timer at the record's node just before it, at the same instant.
fn cause(recs: &[Rec], i: usize) -> Option<usize> {
    let (t, n) = (recs[i].t, recs[i].node());
    (0..i)
        .rev()
        .take_while(|&k| recs[k].t == t)
        .find(|&k| recs[k].node() == n && matches!(recs[k].kind(), "recv" | "timer"))
}

fn view_chain(recs: &[Rec], mut i: usize, out: &mut Vec<String>) {
    let member = recs[i].v["member"].as_u64().unwrap_or(0);
    let state = recs[i].v["state"].as_str().unwrap_or_default().to_owned();
    out.push(format!(
        "{} node {} has node {member} {state}; how it came to:",
        at(recs[i].t),
        recs[i].node()
    ));
    for _ in 0..64 {
        let o = recs[i].node();
        let Some(k) = cause(recs, i) else {
            out.push(format!(
                "{} (no delivery or timer at node {o} explains it)",
                at(recs[i].t)
            ));
            return;
        };
        if recs[k].kind() == "timer" {
            let what = match state.as_str() {
                "failed" => "its suspicion ran out without a refutation",
                _ => "its probe went unanswered, directly and through others",
            };
            out.push(format!(
                "{} node {o}'s own timer fired: {what}",
                at(recs[k].t)
            ));
            evidence(recs, k, o, member, out);
            return;
        }
        let s = recs[k].from();
        out.push(format!(
            "{} node {o} heard it from node {s} ({})",
            at(recs[k].t),
            recs[k].msg_kind()
        ));
        let earlier = (0..k).rev().find(|&j| {
            let r = &recs[j];
            r.kind() == "view" && r.node() == s && r.v["member"] == member && r.v["state"] == state
        });
        match earlier {
            Some(j) => i = j,
            None => {
                out.push(format!(
                    "{} node {s} passed it on without holding it itself",
                    at(recs[k].t)
                ));
                return;
            }
        }
    }
}

/// What node `o` saw of `member` in the ten seconds before record `k`, and the
/// scenario's actions before it.
fn evidence(recs: &[Rec], k: usize, o: u64, member: u64, out: &mut Vec<String>) {
    let t = recs[k].t;
    let window = recs[..k].iter().filter(|r| r.t >= t - 10.0);
    let heard = window
        .clone()
        .rfind(|r| r.kind() == "recv" && r.node() == o && r.from() == member);
    match heard {
        Some(r) => out.push(format!(
            "{} node {o} last heard from node {member} ({})",
            at(r.t),
            r.msg_kind()
        )),
        None => out.push(format!(
            "{} node {o} heard nothing from node {member} in the 10 s before",
            at(t)
        )),
    }
    let probes = window.filter(|r| {
        let asked =
            r.kind() == "recv" && r.from() == o && r.v["msg"]["PingReq"]["target"] == member;
        let answered = r.kind() == "recv" && r.node() == o && r.msg_kind() == "Nack";
        asked || answered
    });
    for r in probes.collect::<Vec<_>>().iter().rev().take(6).rev() {
        let what = match r.msg_kind().as_str() {
            "Nack" => format!(
                "node {} could not reach node {member} either (Nack)",
                r.from()
            ),
            _ => format!(
                "node {o} asked node {} to probe node {member} (PingReq)",
                r.node()
            ),
        };
        out.push(format!("{} {what}", at(r.t)));
    }
    actions_before(recs, k, Some(member), out);
}

/// The last actions before record `k` that touched `member` (any node when `None`)
/// or the whole network.
fn actions_before(recs: &[Rec], k: usize, member: Option<u64>, out: &mut Vec<String>) {
    let acts: Vec<&Rec> = recs[..k]
        .iter()
        .filter(|r| r.kind() == "action")
        .filter(|r| match (r.v["node"].as_u64(), member) {
            (Some(n), Some(m)) => n == m,
            _ => true,
        })
        .collect();
    for r in acts.iter().rev().take(3).rev() {
        let on = r.v["node"]
            .as_u64()
            .map_or(String::new(), |n| format!(" node {n}"));
        out.push(format!("{} scenario: {}{on}", at(r.t), r.v["action"]));
    }
}

fn leadership(recs: &[Rec], i: usize, out: &mut Vec<String>) {
    let r = &recs[i];
    let (m, e) = (r.node(), r.elected().cloned().unwrap_or_default());
    let (group, term) = (e["group"].clone(), e["term"].clone());
    out.push(format!(
        "{} node {m} elected leader of {group} at term {term}; how:",
        at(r.t)
    ));
    let request = recs[..i].iter().find(|q| {
        q.kind() == "recv"
            && q.from() == m
            && q.v["msg"]["Election"]["msg"]["Request"]["term"] == term
    });
    if let Some(q) = request {
        let prev = recs[..i]
            .iter()
            .filter(|p| p.t < q.t && p.node() == m)
            .rfind(|p| {
                (p.kind() == "recv" && p.msg_kind().starts_with("Election.")) || p.kind() == "timer"
            });
        if let Some(p) = prev.filter(|p| p.kind() == "recv") {
            out.push(format!(
                "{} node {m} heard {} from node {}",
                at(p.t),
                p.msg_kind(),
                p.from()
            ));
        }
        out.push(format!(
            "{} node {m} asked the voters for term {term} (Request)",
            at(q.t)
        ));
    }
    for g in recs[..=i].iter().filter(|g| {
        let a = &g.v["msg"]["Election"]["msg"]["Answer"];
        g.kind() == "recv"
            && g.node() == m
            && a["term"] == term
            && a["verdict"]["Granted"].is_string()
    }) {
        out.push(format!("{} node {} granted it", at(g.t), g.from()));
    }
    let earlier = recs[..i]
        .iter()
        .rfind(|p| p.elected().is_some_and(|e| e["group"] == group));
    if let Some(p) = earlier {
        out.push(format!(
            "{} (the leadership before: node {} at term {})",
            at(p.t),
            p.node(),
            p.elected().map_or(Value::Null, |e| e["term"].clone())
        ));
    }
    actions_before(recs, i, None, out);
}
