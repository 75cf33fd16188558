//! How a running node reports: one JSON object per line (`--json`) or a readable live
//! view of the membership and of the groups' leaders.

use std::collections::{BTreeMap, HashMap};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use quorate::{
    ElectionEvent, Event, GroupEvent, LeaderChange, Member, MemberEvent, Metric, NodeId, State,
    StepDown,
};
use serde_json::{json, Map, Value};

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The wall-clock time (Unix ms) of a point on this process's monotonic clock.
pub fn wall_ms(at: Instant) -> u64 {
    let (now, wall) = (Instant::now(), now_ms());
    match at.checked_duration_since(now) {
        Some(ahead) => wall.saturating_add(ahead.as_millis() as u64),
        None => wall.saturating_sub(now.duration_since(at).as_millis() as u64),
    }
}

/// `HH:MM:SS.mmm` (UTC) for the live view.
pub fn clock(ms: u64) -> String {
    let s = ms / 1000;
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        (s / 3600) % 24,
        (s / 60) % 60,
        s % 60,
        ms % 1000
    )
}

/// Metadata as text: UTF-8 when it is, else hex.
pub fn meta_text(meta: &[u8]) -> String {
    match std::str::from_utf8(meta) {
        Ok(s) => s.to_owned(),
        Err(_) => meta.iter().map(|b| format!("{b:02x}")).collect(),
    }
}

fn member_fields(m: &Member) -> Map<String, Value> {
    let mut f = Map::new();
    f.insert("member".into(), json!(m.id.0));
    f.insert("addr".into(), json!(m.addr.to_string()));
    f.insert("incarnation".into(), json!(m.incarnation));
    f.insert("meta".into(), json!(meta_text(&m.meta)));
    f
}

/// Turns a node's events into report lines. It remembers the lease end of every
/// leadership this node holds, so that `leadership_lost` can tell the last one.
/// Renewals are reported only when asked for (`leadership_renewed`, one every third
/// of a lease per group led).
#[derive(Debug, Default)]
pub struct Reporter {
    leases: HashMap<String, Instant>,
    renewals: bool,
}

impl Reporter {
    /// A reporter; `renewals`: report lease renewals too.
    pub fn new(renewals: bool) -> Self {
        Reporter {
            leases: HashMap::new(),
            renewals,
        }
    }

    /// The event's snake_case kind and its fields; `None` for events not reported.
    pub fn describe(&mut self, event: &Event) -> Option<(&'static str, Map<String, Value>)> {
        match event {
            Event::Member(e) => Some(describe_member(e)),
            Event::Leader(c) => Some(("leader_changed", leader_fields(c))),
            Event::Leadership(e) => self.leadership(e),
            _ => None,
        }
    }

    fn leadership(&mut self, e: &ElectionEvent) -> Option<(&'static str, Map<String, Value>)> {
        let group_term = |group: &str, term: u64| {
            let mut f = Map::new();
            f.insert("group".into(), json!(group));
            f.insert("term".into(), json!(term));
            f
        };
        match e {
            ElectionEvent::Elected {
                group,
                term,
                deadline,
            } => {
                self.leases.insert(group.clone(), *deadline);
                let mut f = group_term(group, *term);
                f.insert("lease_until_ms".into(), json!(wall_ms(*deadline)));
                Some(("leadership_acquired", f))
            }
            ElectionEvent::Renewed {
                group,
                term,
                deadline,
            } => {
                self.leases.insert(group.clone(), *deadline);
                let mut f = group_term(group, *term);
                f.insert("lease_until_ms".into(), json!(wall_ms(*deadline)));
                self.renewals.then_some(("leadership_renewed", f))
            }
            ElectionEvent::SteppedDown {
                group,
                term,
                reason,
            } => {
                let mut f = group_term(group, *term);
                f.insert("reason".into(), json!(step_down_reason(*reason)));
                if let Some(last) = self.leases.remove(group) {
                    f.insert("lease_until_ms".into(), json!(wall_ms(last)));
                }
                Some(("leadership_lost", f))
            }
            _ => None,
        }
    }
}

/// `reason` of `leadership_lost`.
pub fn step_down_reason(reason: StepDown) -> &'static str {
    match reason {
        StepDown::LeaseExpired => "lease_expired",
        StepDown::Resigned => "resigned",
        _ => "other",
    }
}

fn leader_fields(c: &LeaderChange) -> Map<String, Value> {
    let mut f = Map::new();
    f.insert("group".into(), json!(c.group));
    f.insert("leader".into(), json!(c.leader.map(|l| l.0)));
    f.insert("term".into(), json!(c.term));
    f
}

fn describe_member(e: &MemberEvent) -> (&'static str, Map<String, Value>) {
    let plain = |id: NodeId, inc: u64| {
        let mut f = Map::new();
        f.insert("member".into(), json!(id.0));
        f.insert("incarnation".into(), json!(inc));
        f
    };
    match e {
        MemberEvent::Joined(m) => ("member_joined", member_fields(m)),
        MemberEvent::Alive(m) => ("member_alive", member_fields(m)),
        MemberEvent::Updated(m) => ("member_updated", member_fields(m)),
        MemberEvent::Suspect { id, incarnation } => ("member_suspect", plain(*id, *incarnation)),
        MemberEvent::Failed { id, incarnation } => ("member_failed", plain(*id, *incarnation)),
        MemberEvent::Left { id, incarnation } => ("member_left", plain(*id, *incarnation)),
        MemberEvent::Duplicate { addr, newcomer } => {
            let mut f = Map::new();
            f.insert("addr".into(), json!(addr.to_string()));
            f.insert("newcomer".into(), json!(newcomer));
            ("duplicate_node", f)
        }
        _ => ("member_other", Map::new()),
    }
}

/// A group event's snake_case kind and its fields: `group_created` and `group_deleted`
/// (`group`), `group_joined` and `capabilities_updated` (`group`, `member`,
/// `capabilities` as text: UTF-8 when it is, else hex), `group_left` (`group`,
/// `member`); `group_other` for kinds added later.
pub fn describe_group(e: &GroupEvent) -> (&'static str, Map<String, Value>) {
    let fields = |group: &str, member: Option<NodeId>, caps: Option<&[u8]>| {
        let mut f = Map::new();
        f.insert("group".into(), json!(group));
        if let Some(m) = member {
            f.insert("member".into(), json!(m.0));
        }
        if let Some(c) = caps {
            f.insert("capabilities".into(), json!(meta_text(c)));
        }
        f
    };
    match e {
        GroupEvent::Created { group } => ("group_created", fields(group, None, None)),
        GroupEvent::Deleted { group } => ("group_deleted", fields(group, None, None)),
        GroupEvent::Joined {
            group,
            member,
            capabilities,
        } => (
            "group_joined",
            fields(group, Some(*member), Some(capabilities)),
        ),
        GroupEvent::Left { group, member } => ("group_left", fields(group, Some(*member), None)),
        GroupEvent::CapabilitiesUpdated {
            group,
            member,
            capabilities,
        } => (
            "capabilities_updated",
            fields(group, Some(*member), Some(capabilities)),
        ),
        _ => ("group_other", Map::new()),
    }
}

/// One JSON line: `{"ts_ms":…,"node":…,"event":kind,…fields}`, stamped now.
pub fn json_line(node: NodeId, kind: &str, fields: Map<String, Value>) -> String {
    json_line_at(now_ms(), node, kind, fields)
}

/// One JSON line stamped `ts_ms` (Unix ms): an event that happened elsewhere.
pub fn json_line_at(ts_ms: u64, node: NodeId, kind: &str, fields: Map<String, Value>) -> String {
    let mut obj = Map::new();
    obj.insert("ts_ms".into(), json!(ts_ms));
    obj.insert("node".into(), json!(node.0));
    obj.insert("event".into(), json!(kind));
    obj.extend(fields);
    Value::Object(obj).to_string()
}

/// Every metric as a JSON field, by name (the `stats` line).
pub fn metric_fields(metrics: &[Metric]) -> Map<String, Value> {
    metrics
        .iter()
        .map(|m| (m.name.to_owned(), json!(m.value)))
        .collect()
}

/// Every metric as `name=value` (the `stats` line of the live view).
pub fn metric_text(metrics: &[Metric]) -> String {
    let pairs: Vec<String> = metrics
        .iter()
        .map(|m| format!("{}={}", m.name, m.value))
        .collect();
    pairs.join(" ")
}

/// A human line for an event.
pub fn human_line(kind: &str, fields: &Map<String, Value>) -> String {
    let text = |k: &str| match fields.get(k) {
        Some(Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
        None => String::new(),
    };
    match kind {
        "leader_changed" => {
            return match fields.get("leader") {
                Some(Value::Number(n)) => {
                    format!(
                        "group {}: node {n} leads (term {})",
                        text("group"),
                        text("term")
                    )
                }
                _ => format!(
                    "group {}: no leader (last term {})",
                    text("group"),
                    text("term")
                ),
            }
        }
        "leadership_acquired" => {
            let until = fields.get("lease_until_ms").and_then(Value::as_u64);
            return format!(
                "this node LEADS group {} (term {}), lease until {}",
                text("group"),
                text("term"),
                until.map(clock).unwrap_or_default()
            );
        }
        "leadership_renewed" => {
            let until = fields.get("lease_until_ms").and_then(Value::as_u64);
            return format!(
                "this node renewed its lease of group {} (term {}) until {}",
                text("group"),
                text("term"),
                until.map(clock).unwrap_or_default()
            );
        }
        "group_created" | "group_deleted" => {
            return format!("group {} {}", text("group"), &kind["group_".len()..]);
        }
        "group_joined" | "group_left" | "capabilities_updated" => {
            let what = match kind {
                "group_joined" => "joined",
                "group_left" => "left",
                _ => "updated its capabilities",
            };
            let mut line = format!("group {}: node {} {what}", text("group"), text("member"));
            if let Some(Value::String(caps)) = fields.get("capabilities") {
                if !caps.is_empty() {
                    line.push_str(&format!(" [{caps}]"));
                }
            }
            return line;
        }
        "lagged" => {
            return format!(
                "lagged {} (events lost: this watch fell behind)",
                text("lost")
            )
        }
        "leadership_lost" => {
            return format!(
                "this node STEPPED DOWN from group {} (term {}): {}",
                text("group"),
                text("term"),
                text("reason").replace('_', " ")
            )
        }
        _ => {}
    }
    let member = fields
        .get("member")
        .map(|v| v.to_string())
        .unwrap_or_default();
    let what = match kind {
        "member_joined" => "joined",
        "member_alive" => "is alive again",
        "member_updated" => "updated its metadata",
        "member_suspect" => "is SUSPECT",
        "member_failed" => "FAILED",
        "member_left" => "left",
        other => other,
    };
    let mut line = format!("node {member} {what}");
    if let Some(Value::String(meta)) = fields.get("meta") {
        if !meta.is_empty() {
            line.push_str(&format!(" [{meta}]"));
        }
    }
    line
}

/// A member state's one name, the same in every output: alive, suspect, failed, left.
pub fn state_name(state: State) -> &'static str {
    match state {
        State::Alive => "alive",
        State::Suspect => "suspect",
        State::Dead => "failed",
        State::Left => "left",
    }
}

/// Whether the voters alive in `members` make a quorum, as one line
/// ("voters: 3 of 3 alive, a quorum" or "no quorum: 1 of 3 voters reachable");
/// `None` when elections are off.
pub fn quorum_line(voters: &[NodeId], members: &[(NodeId, State)]) -> Option<String> {
    if voters.is_empty() {
        return None;
    }
    let alive = voters
        .iter()
        .filter(|v| members.contains(&(**v, State::Alive)))
        .count();
    let need = quorate::election::quorum(voters.len());
    Some(match alive >= need {
        true => format!("voters: {alive} of {} alive, a quorum", voters.len()),
        false => format!("no quorum: {alive} of {} voters reachable", voters.len()),
    })
}

/// One line summing up the view: members grouped by state.
pub fn summary(members: &[Member]) -> String {
    let mut by: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    for m in members {
        by.entry(state_name(m.state)).or_default().push(m.id.0);
    }
    let mut parts = Vec::new();
    for (state, mut ids) in by {
        ids.sort_unstable();
        let ids: Vec<String> = ids.iter().map(u64::to_string).collect();
        parts.push(format!("{state} [{}]", ids.join(" ")));
    }
    format!("view: {}", parts.join("  "))
}

/// One line with the gossiped leader of each group in `groups`.
pub fn leaders<'a>(
    groups: impl IntoIterator<Item = &'a String>,
    leader: impl Fn(&str) -> Option<(NodeId, u64)>,
) -> String {
    let parts: Vec<String> = groups
        .into_iter()
        .map(|g| match leader(g) {
            Some((id, term)) => format!("{g}: node {id} (term {term})"),
            None => format!("{g}: none"),
        })
        .collect();
    format!("leaders: {}", parts.join("  "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_lines_carry_the_required_fields() {
        let e = Event::Member(MemberEvent::Failed {
            id: NodeId(4),
            incarnation: 2,
        });
        let (kind, fields) = Reporter::default().describe(&e).unwrap();
        let v: Value = serde_json::from_str(&json_line(NodeId(2), kind, fields)).unwrap();
        assert_eq!(v["event"], "member_failed");
        assert_eq!(v["node"], 2);
        assert_eq!(v["member"], 4);
        assert!(v["ts_ms"].as_u64().unwrap() > 1_600_000_000_000);
    }

    #[test]
    fn stats_lines_carry_every_metric() {
        let metrics: Vec<Metric> = quorate::Stats::default()
            .metrics()
            .chain(quorate::Gauges::default().metrics())
            .chain(quorate::TransportStats::default().metrics())
            .collect();
        let fields = metric_fields(&metrics);
        assert_eq!(fields.len(), metrics.len());
        let v: Value = serde_json::from_str(&json_line(NodeId(1), "stats", fields)).unwrap();
        assert_eq!(v["event"], "stats");
        for key in [
            "frames_out",
            "bytes_out",
            "frames_in",
            "udp_bytes_out",
            "members",
        ] {
            assert_eq!(v[key], 0, "{key}");
        }
        let text = metric_text(&metrics);
        assert!(text.starts_with("malformed=0 "), "{text}");
        assert!(text.contains(" frames_out=0 "), "{text}");
    }

    fn line(r: &mut Reporter, e: Event) -> Option<Value> {
        let (kind, fields) = r.describe(&e)?;
        Some(serde_json::from_str(&json_line(NodeId(1), kind, fields)).unwrap())
    }

    #[test]
    fn election_events_become_leadership_lines() {
        let mut r = Reporter::default();
        let change =
            |leader: Option<u64>| Event::Leader(LeaderChange::new("g", leader.map(NodeId), 7));
        let v = line(&mut r, change(Some(3))).unwrap();
        assert_eq!(
            (&v["event"], &v["group"], &v["leader"], &v["term"]),
            (&json!("leader_changed"), &json!("g"), &json!(3), &json!(7))
        );
        assert!(line(&mut r, change(None)).unwrap()["leader"].is_null());

        let now = Instant::now();
        let elected = Event::Leadership(ElectionEvent::Elected {
            group: "g".into(),
            term: 7,
            deadline: now + std::time::Duration::from_millis(800),
        });
        let v = line(&mut r, elected).unwrap();
        assert_eq!(v["event"], "leadership_acquired");
        let until = v["lease_until_ms"].as_u64().unwrap();
        let ahead = until - v["ts_ms"].as_u64().unwrap();
        assert!((700..=800).contains(&ahead), "{v}");

        let renewed = Event::Leadership(ElectionEvent::Renewed {
            group: "g".into(),
            term: 7,
            deadline: now + std::time::Duration::from_millis(1500),
        });
        assert!(
            line(&mut r, renewed.clone()).is_none(),
            "renewals are not reported by default"
        );
        let v = line(&mut Reporter::new(true), renewed).unwrap();
        assert_eq!(
            (&v["event"], &v["node"], &v["group"], &v["term"]),
            (
                &json!("leadership_renewed"),
                &json!(1),
                &json!("g"),
                &json!(7)
            )
        );
        let renewed_until = v["lease_until_ms"].as_u64().unwrap();
        assert!(renewed_until >= until + 600, "{v}");
        let mut keys: Vec<&str> = v.as_object().unwrap().keys().map(|k| k.as_str()).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            ["event", "group", "lease_until_ms", "node", "term", "ts_ms"],
            "exactly the fields of leadership_acquired"
        );
        let lost = Event::Leadership(ElectionEvent::SteppedDown {
            group: "g".into(),
            term: 7,
            reason: StepDown::Resigned,
        });
        let v = line(&mut r, lost).unwrap();
        assert_eq!(
            (&v["event"], &v["reason"], &v["term"]),
            (&json!("leadership_lost"), &json!("resigned"), &json!(7))
        );
        assert!(v["lease_until_ms"].as_u64().unwrap() >= until + 600, "{v}");
    }

    #[test]
    fn wall_clock_of_past_and_future_instants() {
        let now = Instant::now();
        let wall = now_ms();
        let d = std::time::Duration::from_secs(5);
        assert!(wall_ms(now + d).abs_diff(wall + 5000) <= 5);
        assert!(wall_ms(now - d).abs_diff(wall - 5000) <= 5);
        assert_eq!(clock(3_723_004), "01:02:03.004");
    }

    #[test]
    fn human_lines_for_leaders() {
        let mut r = Reporter::default();
        let e = Event::Leader(LeaderChange::new("g", Some(NodeId(2)), 5));
        let (kind, fields) = r.describe(&e).unwrap();
        assert_eq!(human_line(kind, &fields), "group g: node 2 leads (term 5)");
        let groups = ["a".to_owned(), "g".to_owned()];
        let l = leaders(&groups, |g| (g == "g").then_some((NodeId(2), 5)));
        assert_eq!(l, "leaders: a: none  g: node 2 (term 5)");
    }

    #[test]
    fn the_quorum_line_counts_live_voters() {
        let m = |id, state| (NodeId(id), state);
        let voters = [NodeId(1), NodeId(2), NodeId(3)];
        let lone = [m(1, State::Alive), m(2, State::Dead)];
        let line = quorum_line(&voters, &lone).unwrap();
        assert_eq!(line, "no quorum: 1 of 3 voters reachable");
        let two = [m(1, State::Alive), m(3, State::Alive)];
        assert_eq!(
            quorum_line(&voters, &two).unwrap(),
            "voters: 2 of 3 alive, a quorum"
        );
        assert_eq!(quorum_line(&[], &two), None);
    }

    #[test]
    fn group_events_name_group_member_and_capabilities() {
        let joined = GroupEvent::Joined {
            group: "g".into(),
            member: NodeId(3),
            capabilities: b"gpu=1".to_vec(),
        };
        let (kind, f) = describe_group(&joined);
        assert_eq!(kind, "group_joined");
        assert_eq!(
            (&f["group"], &f["member"], &f["capabilities"]),
            (&json!("g"), &json!(3), &json!("gpu=1"))
        );
        let (kind, f) = describe_group(&GroupEvent::Deleted { group: "g".into() });
        assert_eq!((kind, f.len()), ("group_deleted", 1));
        let left = GroupEvent::Left {
            group: "g".into(),
            member: NodeId(3),
        };
        assert_eq!(describe_group(&left).0, "group_left");
    }

    #[test]
    fn meta_text_falls_back_to_hex() {
        assert_eq!(meta_text(b"zone=a"), "zone=a");
        assert_eq!(meta_text(&[0xff, 0x01]), "ff01");
    }
}
