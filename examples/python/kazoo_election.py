"""kazoo's ``Election(path, identifier).run(func)`` on the quorate package.

kazoo::

    election = zk_client.Election('/test_zk/path_of_interest', 'test-election')
    def leader_func():
        print('Election Completed...!')
    election.run(leader_func)

quorate: the election is a campaign for a group's leadership, granted by a quorum of
the cluster's voters; ``run`` is a campaign, a wait for the leadership, the function,
then a resignation. Unlike kazoo, the leadership comes with a fencing token (its
term) and a deadline, and ``lead.wait_lost()`` says when it ended.

Run beside a cluster: ``pifpaf run quorate -- python kazoo_election.py`` (or give a
cluster directory: ``python kazoo_election.py ./mycluster``).
"""

import os
import random
import sys

import quorate


def run(node: quorate.Node, path: str, func) -> None:
    """kazoo's ``Election(path).run(func)``: campaign, lead, call, resign."""
    campaign = node.campaign(path)
    lead = campaign.leadership()  # blocks until elected (Ctrl-C interrupts)
    try:
        func(lead)
    finally:
        campaign.resign()  # returns once the voters released the lease


def leader_func(lead: quorate.Leadership) -> None:
    print("Election Completed...!", f"(term {lead.term})")


def main() -> None:
    cluster = sys.argv[1] if len(sys.argv) > 1 else os.environ["PIFPAF_QUORATE_DIR"]
    # A member of its own, with a certificate from the cluster CA (the CA key is in
    # the cluster directory here; on a real host, use the node's own bundle).
    node_id = (1 << 60) | random.getrandbits(32)
    with quorate.Node.from_cluster_dir(
        cluster, node_id, issue_certificate=True
    ) as node:
        node.wait_joined(10.0)
        run(node, "/test_zk/path_of_interest", leader_func)
        print("contenders now:", node.candidates("/test_zk/path_of_interest"))


if __name__ == "__main__":
    main()
