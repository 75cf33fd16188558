"""quorate: embedded cluster membership and leader election.

Nodes find each other with SWIM gossip over QUIC, authenticate each other with
mutual TLS under one cluster CA, share small metadata, form named groups with
per-member capabilities (as in tooz), and elect one leader per group with
quorum-acknowledged leases: every leadership carries a fencing token (its term)
higher than every earlier one, and no two nodes lead a group at the same instant.

Tutorial
--------

Make a cluster directory (CA, node certificates, ``cluster.toml``) once, as
``quorate init`` or ``python -m quorate init`` do::

    import quorate

    quorate.init_cluster("./mycluster", nodes=3, base_port=7101, preset="local")

Start a node (in each process, or several in one)::

    with quorate.Node.from_cluster_dir("./mycluster", 1) as node:
        print(node.members())               # [Member(id=1, ...), ...]
        for event in node.events():         # dicts as `quorate node --json` prints
            print(event["event"], event)    # "member_joined", "leader_changed", ...
            break

A node that is not listed in ``cluster.toml`` (a worker, a tooz coordinator) can
join where the CA key is at hand: ``Node.from_cluster_dir(dir, 42,
issue_certificate=True)`` issues its certificate in memory.

Groups, as in tooz::

    node.create_group("workers")
    node.join_group("workers", b"gpu=1")
    node.group_members("workers")           # {1: b"gpu=1"}

Leader election (the cluster names its voters; a majority is a quorum)::

    with node.campaign("scheduler") as campaign:
        lead = campaign.leadership(timeout=10.0)
        if lead is not None:
            do_work(fencing_token=lead.term)  # stop when lead.is_valid() turns False

Locks on the same leases::

    with node.lock("disk") as guard:
        write(fencing_token=guard.fencing_token)

Every blocking call releases the GIL and can be interrupted with Ctrl-C;
``quorate.aio`` has the asyncio forms. Errors are subclasses of
:class:`QuorateError`. Leaving the ``with`` block (or ``node.leave()``) departs
gracefully: peers report ``member_left``, a leader hands over at once.
"""

from __future__ import annotations

from ._quorate import (
    AlreadyJoined,
    BadGroupName,
    Campaign,
    CampaignEnded,
    CampaignError,
    EventStream,
    GroupAlreadyExists,
    GroupError,
    GroupNotCreated,
    GroupNotEmpty,
    GroupStateTooLarge,
    JoinTimeout,
    LeaderQueryError,
    Leadership,
    Lock,
    LockError,
    LockGuard,
    LockLost,
    LockRefused,
    LockTimeout,
    Member,
    MetadataError,
    Node,
    NodeStopped,
    NotJoined,
    QuorateError,
    StartError,
    SyncError,
    TooManyGroups,
    __version__,
    init_cluster,
)

__all__ = [
    "AlreadyJoined",
    "BadGroupName",
    "Campaign",
    "CampaignEnded",
    "CampaignError",
    "EventStream",
    "GroupAlreadyExists",
    "GroupError",
    "GroupNotCreated",
    "GroupNotEmpty",
    "GroupStateTooLarge",
    "JoinTimeout",
    "LeaderQueryError",
    "Leadership",
    "Lock",
    "LockError",
    "LockGuard",
    "LockLost",
    "LockRefused",
    "LockTimeout",
    "Member",
    "MetadataError",
    "Node",
    "NodeStopped",
    "NotJoined",
    "QuorateError",
    "StartError",
    "SyncError",
    "TooManyGroups",
    "__version__",
    "init_cluster",
]
