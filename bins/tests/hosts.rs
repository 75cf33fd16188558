//! Real hosts: five `quorate node --json` processes, each on a host of its own — a
//! network namespace with its own address (10.77.0.K) and host name (hK, in every
//! host's /etc/hosts) — joined by a Linux bridge (see `common/netns.rs`). The cluster is
//! made as an operator would: `quorate init DIR --nodes 5 --hosts h1,…,h5 --voters
//! 1,2,3`, and each node started from its own bundle, DIR/nodes/K. Operator commands
//! run on the hosts too. The test checks, in order:
//!
//! 1. convergence: every node sees the four others joined, each at its host's address;
//! 2. one leader for the group (nodes 3, 4 and 5 campaign), named by every node and
//!    confirmed by a quorum of voters (`quorate leader g --confirmed`, asked on every
//!    host);
//! 3. `kill -9` of the leader: another candidate leads with a higher term; the others
//!    report the crash, and the node restarted from its bundle rejoins;
//! 4. a partition (`ip link set t0 down` on the trunk between two bridges) that cuts
//!    off two hosts, the leader's among them: the minority leader steps down before the
//!    majority elects a new leader (the lease end its `leadership_lost` gives precedes
//!    the `ts_ms` of the new `leadership_acquired`), nothing on the minority side is
//!    elected, a confirmed query there fails for want of a quorum, and each side
//!    reports the other failed;
//! 5. heal: every node sees every other alive again (`quorate status` on every host
//!    agrees) and all name one leader, which the voters confirm;
//! 6. `quorate cert issue --id 6 --host h6` makes a bundle for a sixth host, whose
//!    node joins, is seen by all and learns the leader;
//! 7. revocation: with one node away (a non-voter, killed), `quorate cert revoke --id 6`
//!    and `quorate revoke DIR/revoked.crl`, given to one node from its host: every
//!    other node reports node 6 failed; the node away, started again, gets the list
//!    from the members it reconnects with (it keeps it in its data directory); node 6,
//!    started again from its bundle (the same certificate), is refused by each of its
//!    seeds (its stderr says `certificate revoked`) and no node sees it come back;
//!    `quorate status` lists it failed on every host that knew it (and nowhere alive),
//!    and the others name one leader, which the voters confirm.
//!
//! It needs root (namespaces, veth pairs, bridges) and `ip` (iproute2); without them it
//! fails saying so. Run it alone with `cargo test -p quorate-cli --test hosts --
//! --nocapture` to see the steps and their times; `QUORATE_HOSTS_HOLD_SECS=N` holds the
//! partition N seconds longer (the heal after a long partition).

#[allow(dead_code)] // the loopback helpers this test does not use
mod common;
#[path = "common/hosts.rs"]
mod harness;
#[path = "common/netns.rs"]
mod netns;

use std::time::{Duration, Instant};

use harness::{
    minority_with, now_ms, num, Hosts, Seen, CANDIDATES, GROUP, NODES, PORT, STEP_DOWN_SLACK_MS,
    VOTERS,
};

#[test]
fn five_hosts_elect_fail_over_split_heal_and_grow() {
    let wall = Instant::now();
    // Six hosts: the sixth gets its node's bundle only at the end.
    let mut c = Hosts::new(NODES + 1);
    let all: Vec<usize> = (1..=NODES).collect();
    let hosts: Vec<String> = all.iter().map(|&k| netns::host(k)).collect();
    let voters: Vec<String> = VOTERS.iter().map(|k| k.to_string()).collect();
    let dir = c.dir.to_str().unwrap().to_owned();
    c.operator(&[
        "init",
        &dir,
        "--nodes",
        &NODES.to_string(),
        "--hosts",
        &hosts.join(","),
        "--voters",
        &voters.join(","),
    ]);
    for k in 1..=NODES {
        let toml = std::fs::read_to_string(c.bundle(k).join("cluster.toml")).unwrap();
        assert!(toml.contains(&format!("\"h{k}:{PORT}\"")), "{toml}");
    }

    // 1. Every node, each from its own bundle on its own host, sees the four others
    // joined, at their hosts' addresses (names resolved on each host).
    for k in 1..=NODES {
        c.start(k, CANDIDATES.contains(&k));
    }
    c.wait_until("convergence: every node sees the 4 others joined", |log| {
        log.converged(&all, &[], 0)
    });
    for n in 1..=NODES {
        for (_, v) in c.log.of(n).filter(|(_, v)| v["event"] == "member_joined") {
            let m = num(v, "member") as usize;
            assert_eq!(v["addr"], format!("{}:{PORT}", netns::addr(m)), "{v}");
        }
    }

    // 2. One leader, named by every node and confirmed by the voters, asked on every
    // host of its own node.
    let (first, t1) = c.wait("a leader all five name", |log| log.successor(&all, 0, 0));
    assert!(CANDIDATES.contains(&(first as usize)));
    for k in 1..=NODES {
        c.confirm(k, k, first, t1);
    }
    c.note(&format!(
        "node {first} leads with term {t1}, confirmed on every host"
    ));

    // 3. kill -9 of the leader: another candidate leads with a higher term. The others
    // report the crash; the node restarted from its bundle rejoins and learns the
    // leader.
    let first = first as usize;
    c.kill(first);
    let killed_at = now_ms();
    let survivors: Vec<usize> = all.iter().copied().filter(|&k| k != first).collect();
    let (second, t2) = c.wait("failover after kill -9", |log| {
        log.successor(&survivors, first as u64, t1)
    });
    let elected = num(
        c.log
            .leadership(second as usize, "leadership_acquired", t2)
            .unwrap(),
        "ts_ms",
    );
    c.note(&format!(
        "node {second} leads with term {t2}, elected {} ms after the kill",
        elected.saturating_sub(killed_at)
    ));
    c.confirm(survivors[0], survivors[0], second, t2);
    c.wait_until("every survivor to report the crash", |log| {
        log.all_gone(&survivors, &[first])
    });
    let restart = c.log.events.len();
    c.start(first, CANDIDATES.contains(&first));
    c.wait_until("the restarted node to rejoin", |log| {
        log.converged(&all, &[first], restart)
    });
    let (leader, term) = c.wait("all five to name one leader again", |log| {
        log.successor(&all, 0, t1)
    });

    // 4. A partition cuts off two hosts, the leader's among them. The minority leader
    // steps down, then the majority elects one of its own; nothing is elected on the
    // minority side, where no quorum confirms a leader.
    let minority = minority_with(leader as usize);
    let majority: Vec<usize> = all
        .iter()
        .copied()
        .filter(|k| !minority.contains(k))
        .collect();
    let cut = c.log.events.len();
    c.net.partition(&minority).unwrap();
    let cut_at = now_ms();
    c.note(&format!(
        "partition: hosts {minority:?} (leader {leader}, term {term}) | hosts {majority:?}"
    ));
    // (The step-down is of the term held at the cut: `term`, or a later one should the
    // leader have lost its lease and won the group again just before.)
    let (lost, (third, t3)) = c.wait(
        "the minority leader's step-down and a majority leader",
        |log| {
            let (_, lost) = log.of(leader as usize).find(|(i, v)| {
                *i >= cut
                    && v["event"] == "leadership_lost"
                    && v["group"] == GROUP
                    && num(v, "term") >= term
            })?;
            Some((
                lost.clone(),
                log.successor(&majority, leader, num(lost, "term"))?,
            ))
        },
    );
    let term = num(&lost, "term");
    let acquired = c
        .log
        .leadership(third as usize, "leadership_acquired", t3)
        .unwrap()
        .clone();
    let (lease_end, lost_at) = (num(&lost, "lease_until_ms"), num(&acquired, "ts_ms"));
    let (lost_at, elected_at) = (num(&lost, "ts_ms"), lost_at);
    c.note(&format!(
        "node {leader}'s lease of term {term} ran out {} ms after the cut and it reported \
         the step-down ({}) {} ms later; node {third} was elected with term {t3} {} ms \
         after that lease's end",
        lease_end as i64 - cut_at as i64,
        lost["reason"],
        lost_at as i64 - lease_end as i64,
        elected_at as i64 - lease_end as i64,
    ));
    assert!(majority.contains(&(third as usize)));
    // The minority leader stepped down before the majority elected: its lease ran out,
    // as its own leadership_lost dates it, no later than the new leader's
    // leadership_acquired. (The lines' ts_ms is when each was printed: the two come as
    // little as ~20 ms apart, as the voters' promises outlast the leader's lease only by
    // the drift allowance and the margin, so a loaded machine may print the step-down
    // after the election. It is checked to follow the lease's end closely instead.)
    assert!(
        lease_end <= elected_at,
        "node {third} was elected while node {leader}'s lease ran:\n{lost}\n{acquired}"
    );
    assert_eq!(lost["reason"], "lease_expired", "{lost}");
    assert!(
        lost_at.abs_diff(lease_end) <= STEP_DOWN_SLACK_MS,
        "node {leader} reported its step-down {} ms after its lease ran out:\n{lost}",
        lost_at as i64 - lease_end as i64
    );
    c.confirm(majority[0], majority[0], third, t3);
    let asked = minority[1].to_string();
    let args = ["leader", GROUP, "--confirmed", "--node", &asked];
    let answer = c.ask(minority[1], &[&args[..], &["--timeout", "3"]].concat());
    assert!(
        answer.is_err(),
        "a quorum confirmed a leader to node {asked}, cut off from the majority: {answer:?}"
    );
    c.note(&format!(
        "node {asked}, cut off, cannot have a leader confirmed: {}",
        answer.unwrap_err()
    ));
    // Each side sees the other gone before the heal...
    c.wait_until("each side to report the other gone", |log| {
        log.all_gone(&majority, &minority) && log.all_gone(&minority, &majority)
    });
    // ... while the hosts of each side still reach one another.
    for side in [&minority, &majority] {
        for &n in side.iter() {
            for &m in side.iter().filter(|&&m| m != n) {
                let seen = c.log.last_seen(n, m);
                assert!(
                    matches!(seen, Some((Seen::Up | Seen::Suspect, _))),
                    "node {n} lost node {m} on its side of the partition: {seen:?}"
                );
            }
        }
    }
    let on_minority: Vec<(u64, u64)> = c
        .log
        .acquisitions(cut)
        .into_iter()
        .filter(|a| minority.contains(&(a.0 as usize)))
        .collect();
    assert!(
        on_minority.is_empty(),
        "elected without a quorum: {on_minority:?}"
    );

    // The partition may be held longer, to see a cluster heal after one of any length
    // (a fault's duration, not a wait for an outcome: every check waits on events).
    if let Ok(secs) = std::env::var("QUORATE_HOSTS_HOLD_SECS") {
        let secs: u64 = secs.parse().expect("QUORATE_HOSTS_HOLD_SECS is a number");
        std::thread::sleep(Duration::from_secs(secs));
        c.note(&format!("held the partition {secs} s more"));
    }
    // 5. Heal: every node sees every other alive again, and all name one leader, which
    // the voters confirm.
    c.net.heal().unwrap();
    let healed = c.log.events.len();
    c.note("healed");
    // (Each side reported the other gone: a last report of up is one since the heal.)
    c.wait_until("the cluster to reconverge", |log| {
        log.converged(&all, &[], healed)
    });
    let (leader, term) = c.wait("all five to name one leader after the heal", |log| {
        log.successor(&all, 0, t3 - 1)
    });
    for k in 1..=NODES {
        c.status_all_alive(k, k, &all);
    }
    c.confirm(minority[0], minority[0], leader, term);

    // 6. A sixth node: a certificate and bundle from the operator's directory, copied
    // to a sixth host; it joins, is seen by all and learns the leader.
    let six = NODES + 1;
    c.operator(&[
        "cert",
        "issue",
        "--dir",
        &dir,
        "--id",
        &six.to_string(),
        "--host",
        &netns::host(six),
    ]);
    let grown: Vec<usize> = (1..=six).collect();
    let joined = c.log.events.len();
    c.start(six, false);
    c.wait_until("the sixth node to join and be seen by all", |log| {
        log.converged(&grown, &[six], joined)
    });
    let now = c.wait("the sixth node to learn the leader", |log| {
        log.successor(&grown, 0, term - 1)
    });
    c.note(&format!("all six name leader {} (term {})", now.0, now.1));
    c.status_all_alive(six, six, &grown);
    c.status_all_alive(1, 1, &grown);

    // 7. Revocation of the sixth node's certificate, while one node is away: a
    // non-voter that does not lead, killed (the others report it failed).
    let away = [5, 4]
        .into_iter()
        .find(|&k| k as u64 != now.0)
        .expect("a non-voter that does not lead");
    c.kill(away);
    let present: Vec<usize> = grown.iter().copied().filter(|&k| k != away).collect();
    c.wait_until("the others to report the node away failed", |log| {
        log.all_gone(&present, &[away])
    });
    // The operator makes the list where the CA key is, and gives it to one node, from
    // that node's host; the node puts it in force and sends it to every member.
    c.operator(&["cert", "revoke", "--dir", &dir, "--id", &six.to_string()]);
    let crl = c.dir.join("revoked.crl");
    let list = std::fs::read(&crl).expect("quorate cert revoke writes DIR/revoked.crl");
    c.drain();
    let revoked = c.log.events.len();
    let giver = VOTERS[0];
    let given = giver.to_string();
    let revoke_args = ["revoke", crl.to_str().unwrap(), "--node", &given];
    let revoked_at = now_ms();
    let answer = match c.ask(giver, &revoke_args) {
        Ok(v) => v,
        Err(e) => c.fail(&format!("`quorate {revoke_args:?}` on host {giver}: {e}")),
    };
    assert_eq!(
        answer,
        serde_json::json!({ "node": giver, "number": 1, "fresh": true }),
        "`quorate {revoke_args:?}` on host {giver}"
    );
    c.note(&format!(
        "revoked node {six}'s certificate (list 1, given to node {giver})"
    ));
    // Every other node reports the revoked node failed.
    let stay: Vec<usize> = present.iter().copied().filter(|&k| k != six).collect();
    c.wait_until(
        "every other node to report the revoked node failed",
        |log| stay.iter().all(|&n| log.failed_since(n, six, revoked)),
    );
    let last_failed = stay
        .iter()
        .filter_map(|&n| {
            c.log
                .of(n)
                .filter(|(i, v)| {
                    *i >= revoked && v["event"] == "member_failed" && v["member"] == six as u64
                })
                .map(|(_, v)| num(v, "ts_ms"))
                .next()
        })
        .max()
        .unwrap();
    c.note(&format!(
        "nodes {stay:?} all reported node {six} failed within {} ms of the revocation",
        last_failed.saturating_sub(revoked_at)
    ));

    // The node away, started again, gets the list from the members it reconnects with.
    // (The revoked node is not running meanwhile: until the node away has the list, it
    // would take the revoked node's handshakes.)
    c.kill(six);
    let back = c.log.events.len();
    c.start(away, CANDIDATES.contains(&away));
    let rest: Vec<usize> = (1..=NODES).collect();
    c.wait_until("the node away to rejoin", |log| {
        log.converged(&rest, &[away], back)
    });
    let kept = c
        .bundle(away)
        .join("data")
        .join(format!("node-{away}"))
        .join("revoked.crl");
    c.poll_until(
        "the node away to get the list from the members and keep it",
        |c| {
            c.stderr_of(away).contains("revocation list applied")
                && std::fs::read(&kept).is_ok_and(|kept| kept == list)
        },
    );

    // The revoked node, started again from its bundle (the same certificate), is
    // refused by each of its seeds, with the reason...
    let toml = std::fs::read_to_string(c.bundle(six).join("cluster.toml")).unwrap();
    let toml: toml::Value = toml::from_str(&toml).unwrap();
    let seeds: Vec<String> = (1..=NODES)
        .filter(|&k| {
            let seed = format!("{}:{PORT}", netns::host(k));
            toml["seeds"]
                .as_array()
                .unwrap()
                .iter()
                .any(|s| s.as_str() == Some(&seed))
        })
        .map(|k| format!("{}:{PORT}", netns::addr(k)))
        .collect();
    assert!(!seeds.is_empty(), "no seeds in {toml}");
    c.start(six, false);
    c.poll_until("the revoked node to be refused by every seed", |c| {
        let err = c.stderr_of(six);
        seeds.iter().all(|seed| {
            err.lines().any(|l| {
                l.contains("handshake failed")
                    && l.contains("certificate revoked")
                    && l.contains(seed.as_str())
            })
        })
    });
    // ... every node that knew it lists it failed in its status, the others alive (the
    // node away, which never saw it, need not list it, but not alive)...
    for n in 1..=NODES {
        let id = n.to_string();
        let report = c.ask_until(n, &["status", "--node", &id], |v| {
            let Some(list) = v["members"].as_array() else {
                return false;
            };
            rest.iter().all(|&m| {
                list.iter()
                    .any(|x| x["id"] == m as u64 && x["state"] == "alive")
            })
        });
        let state = report["members"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["id"] == six as u64)
            .map(|x| &x["state"]);
        assert!(
            match n == away {
                true => !state.is_some_and(|s| s == "alive"),
                false => state.is_some_and(|s| s == "failed"),
            },
            "node {n} on host {n} does not list the revoked node {six} failed: {report}"
        );
    }
    // The five name one leader, which the voters confirm...
    let (leader, term) = c.wait("the five to name one leader after the revocation", |log| {
        log.successor(&rest, 0, now.1 - 1)
    });
    c.confirm(giver, giver, leader, term);
    c.note(&format!(
        "node {leader} leads with term {term} (before the revocation: node {} term {})",
        now.0, now.1
    ));
    // ... and no node saw the revoked one come back since the revocation, while it was
    // refused by every seed and all the while since.
    let up = c.seen_up(six, revoked);
    if !up.is_empty() {
        c.fail(&format!(
            "node {six} was seen again after its revocation: {up:?}"
        ));
    }
    let err = c.stderr_of(six);
    let refused_by: Vec<usize> = (1..=NODES)
        .filter(|&k| {
            let peer = format!("{}:{PORT}", netns::addr(k));
            err.lines()
                .any(|l| l.contains("certificate revoked") && l.contains(&peer))
        })
        .collect();
    c.note(&format!(
        "node {six}, started again, was refused by nodes {refused_by:?} and seen by none"
    ));

    let prefix = c.net.prefix().to_owned();
    drop(c);
    let left = netns::remains_of(&prefix);
    assert!(left.is_empty(), "left behind: {left:?}");
    eprintln!("hosts test: {:.1} s", wall.elapsed().as_secs_f64());
}
