//! What every metric of a run's summary means, one line each (`quorate-netsim explain`).

/// Every metric a built-in scenario or the summary reports, with its meaning.
pub const METRICS: &[(&str, &str)] = &[
    ("verdict", "PASS when no checker fired and every expectation held, else FAIL"),
    ("scenario", "the scenario's name"),
    ("nodes", "cluster size (twins, second processes of a node, not counted)"),
    ("seed", "the seed every random choice of the run derives from; the same seed replays the same run"),
    ("loss", "datagram loss probability of every link during the scenario's main phase (null: none set)"),
    ("sim_ms", "simulated time the run covered, ms"),
    ("wall_ms", "real time the run took, ms"),
    ("threads", "threads that ran the simulation (the results are the same for any number)"),
    ("trace_hash", "hash of every delivery, event and action in order: equal hashes mean identical runs"),
    ("violations", "what the checkers and the file's expectations found wrong (empty when PASS)"),
    ("avg_msgs_per_node_s", "datagrams and stream messages sent per node per simulated second, whole run"),
    ("avg_bytes_per_node_s", "bytes sent per node per simulated second, whole run"),
    ("node_s_per_wall_s", "simulator speed: simulated node-seconds per real second"),
    ("steady_sim_ms", "simulated time of the steady phase (after convergence), ms"),
    ("steady_wall_ms", "real time the steady phase took, ms"),
    ("steady_node_s_per_wall_s", "simulator speed in the steady phase: node-seconds per real second"),
    ("msgs_per_node_s", "messages sent per node per second between traffic = \"from\" and \"rates\""),
    ("bytes_per_node_s", "bytes sent per node per second between traffic = \"from\" and \"rates\""),
    ("converged_ms", "time until every running node saw exactly the running nodes as live, ms"),
    ("first_detect_ms", "time from the crash until the first node stopped seeing the crashed node as live, ms"),
    ("all_detect_ms", "time from the crash until no running node saw the crashed node as live, ms"),
    ("heal_ms", "time from healing the partition until every view was complete again, ms"),
    ("restart_ms", "time from the restart until every view was complete again, ms"),
    ("pause_ms", "time from the pause until every view was complete again, ms"),
    ("one_way_ms", "time from healing the one-way cut until every view was complete again, ms"),
    ("partial_ms", "time from healing the partial cut until every view was complete again, ms"),
    ("false_suspect", "healthy, reachable members some node suspected (suspicions later refuted count too)"),
    ("false_dead", "healthy, reachable members some node declared failed: the number that matters"),
    ("suspect_disturbed", "suspicions of healthy members while a partition was in force or just healed (expected)"),
    ("dead_disturbed", "failure declarations of healthy members while a partition was in force or just healed"),
    ("false_suspect_lifeguard", "false_suspect with Lifeguard on"),
    ("false_suspect_plain", "false_suspect with Lifeguard off (plain SWIM)"),
    ("false_dead_lifeguard", "false_dead with Lifeguard on"),
    ("false_dead_plain", "false_dead with Lifeguard off (plain SWIM)"),
    ("suspect_reduction", "how many times fewer false suspicions Lifeguard raised than plain SWIM"),
    ("elected_ms", "time from the first campaign until the group had a leader, ms"),
    ("leader_changes", "leaderships that began during the run (the first election included)"),
    ("leaders_max_concurrent", "most nodes whose leaderships overlapped in real time: 1 is safe, 2 or more a split brain"),
    ("terms_monotonic", "whether every new leadership's term (fencing token) was above every earlier one"),
    ("leader_time_pct", "share of the time from the first election on during which the group had a leader, %"),
    ("failover_ms", "longest time the group was without a leader, counted from when the fault in force healed, ms (gaps that end while loss or a cut is still in force are not counted)"),
    ("liveness_bound_ms", "the longest leaderless gap the liveness check allows with this config, ms"),
    ("crash_failover_ms", "worst time from a leader's crash until a new leadership began, ms"),
    ("isolated_failover_ms", "time from the leader's isolation on a minority until a new leader, ms"),
    ("partial_failover_ms", "time from the partial partition until a node other than the cut one led, ms"),
    ("mute_failover_ms", "time from the leader going mute (sends nothing) until a new leader, ms"),
    ("deaf_failover_ms", "time from the leader going deaf (hears nothing) until a new leader, ms"),
    ("pause_failover_ms", "time from the leader's stall until a new leadership, ms"),
    ("after_lie_failover_ms", "time from the real leader's crash, after a member lied about leading, until a new leader, ms"),
    ("false_dead_1pct", "bench: healthy members declared failed in the steady phase at 1% datagram loss"),
    ("false_dead_10pct", "bench: healthy members declared failed in the steady phase at 10% datagram loss"),
    ("steady_wall_s", "bench: real time the steady phase of the first run took, s"),
    ("wall_s", "bench: real time all of the row's runs took, s"),
    ("lease_losses_with_quorum", "leaderships lost while a quorum of voters could still hear the leader"),
    ("bully_violations", "leaderships won while a lower-id candidate, settled and campaigning, could reach a quorum of voters"),
    ("bully_breaches_one_way_links", "bully_violations explained by a one-way link (not counted as failures)"),
    ("duplicates_reported", "nodes that reported another process running with their id"),
    ("duplicates_seen_by_both", "duplicate-id conflicts that both processes reported"),
];

/// The meaning of metric `name`: a known metric, one with a run's suffix
/// (`false_dead_plain`), or a time a scenario file measures (`*_ms`).
pub fn meaning(name: &str) -> Option<String> {
    if let Some((_, m)) = METRICS.iter().find(|(k, _)| *k == name) {
        return Some((*m).to_owned());
    }
    for (at, _) in name.rmatch_indices('_') {
        let (base, run) = (&name[..at], &name[at + 1..]);
        if let Some((_, m)) = METRICS.iter().find(|(k, _)| *k == base) {
            return Some(format!("{m} (in the run {run:?})"));
        }
    }
    name.ends_with("_ms").then(|| {
        "time from the last mark to the expectation that names this metric, ms \
         (set by the scenario file)"
            .to_owned()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffixes_and_file_metrics() {
        assert!(meaning("false_dead").is_some());
        assert!(meaning("converged_ms_plain").unwrap().contains("plain"));
        assert!(meaning("gateway_failover_ms").unwrap().contains("file"));
        assert_eq!(meaning("nonsense"), None);
    }
}
