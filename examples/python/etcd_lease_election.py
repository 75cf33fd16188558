"""An etcd3 lease-loop leader election, rewritten on the quorate package.

The etcd program (``leader_election.py server1``) puts its name under a key with a
5-second lease if the key is absent, refreshes the lease while leading, watches the
key for a DeleteEvent while following, and revokes the lease on Ctrl-C. On quorate
the lease, its renewal, the watch and the fencing token come with the campaign:

- ``leader_election``: ``node.campaign(key)`` + ``campaign.leadership(timeout)``;
- ``lease.refresh()`` loop: nothing, the node renews every third of a lease;
  ``lead.wait_lost()`` says when the leadership ended (before anyone else can lead);
- ``add_watch_callback(key)`` for DeleteEvent: the node's ``leader_changed`` events;
- ``lease.revoke()``: ``campaign.resign()``, which returns once the voters let go.

Two servers run here in one process so that the program runs to completion: server1
leads, then revokes; server2, following, sees the change and leads.

Run beside a cluster: ``pifpaf run quorate -- python etcd_lease_election.py``.
"""

import os
import random
import sys

import quorate

LEADER_KEY = "/algoexpert/leader"


def start(cluster: str, name: str) -> quorate.Node:
    node_id = (1 << 60) | random.getrandbits(32)
    node = quorate.Node.from_cluster_dir(
        cluster, node_id, metadata=name.encode(), issue_certificate=True
    )
    node.wait_joined(10.0)
    return node


def leader_election(node: quorate.Node, server_name: str):
    print(f"{server_name}: new leader election happening.")
    campaign = node.campaign(LEADER_KEY)
    lead = campaign.leadership(timeout=2.0)
    return lead is not None, campaign, lead


def wait_for_next_election(
    node: quorate.Node, server_name: str, timeout: float
) -> bool:
    events = node.events()
    holder = node.confirmed_leader(LEADER_KEY)
    if holder is None:
        return True
    while True:
        ev = events.next(timeout)
        if ev is None:
            return False
        if (
            ev["event"] == "leader_changed"
            and ev["group"] == LEADER_KEY
            and ev["leader"] != holder[0]
        ):
            print(f"{server_name}: LEADERSHIP CHANGE REQUIRED")
            return True


def main() -> None:
    cluster = sys.argv[1] if len(sys.argv) > 1 else os.environ["PIFPAF_QUORATE_DIR"]
    s1, s2 = start(cluster, "server1"), start(cluster, "server2")
    try:
        is_leader, c1, lead = leader_election(s1, "server1")
        assert is_leader and lead is not None
        print(f"server1: I am the leader (fencing token {lead.term}).")
        is_leader, c2, _ = leader_election(s2, "server2")
        print("server2: I am a follower." if not is_leader else "server2: leader?!")
        print("server1: revoking lease; no longer the leader.")
        c1.resign()
        if wait_for_next_election(s2, "server2", 10.0):
            lead2 = c2.leadership(timeout=10.0)
            assert lead2 is not None and lead2.term > lead.term
            print(f"server2: I am the leader (fencing token {lead2.term}).")
            c2.resign()
    finally:
        s1.leave()
        s2.leave()


if __name__ == "__main__":
    main()
