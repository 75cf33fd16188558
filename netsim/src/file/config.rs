//! The `[config]` table: a preset (`lan`, `wan`, `local`, `edge`) and any field of
//! [`quorate::Config`] by name, read and written as TOML values.

use std::time::Duration;

use quorate::election::lease::UnsafeVariant;
use quorate::Config;
use toml::Value;

use super::format::{fmt_duration, parse_duration};

/// The presets by name.
pub const PRESETS: &[&str] = &["lan", "wan", "local", "edge"];

/// The preset named `name`.
pub fn preset(name: &str) -> Option<Config> {
    Some(match name {
        "lan" => Config::lan(),
        "wan" => Config::wan(),
        "local" => Config::local(),
        "edge" => Config::edge(),
        _ => return None,
    })
}

fn dur(v: &Value) -> Result<Duration, String> {
    let s = v
        .as_str()
        .ok_or("expected a duration string such as \"200ms\"")?;
    parse_duration(s)
}

fn int<T: TryFrom<i64>>(v: &Value) -> Result<T, String> {
    let i = v.as_integer().ok_or("expected an integer")?;
    T::try_from(i).map_err(|_| format!("{i} is out of range"))
}

fn bool_(v: &Value) -> Result<bool, String> {
    v.as_bool()
        .ok_or_else(|| "expected true or false".to_owned())
}

fn float(v: &Value) -> Result<f64, String> {
    v.as_float()
        .or_else(|| v.as_integer().map(|i| i as f64))
        .ok_or_else(|| "expected a number".to_owned())
}

fn string(v: &Value) -> Result<String, String> {
    v.as_str()
        .map(str::to_owned)
        .ok_or_else(|| "expected a string".to_owned())
}

fn opt_dur(v: &Value) -> Result<Option<Duration>, String> {
    match v.as_str() {
        Some("none") => Ok(None),
        _ => dur(v).map(Some),
    }
}

fn variant(v: &Value) -> Result<Option<UnsafeVariant>, String> {
    let s = v.as_str().ok_or("expected a variant name or \"none\"")?;
    if s == "none" {
        return Ok(None);
    }
    UnsafeVariant::from_name(s).map(Some).ok_or_else(|| {
        let names: Vec<_> = UnsafeVariant::ALL.iter().map(|v| v.name()).collect();
        format!("unknown variant {s:?}; known: {}", names.join(", "))
    })
}

fn v_dur(d: &Duration) -> Value {
    Value::String(fmt_duration(*d))
}
fn v_int<T: Copy + TryInto<i64>>(i: &T) -> Value {
    Value::Integer((*i).try_into().unwrap_or(i64::MAX))
}
fn v_bool(b: &bool) -> Value {
    Value::Boolean(*b)
}
fn v_float(f: &f64) -> Value {
    Value::Float(*f)
}
#[allow(clippy::ptr_arg)] // called with &String by the macro
fn v_string(s: &String) -> Value {
    Value::String(s.clone())
}
fn v_opt_dur(d: &Option<Duration>) -> Value {
    d.map_or(Value::String("none".into()), |d| v_dur(&d))
}
fn v_variant(v: &Option<UnsafeVariant>) -> Value {
    Value::String(v.map_or("none", UnsafeVariant::name).to_owned())
}

macro_rules! fields {
    ($($name:literal => $($f:ident).+ : $read:ident, $write:ident;)*) => {
        /// Every field's name, in the order `show` writes them.
        pub const FIELDS: &[&str] = &[$($name),*];

        /// Field `name` of `c` as a TOML value.
        pub fn get(c: &Config, name: &str) -> Option<Value> {
            match name {
                $($name => Some($write(&c.$($f).+)),)*
                _ => None,
            }
        }

        /// Sets field `name` of `c` from `v`.
        pub fn set(c: &mut Config, name: &str, v: &Value) -> Result<(), String> {
            match name {
                $($name => c.$($f).+ = $read(v)?,)*
                _ => return Err(format!(
                    "unknown config field {name:?}; known: preset, {}",
                    FIELDS.join(", ")
                )),
            }
            Ok(())
        }
    };
}

fields! {
    "cluster_name" => cluster_name: string, v_string;
    "probe_interval" => probe_interval: dur, v_dur;
    "probe_timeout" => probe_timeout: dur, v_dur;
    "indirect_checks" => indirect_checks: int, v_int;
    "suspicion_mult" => suspicion_mult: int, v_int;
    "suspicion_max_mult" => suspicion_max_mult: int, v_int;
    "fallback_ping" => fallback_ping: bool_, v_bool;
    "lifeguard" => lifeguard: bool_, v_bool;
    "awareness_max" => awareness_max: int, v_int;
    "retransmit_mult" => retransmit_mult: int, v_int;
    "gossip_interval" => gossip_interval: dur, v_dur;
    "gossip_nodes" => gossip_nodes: int, v_int;
    "gossip_to_the_dead" => gossip_to_the_dead: dur, v_dur;
    "push_pull_interval" => push_pull_interval: dur, v_dur;
    "reconnect_interval" => reconnect_interval: dur, v_dur;
    "connection_idle" => connection_idle: dur, v_dur;
    "join_retry_interval" => join_retry_interval: dur, v_dur;
    "dead_retention" => dead_retention: dur, v_dur;
    "left_retention" => left_retention: dur, v_dur;
    "max_members" => max_members: int, v_int;
    "max_metadata_bytes" => max_metadata_bytes: int, v_int;
    "max_datagram_bytes" => max_datagram_bytes: int, v_int;
    "max_stream_bytes" => max_stream_bytes: int, v_int;
    "max_broadcasts" => max_broadcasts: int, v_int;
    "max_pending_indirect" => max_pending_indirect: int, v_int;
    "max_events" => max_events: int, v_int;
    "max_groups" => max_groups: int, v_int;
    "max_group_state_bytes" => max_group_state_bytes: int, v_int;
    "max_barriers" => max_barriers: int, v_int;
    "lease" => election.timing.lease: dur, v_dur;
    "renew_interval" => election.timing.renew_interval: dur, v_dur;
    "drift" => election.timing.drift: float, v_float;
    "margin" => election.timing.margin: dur, v_dur;
    "rank_backoff" => election.timing.rank_backoff: dur, v_dur;
    "round_timeout" => election.timing.round_timeout: dur, v_dur;
    "quarantine" => election.quarantine: dur, v_dur;
    "election_max_groups" => election.max_groups: int, v_int;
    "preempt_after" => election.preempt_after: opt_dur, v_opt_dur;
    "break" => election.unsafe_variant: variant, v_variant;
}

/// The fields of `c` that differ from `base`, in [`FIELDS`] order.
pub fn diff(c: &Config, base: &Config) -> Vec<(&'static str, Value)> {
    FIELDS
        .iter()
        .filter_map(|&f| {
            let v = get(c, f)?;
            (get(base, f) != Some(v.clone())).then_some((f, v))
        })
        .collect()
}

/// The preset `c` differs least from, and the fields that differ.
pub fn closest(c: &Config) -> (&'static str, Vec<(&'static str, Value)>) {
    let mut best: Option<(&'static str, Vec<_>)> = None;
    for &p in PRESETS {
        let Some(base) = preset(p) else { continue };
        let d = diff(c, &base);
        if best.as_ref().map_or(true, |b| d.len() < b.1.len()) {
            best = Some((p, d));
        }
    }
    best.unwrap_or(("lan", Vec::new()))
}
