//! How a running node reports: one JSON object per line (`--json`) or a readable live
//! view of the membership.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use quorate::{Event, Member, MemberEvent, NodeId, State};
use serde_json::{json, Map, Value};

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
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

/// The event's snake_case kind and its fields.
pub fn describe(event: &Event) -> Option<(&'static str, Map<String, Value>)> {
    let Event::Member(e) = event else {
        return None;
    };
    let plain = |id: NodeId, inc: u64| {
        let mut f = Map::new();
        f.insert("member".into(), json!(id.0));
        f.insert("incarnation".into(), json!(inc));
        f
    };
    Some(match e {
        MemberEvent::Joined(m) => ("member_joined", member_fields(m)),
        MemberEvent::Alive(m) => ("member_alive", member_fields(m)),
        MemberEvent::Updated(m) => ("member_updated", member_fields(m)),
        MemberEvent::Suspect { id, incarnation } => ("member_suspect", plain(*id, *incarnation)),
        MemberEvent::Failed { id, incarnation } => ("member_failed", plain(*id, *incarnation)),
        MemberEvent::Left { id, incarnation } => ("member_left", plain(*id, *incarnation)),
    })
}

/// One JSON line: `{"ts_ms":…,"node":…,"event":kind,…fields}`.
pub fn json_line(node: NodeId, kind: &str, fields: Map<String, Value>) -> String {
    let mut obj = Map::new();
    obj.insert("ts_ms".into(), json!(now_ms()));
    obj.insert("node".into(), json!(node.0));
    obj.insert("event".into(), json!(kind));
    obj.extend(fields);
    Value::Object(obj).to_string()
}

/// A human line for an event.
pub fn human_line(kind: &str, fields: &Map<String, Value>) -> String {
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

/// One line summing up the view: members grouped by state.
pub fn summary(members: &[Member]) -> String {
    let mut by: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    for m in members {
        let s = match m.state {
            State::Alive => "alive",
            State::Suspect => "suspect",
            State::Dead => "failed",
            State::Left => "left",
        };
        by.entry(s).or_default().push(m.id.0);
    }
    let mut parts = Vec::new();
    for (state, mut ids) in by {
        ids.sort_unstable();
        let ids: Vec<String> = ids.iter().map(u64::to_string).collect();
        parts.push(format!("{state} [{}]", ids.join(" ")));
    }
    format!("view: {}", parts.join("  "))
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
        let (kind, fields) = describe(&e).unwrap();
        let v: Value = serde_json::from_str(&json_line(NodeId(2), kind, fields)).unwrap();
        assert_eq!(v["event"], "member_failed");
        assert_eq!(v["node"], 2);
        assert_eq!(v["member"], 4);
        assert!(v["ts_ms"].as_u64().unwrap() > 1_600_000_000_000);
    }

    #[test]
    fn meta_text_falls_back_to_hex() {
        assert_eq!(meta_text(b"zone=a"), "zone=a");
        assert_eq!(meta_text(&[0xff, 0x01]), "ff01");
    }
}
