//! The scenario file's schema: what `toml` parses a file into (and what `show` writes),
//! with the duration and node-set syntax it uses. See `netsim/SCENARIO.md` for the
//! format as a user sees it.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use toml::Spanned;

/// A whole file.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct File {
    /// Scenario name (reported).
    pub name: String,
    /// Seed when the command line gives none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// The node the others join through (default: the first node).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed_node: Option<String>,
    /// The group elections run for (none: membership only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// After the timeline, cuts heal and the cluster gets this long to converge.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub settle: Option<Dur>,
    /// Voters keep their granted terms across restarts (a data directory).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub durable_terms: Option<bool>,
    /// Nodes take a term floor from their clock when they start (default true).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub term_floor: Option<bool>,
    /// Bytes of application metadata every node publishes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub meta_bytes: Option<usize>,
    /// The nodes, in order (their ids are 1, 2, ... in this order).
    #[serde(default)]
    pub nodes: Vec<Spanned<NodeSpec>>,
    /// Second processes of existing nodes (another address, the same id); start down.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub twins: Vec<Spanned<TwinSpec>>,
    /// Links that differ from the default one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<Spanned<LinkRule>>,
    /// What happens, in order.
    #[serde(default)]
    pub timeline: Vec<Spanned<Entry>>,
    /// Protocol configuration: a preset and fields that differ from it.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub config: BTreeMap<String, Spanned<toml::Value>>,
    /// The default link between any two nodes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network: Option<Spanned<LinkSpec>>,
    /// Budgets of the checkers and bounds on metrics.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expect: Option<Expect>,
    /// Further runs of the same scenario with a changed config, reported with their
    /// name as a suffix of their metrics.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub variant: Vec<Spanned<Variant>>,
}

/// One node or a range of them.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSpec {
    /// One node's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// A range of names, `"s1..s12"` (both ends included).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub names: Option<String>,
    /// `voter`, `candidate`, `member` (the default), or a list of them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<Names>,
    /// The site (zone) the nodes are in: a name for node sets and links.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub site: Option<String>,
    /// Config fields (and a `preset`) these nodes run with instead of the file's.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub config: BTreeMap<String, toml::Value>,
}

/// A second process of a node.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TwinSpec {
    /// Its name.
    pub name: String,
    /// The node whose id it runs with.
    pub of: String,
}

/// How a link behaves; every field left out keeps the default link's value.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LinkSpec {
    /// Smallest one-way latency.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency: Option<Dur>,
    /// Extra latency per message, drawn from `0..=jitter` as `distribution` says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jitter: Option<Dur>,
    /// `uniform` (the default), `fixed`, `normal` or `long-tail`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub distribution: Option<String>,
    /// Probability a datagram is lost.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loss: Option<f64>,
    /// Probability a datagram is delivered twice.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duplicate: Option<f64>,
    /// Probability a datagram is held back by `reorder_delay`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reorder: Option<f64>,
    /// Extra delay of a reordered datagram.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reorder_delay: Option<Dur>,
    /// Delay a stream message suffers per lost transmission.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rto: Option<Dur>,
}

/// Links from one node set to another that differ from the default link.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LinkRule {
    /// Senders.
    pub from: Names,
    /// Receivers.
    pub to: Names,
    /// Only `from → to` (default: both ways).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub one_way: Option<bool>,
    /// Smallest one-way latency.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency: Option<Dur>,
    /// Extra latency per message, drawn as `distribution` says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jitter: Option<Dur>,
    /// `uniform` (the default), `fixed`, `normal` or `long-tail`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub distribution: Option<String>,
    /// Datagram loss probability.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loss: Option<f64>,
    /// Duplication probability.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duplicate: Option<f64>,
    /// Reordering probability.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reorder: Option<f64>,
    /// Extra delay of a reordered datagram.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reorder_delay: Option<Dur>,
    /// Delay per lost stream transmission.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rto: Option<Dur>,
}

impl LinkRule {
    /// The link part of the rule.
    pub fn spec(&self) -> LinkSpec {
        LinkSpec {
            latency: self.latency,
            jitter: self.jitter,
            distribution: self.distribution.clone(),
            loss: self.loss,
            duplicate: self.duplicate,
            reorder: self.reorder,
            reorder_delay: self.reorder_delay,
            rto: self.rto,
        }
    }
}

/// One timeline entry: an optional time (`at` or `after`), then an action (`do`),
/// traffic counting, a mark, an expectation, in that order.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// Wait until this long after the start (nothing if already past).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub at: Option<Dur>,
    /// Wait this long.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after: Option<Dur>,
    /// The action.
    #[serde(rename = "do", skip_serializing_if = "Option::is_none")]
    pub act: Option<String>,
    /// Nodes the action applies to (`"leader"`: whoever leads the group then).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<Names>,
    /// `join-all`: time from the first join to the last.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spread: Option<Dur>,
    /// `pause`, `pause-followers`: how long.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration: Option<Dur>,
    /// `slow`: shortest extra delay.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min: Option<Dur>,
    /// `slow`: longest extra delay.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max: Option<Dur>,
    /// `drift`: rate error, parts per million.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ppm: Option<i64>,
    /// `loss`: the new datagram loss probability of every link (of the links between
    /// `from` and `to` when given).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loss: Option<f64>,
    /// `lie`: the term claimed (a number, or `"max"`, the largest).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub term: Option<Budget>,
    /// `pause-followers`: how many.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<usize>,
    /// `pause-followers`: where in the list of follower voters to start.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<usize>,
    /// `cut`: sides cut from each other both ways (nodes in none form one more side).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sides: Option<Vec<Names>>,
    /// `cut`, `loss`: senders.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<Names>,
    /// `cut`, `loss`: receivers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<Names>,
    /// `cut`, `loss` with `from`/`to`: only that way.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub one_way: Option<bool>,
    /// `cut`: explicit directed links `[from, to]`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub links: Option<Vec<[String; 2]>>,
    /// `"from"`: start counting traffic; `"rates"`: report it per node and second.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub traffic: Option<String>,
    /// Measure the following expectations from here.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mark: Option<bool>,
    /// A condition that must hold within `within`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expect: Option<String>,
    /// The group of a leader condition (default: the file's group).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Longest wait for the expectation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub within: Option<Dur>,
    /// Reports the time from the last mark to the condition as this metric (ms).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metric: Option<String>,
}

/// Checker budgets and metric bounds.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// Live members declared dead that are tolerated (`"unchecked"`: only reported).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub false_dead: Option<Budget>,
    /// Leaderships lost while a quorum could hear the leader (default: unchecked).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lease_losses_with_quorum: Option<Budget>,
    /// Whether a breach of the Bully rule fails the run (default true).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bully: Option<bool>,
    /// Bounds on reported metrics.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub metric: Vec<Spanned<MetricBound>>,
}

/// A bound on one metric.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MetricBound {
    /// The metric's name as the summary prints it.
    pub name: String,
    /// Largest value that passes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    /// Smallest value that passes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
}

/// A count, or a word (`"unchecked"` for a checker budget, `"max"` for a term).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(untagged)]
pub enum Budget {
    /// At most this many.
    Count(u64),
    /// `"unchecked"`.
    Word(String),
}

/// Another run of the same file with other settings.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Variant {
    /// Suffix of its metrics and prefix of its violations.
    pub name: String,
    /// Config fields that differ from the file's.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub config: BTreeMap<String, toml::Value>,
    /// Its false-death budget, when it differs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub false_dead: Option<Budget>,
}

/// A node set: a name, a range `"a1..a9"`, a site, a role set (`voters`,
/// `candidates`, `members`), `all`, or a list of these.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(untagged)]
pub enum Names {
    /// One item.
    One(String),
    /// Their union.
    Many(Vec<String>),
}

impl Default for Names {
    fn default() -> Self {
        Names::Many(Vec::new())
    }
}

impl Names {
    /// The items.
    pub fn items(&self) -> Vec<&str> {
        match self {
            Names::One(s) => vec![s.as_str()],
            Names::Many(v) => v.iter().map(String::as_str).collect(),
        }
    }

    /// Whether it is exactly `word`.
    pub fn is(&self, word: &str) -> bool {
        self.items() == [word]
    }
}

/// A duration written as `"1.5s"`, `"200ms"`, `"750us"`, `"10ns"`, `"2m"` or `"1h"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dur(pub Duration);

impl Serialize for Dur {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&fmt_duration(self.0))
    }
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        parse_duration(&s)
            .map(Dur)
            .map_err(serde::de::Error::custom)
    }
}

/// `d` in the largest unit that writes it exactly.
pub fn fmt_duration(d: Duration) -> String {
    let ns = d.as_nanos();
    for (unit, scale) in [("s", 1_000_000_000), ("ms", 1_000_000), ("us", 1_000)] {
        if ns % scale == 0 {
            return format!("{}{unit}", ns / scale);
        }
    }
    format!("{ns}ns")
}

/// Parses `"1.5s"`, `"200ms"`, `"750us"`, `"10ns"`, `"2m"`, `"1h"` exactly.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let bad = || format!("expected a duration such as \"1.5s\" or \"200ms\", found {s:?}");
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(bad)?;
    let (num, unit) = t.split_at(split);
    let scale: u128 = match unit.trim() {
        "ns" => 1,
        "us" | "µs" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" | "min" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        _ => return Err(bad()),
    };
    let (int, frac) = num.split_once('.').unwrap_or((num, ""));
    if int.is_empty() && frac.is_empty() || frac.contains('.') {
        return Err(bad());
    }
    let int: u128 = if int.is_empty() {
        0
    } else {
        int.parse().map_err(|_| bad())?
    };
    let mut ns = int.checked_mul(scale).ok_or_else(bad)?;
    if !frac.is_empty() {
        let digits: u128 = frac.parse().map_err(|_| bad())?;
        let den = 10u128.checked_pow(frac.len() as u32).ok_or_else(bad)?;
        ns += digits * scale / den;
    }
    let ns = u64::try_from(ns).map_err(|_| bad())?;
    Ok(Duration::from_nanos(ns))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_round_trip() {
        for d in [0, 1, 999, 1_000, 200_000, 2_700_000_000, 60_000_000_000] {
            let d = Duration::from_nanos(d);
            assert_eq!(parse_duration(&fmt_duration(d)), Ok(d));
        }
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("fast").is_err());
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("1.2.3s").is_err());
    }
}
