//! Deterministic network simulator for quorate.
//!
//! Many [`quorate::Engine`]s — the very state machine the runtime drives over QUIC —
//! run in one process on virtual time, over a simulated network with latency, loss,
//! duplication, reordering and partitions, with crashes, restarts, stalled and slow
//! processes and drifting clocks. Everything random comes from one seed: the same seed
//! gives the same trace, byte for byte (see [`trace`]), on any number of threads.
//!
//! - [`sim`]: the event loop and the nodes;
//! - `node`: one simulated process (its clock, faults and network randomness);
//! - `shard`, `lookahead`, `worker`: the nodes split among threads, run side by side
//!   in lock-step windows shorter than the smallest link latency, or freely as far as
//!   the others' progress allows;
//! - [`net`]: the network model;
//! - `queue`: the event queue (frames in flight, one timer slot per node);
//! - [`scenario`]: scenarios as data (a builder of scripted steps) and their runner;
//! - [`check`]: checkers (properties that must hold) and metrics;
//! - [`catalogue`]: the named scenarios of the command line;
//! - [`elect`], [`elections`]: the election checkers and scenarios;
//! - [`file`]: scenario files (TOML), read into scenarios and written from them;
//! - [`glossary`]: what each reported metric means;
//! - [`plot`]: pictures of runs, sweeps and benchmarks (SVG);
//! - [`why`]: the causes of a suspicion, a death or a leadership, read from a trace;
//! - [`bench`]: the benchmark table.

pub mod bench;
pub mod bully;
pub mod catalogue;
pub mod check;
mod debug_json;
pub mod elect;
pub mod elections;
pub mod file;
pub mod glossary;
pub mod hazards;
mod lookahead;
pub mod net;
mod node;
pub mod plot;
mod queue;
pub mod scenario;
mod shard;
pub mod sim;
pub mod trace;
pub mod views;
pub mod why;
mod worker;

pub use check::{Checker, Report};
pub use net::{Cut, Dist, Link, Net, NodeIdx};
pub use scenario::{Action, Cond, Outcome, Scenario, Step};
pub use sim::{Record, Sim};

/// The command that replays a run of a named scenario.
pub fn replay_command(scenario: &str, nodes: usize, seed: u64, loss: Option<f64>) -> String {
    let mut cmd = format!("quorate-netsim run {scenario} --nodes {nodes} --seed {seed}");
    if let Some(l) = loss {
        cmd.push_str(&format!(" --loss {l}"));
    }
    cmd
}

/// The outcome as one JSON object: the standard fields, then the scenario's metrics.
pub fn outcome_json(o: &Outcome, loss: Option<f64>) -> serde_json::Value {
    let mut m = serde_json::Map::new();
    m.insert("scenario".into(), o.scenario.clone().into());
    m.insert("nodes".into(), o.nodes.into());
    m.insert("seed".into(), o.seed.into());
    let verdict = if o.violations.is_empty() {
        "PASS"
    } else {
        "FAIL"
    };
    m.insert("verdict".into(), verdict.into());
    m.insert(
        "loss".into(),
        o.metrics.get("loss").cloned().unwrap_or(loss.into()),
    );
    m.insert("sim_ms".into(), o.sim_ms.into());
    m.insert("wall_ms".into(), o.wall_ms.into());
    m.insert("threads".into(), o.threads.into());
    m.insert("trace_hash".into(), format!("{:016x}", o.trace_hash).into());
    m.insert("violations".into(), o.violations.clone().into());
    for (k, v) in o.metrics.iter().filter(|(k, _)| *k != "loss") {
        m.insert(k.clone(), v.clone());
    }
    let secs = (o.sim_ms as f64 / 1000.0).max(1e-9) * o.nodes.max(1) as f64;
    m.insert(
        "avg_msgs_per_node_s".into(),
        (((o.net.datagrams + o.net.streams) as f64 / secs * 100.0).round() / 100.0).into(),
    );
    m.insert(
        "avg_bytes_per_node_s".into(),
        ((o.net.bytes as f64 / secs).round()).into(),
    );
    m.insert(
        "node_s_per_wall_s".into(),
        ((o.speed() * 10.0).round() / 10.0).into(),
    );
    if let (Some((sim, wall)), Some(speed)) = (o.steady, o.steady_speed()) {
        m.insert("steady_sim_ms".into(), sim.into());
        m.insert("steady_wall_ms".into(), wall.into());
        m.insert(
            "steady_node_s_per_wall_s".into(),
            ((speed * 10.0).round() / 10.0).into(),
        );
    }
    serde_json::Value::Object(m)
}
