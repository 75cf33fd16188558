"""Stubs of the compiled extension ``quorate._quorate`` (re-exported by ``quorate``).

Every blocking method releases the GIL while it waits, and waits in short slices so
that Ctrl-C (``KeyboardInterrupt``) interrupts it; an interrupted operation is
cancelled (a lock being waited for is not taken). Timeouts are in seconds; ``None``
means no limit. Every object may be used from several threads at once.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from types import TracebackType
from typing import Any, Literal, Protocol, final

from typing_extensions import Self

__version__: str

_StrPath = str | os.PathLike[str]
_Event = dict[str, Any]
"""One event, named and shaped as ``quorate node --json`` prints it.

Every event has ``ts_ms`` (Unix ms), ``node`` (the id of the node that saw it) and
``event`` (its kind), plus per kind:

- ``member_joined``, ``member_alive``, ``member_updated``: ``member``, ``addr``,
  ``incarnation``, ``meta`` (text: UTF-8 or hex) and ``metadata`` (bytes);
- ``member_suspect``, ``member_failed``, ``member_left``: ``member``, ``incarnation``;
- ``duplicate_node``: ``addr``, ``newcomer``;
- ``group_created``, ``group_deleted``: ``group``;
- ``group_joined``, ``capabilities_updated``: ``group``, ``member``,
  ``capabilities`` (bytes); ``group_left``: ``group``, ``member``;
- ``leader_changed``: ``group``, ``leader`` (a node id or ``None``), ``term``;
- ``leadership_acquired``, ``leadership_renewed`` (with ``renewals=True``):
  ``group``, ``term``, ``lease_until_ms``;
- ``leadership_lost``: ``group``, ``term``, ``reason`` (``"lease_expired"`` or
  ``"resigned"``), ``lease_until_ms``.
"""

class _Cancel(Protocol):
    def is_set(self) -> bool: ...

def init_cluster(
    dir: _StrPath,
    *,
    nodes: int = 3,
    voters: list[int] | None = None,
    base_port: int = 7101,
    preset: Literal["local", "lan", "wan"] = "lan",
    name: str = "quorate",
    hosts: list[str] | None = None,
    force: bool = False,
) -> str:
    """Write a cluster directory as ``quorate init`` does; return its cluster.toml path.

    The directory gets the CA (its key apart, in ``DIR/ca/``), ``node-K.pem`` and
    ``node-K.key`` for every node, ``client.pem``/``client.key``, ``cluster.toml``
    and one bundle per node (``DIR/nodes/K/``). Node K listens on
    ``127.0.0.1:(base_port + K - 1)`` (with ``hosts``: on the K-th host at
    ``base_port``); the seeds are the first three nodes; ``voters`` defaults to the
    first three nodes.

    Raises ``ValueError`` on bad arguments and ``QuorateError`` when the directory
    cannot be written or already holds a cluster (unless ``force``).
    """

@final
class Member:
    """A member as a node sees it (a snapshot: it does not change)."""

    @property
    def id(self) -> int:
        """The member's node id."""
    @property
    def addr(self) -> str:
        """Where it listens, as ``"IP:PORT"``."""
    @property
    def state(self) -> Literal["alive", "suspect", "failed", "left"]:
        """Its state."""
    @property
    def incarnation(self) -> int:
        """Its incarnation (raised by the member to refute a suspicion or publish)."""
    @property
    def metadata(self) -> bytes:
        """The metadata it publishes (empty until known)."""
    def __eq__(self, other: object, /) -> bool: ...
    def __hash__(self) -> int: ...

@final
class EventStream:
    """A subscription to a node's events (see :data:`_Event` for their shapes).

    Each subscriber has a bounded buffer: one that falls behind loses its oldest
    events (counted by :attr:`lagged`); the node never waits for it. Iterating
    blocks for each event and ends once the node has stopped.
    """

    def next(self, timeout: float | None = None) -> _Event | None:
        """Return the next event, waiting at most ``timeout`` seconds.

        Returns ``None`` on timeout; raises :class:`NodeStopped` once the node has
        stopped and every event was read.
        """
    @property
    def lagged(self) -> int:
        """Events this subscriber lost because it fell behind."""
    @property
    def closed(self) -> bool:
        """Whether the node has stopped and every event was read."""
    def __iter__(self) -> Iterator[_Event]: ...
    def __next__(self) -> _Event: ...

@final
class Node:
    """A running quorate node.

    Used as a context manager, it leaves the cluster gracefully on exit. After
    :meth:`leave` or :meth:`shutdown`, every method raises :class:`NodeStopped`
    (the properties :attr:`id`, :attr:`local_addr` and :attr:`running` stay readable).
    """

    @staticmethod
    def from_cluster_dir(
        dir: _StrPath,
        node_id: int,
        *,
        listen: str | None = None,
        seeds: list[str] | None = None,
        preset: Literal["local", "lan", "wan"] | None = None,
        metadata: bytes = b"",
        data_dir: _StrPath | None = None,
        issue_certificate: bool = False,
        advertise: str | None = None,
        heartbeat_timeout: float | None = None,
    ) -> Node:
        """Start node ``node_id`` of the cluster directory ``dir`` (``quorate init``'s).

        Its identity is ``DIR/node-K.pem``, ``DIR/node-K.key`` and ``DIR/ca.pem``;
        when they are missing and ``issue_certificate`` is set, a certificate is
        issued in memory with the CA key in ``DIR/ca/ca.key`` (for throwaway members
        not listed in ``cluster.toml``). ``listen`` defaults to the node's address in
        ``cluster.toml`` (``"127.0.0.1:0"``, a free port, when it is not listed),
        ``seeds`` and ``preset`` to the file's, ``data_dir`` to ``DIR/data/node-K``
        for listed nodes (none otherwise). Addresses are ``HOST:PORT`` with an IP or
        a host name. ``heartbeat_timeout`` (seconds, > 0) arms the application
        watchdog: see :meth:`heartbeat`. Raises :class:`StartError` with the
        reason, ``ValueError`` on a bad ``heartbeat_timeout``.
        """
    @staticmethod
    def start(
        node_id: int,
        listen: str,
        *,
        cert_pem: _StrPath,
        key_pem: _StrPath,
        ca_pem: _StrPath,
        seeds: list[str] = ...,
        voters: list[int] = ...,
        cluster_name: str = "quorate",
        preset: Literal["local", "lan", "wan"] = "lan",
        metadata: bytes = b"",
        data_dir: _StrPath | None = None,
        advertise: str | None = None,
        heartbeat_timeout: float | None = None,
    ) -> Node:
        """Start node ``node_id`` from explicit parameters (PEM file paths).

        ``listen`` is ``HOST:PORT`` (port 0 picks a free one); ``voters`` names the
        voting nodes (the same on every node; empty: elections off);
        ``heartbeat_timeout`` arms the application watchdog (see :meth:`heartbeat`).
        Raises :class:`StartError`, ``ValueError`` on a bad ``heartbeat_timeout``.
        """
    @property
    def id(self) -> int:
        """This node's id."""
    @property
    def local_addr(self) -> str:
        """The address the node's socket is bound to, as ``"IP:PORT"``."""
    @property
    def running(self) -> bool:
        """Whether the node runs (not left or shut down through this object)."""
    @property
    def heartbeat_timeout(self) -> float | None:
        """The application watchdog's timeout in seconds (``None``: no watchdog)."""
    def heartbeat(self) -> bool:
        """Tell the application watchdog that this program is alive; never waits.

        SWIM proves the node's runtime alive, not the application above it. With
        ``heartbeat_timeout`` set, call this at least that often: when the
        application stays silent longer, the node leaves every group it joined and
        resigns every campaign, leadership and lock, as a failed node would, while
        staying a member of the cluster (tooz's session timeout). Returns ``False``
        when the watchdog had expired since the last call (join and campaign again
        to take part), ``True`` otherwise (always, without a watchdog).
        """
    def advertised_addr(self) -> str:
        """Return the address peers know this node by."""
    def members(self) -> list[Member]:
        """Return the member list as this node sees it (itself included), by id."""
    def member(self, id: int) -> Member | None:
        """Return one member's record in this node's view, or ``None``."""
    def set_metadata(self, metadata: bytes) -> None:
        """Publish new metadata. Raises :class:`MetadataError` when too large."""
    def events(self, *, renewals: bool = False) -> EventStream:
        """Subscribe to this node's events.

        The first call receives every event since the node started; later calls see
        events from then on. ``renewals``: also report ``leadership_renewed``.
        """
    def create_group(self, group: str) -> None:
        """Create ``group`` (tooz ``create_group``).

        Raises :class:`GroupAlreadyExists`, :class:`BadGroupName`,
        :class:`TooManyGroups`.
        """
    def delete_group(self, group: str) -> None:
        """Delete ``group``; raises :class:`GroupNotEmpty` while it has members."""
    def join_group(self, group: str, capabilities: bytes = b"") -> None:
        """Join ``group`` with ``capabilities``.

        Raises :class:`GroupNotCreated`, :class:`AlreadyJoined`.
        """
    def leave_group(self, group: str) -> None:
        """Leave ``group``; raises :class:`NotJoined`, :class:`GroupNotCreated`."""
    def update_capabilities(self, group: str, capabilities: bytes) -> None:
        """Replace this node's capabilities in ``group``."""
    def groups(self) -> list[str]:
        """Return every existing group, in name order (a snapshot)."""
    def group_members(self, group: str) -> dict[int, bytes]:
        """Return the members of ``group`` and their capabilities, by node id.

        Raises :class:`GroupNotCreated`.
        """
    def member_capabilities(self, group: str, member: int) -> bytes:
        """Return one member's capabilities in ``group``.

        Raises :class:`GroupNotCreated` or :class:`NotJoined`.
        """
    def campaign(self, group: str) -> Campaign:
        """Run for the leadership of ``group`` (any name, created or not).

        Raises :class:`CampaignError` (elections off, bad name, already running).
        """
    def leader(self, group: str) -> tuple[int, int] | None:
        """Return ``(leader id, term)`` of ``group`` as gossip says (a hint) or None."""
    def confirmed_leader(self, group: str) -> tuple[int, int] | None:
        """Return ``(leader id, term)`` of ``group`` as a quorum of voters confirms it.

        ``None`` when nobody leads. Raises :class:`LeaderQueryError` when no quorum
        answers in time.
        """
    def candidates(self, group: str) -> list[int]:
        """Return the live candidates for ``group``'s leadership, lowest id first."""
    def lock(self, name: str) -> Lock:
        """Return the lock ``name`` (election group ``lock/<name>``)."""
    def wait_joined(self, timeout: float) -> None:
        """Wait until a seed has answered this node's join, at most ``timeout`` s.

        Returns at once for a node started without seeds. Raises
        :class:`JoinTimeout` naming the seeds (the node keeps retrying them).
        """
    def sync(self, timeout: float = 5.0) -> None:
        """Synchronise with a quorum of voters (read-your-writes across nodes).

        Once it returns, this node's snapshots (:meth:`groups`,
        :meth:`group_members`, :meth:`members`, ...) hold every group write that
        any node completed before the call began. Raises :class:`SyncError` when no
        quorum answered within ``timeout`` seconds, or without voters.
        """
    def stats(self) -> dict[str, int]:
        """Return the protocol's and the transport's counters, by name."""
    def metrics(self) -> dict[str, int]:
        """Return every counter and gauge of the node, by name (asks the node)."""
    def leave(self) -> None:
        """Leave gracefully (peers see ``member_left``) and stop.

        A leader resigns first, so another candidate takes over at once. Waits under
        way in other threads raise :class:`NodeStopped`.
        """
    def shutdown(self) -> None:
        """Stop at once without a word (peers detect a failure)."""
    def __enter__(self) -> Self: ...
    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool: ...

@final
class Campaign:
    """A running candidacy for one group's leadership (:meth:`Node.campaign`).

    It runs until :meth:`resign`, until it is garbage-collected (which resigns
    without waiting) or until the node stops. As a context manager it resigns on
    exit.
    """

    @property
    def group(self) -> str:
        """The group this campaign runs for."""
    def leadership(self, timeout: float | None = None) -> Leadership | None:
        """Wait until this node leads the group; return the leadership.

        Returns at once when it leads now; ``None`` when ``timeout`` seconds passed
        first. Raises :class:`CampaignEnded` when the campaign was resigned or the
        node stopped. After a leadership is lost the campaign goes on, and a later
        call waits for the next one.
        """
    def is_leader(self) -> bool:
        """Whether this node leads the group now (its lease is running).

        ``False`` while another thread waits in :meth:`leadership` or :meth:`resign`.
        """
    def resign(self) -> bool:
        """Stop running; a leader steps down and releases its voters first.

        Returns once a quorum of voters confirmed the release (when they do not
        within two round timeouts, once this node stepped down all the same):
        ``True``, or ``False`` when the campaign had ended.
        """
    def __enter__(self) -> Self: ...
    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool: ...

@final
class Leadership:
    """One leadership of a group by this node: its fencing token and its lease."""

    @property
    def group(self) -> str:
        """The group led."""
    @property
    def term(self) -> int:
        """The fencing token, higher than every earlier leadership's of the group."""
    @property
    def deadline(self) -> float | None:
        """The end of the current lease on the ``time.monotonic()`` clock.

        Pushed back by every renewal; after the leadership ended, the last one seen;
        ``None`` once resigned through this object.
        """
    @property
    def remaining(self) -> float:
        """Seconds until the current lease ends (0.0 once it ended)."""
    def is_valid(self) -> bool:
        """Whether this leadership still holds: not ended, lease running."""
    def wait_lost(self, timeout: float | None = None) -> bool:
        """Wait until this leadership ends; return whether it did within ``timeout``.

        When it returns ``True`` no other node can lead yet: stop acting as leader.
        """
    def resign(self) -> bool:
        """Step down and end the campaign; ``False`` when resigned already."""

@final
class Lock:
    """A named lock of the cluster (:meth:`Node.lock`).

    Held by at most one node at any instant, with a fencing token that rises with
    every holder; waiting nodes are served lowest id first. Not reentrant: on one
    node, a second acquisition waits for the first guard's release as another
    node's would. ``with node.lock("x") as guard:`` waits as long as it takes and
    releases on exit; threads may share a ``Lock`` for that (as a
    :class:`threading.Lock`), but one thread entering it twice raises
    :class:`LockRefused`.
    """

    @property
    def name(self) -> str:
        """The lock's name."""
    def holder(self) -> tuple[int, int] | None:
        """Return ``(holder id, fencing token)`` as gossip says, or ``None``."""
    def acquire(
        self, timeout: float | None = None, *, cancel: _Cancel | None = None
    ) -> LockGuard:
        """Wait until this node holds the lock, at most ``timeout`` seconds.

        ``cancel`` (a :class:`threading.Event`) ends the wait once set, checked every
        0.1 s, as :class:`LockTimeout`: this node then no longer waits for the lock.
        Raises :class:`LockTimeout` when still held elsewhere then,
        :class:`LockRefused` when this node already holds or awaits it,
        :class:`NodeStopped` when the node stopped.
        """
    def try_acquire(self) -> LockGuard | None:
        """Take the lock if it is free, else return ``None`` (within two rounds)."""
    def __enter__(self) -> LockGuard: ...
    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool: ...

@final
class LockGuard:
    """A held lock; released by :meth:`release`, on ``with`` exit or when collected."""

    @property
    def name(self) -> str:
        """The lock's name."""
    @property
    def fencing_token(self) -> int:
        """The fencing token: higher than every earlier holder's."""
    @property
    def deadline(self) -> float | None:
        """The lease end on the ``time.monotonic()`` clock; ``None`` once released."""
    @property
    def remaining(self) -> float:
        """Seconds until the current lease ends (0.0 once released or ended)."""
    def is_owner(self) -> bool:
        """Whether this node still holds the lock (not released or lost)."""
    def wait_lost(self, timeout: float | None = None) -> bool:
        """Wait until the lock is lost or released; whether it was within timeout."""
    def release(self) -> bool:
        """Release the lock: ``True`` the first time, ``False`` afterwards.

        Returns once a quorum of voters dropped it (or after two round timeouts
        without their confirmation), so another node may take it at once.
        """
    def __enter__(self) -> Self: ...
    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool: ...

class QuorateError(Exception):
    """Base class of every quorate error."""

class StartError(QuorateError):
    """The node could not start (directory, configuration, identity, address)."""

class JoinTimeout(QuorateError):
    """The node did not hear back from the cluster in time."""

class NodeStopped(QuorateError):
    """The node has left or stopped: nothing was done."""

class GroupError(QuorateError):
    """A group operation was refused; no group changed."""

class BadGroupName(GroupError):
    """The group name is empty, too long or has control characters."""

class GroupNotCreated(GroupError):
    """The group does not exist."""

class GroupAlreadyExists(GroupError):
    """The group exists already."""

class AlreadyJoined(GroupError):
    """This node is in the group already."""

class NotJoined(GroupError):
    """This node (or the member asked about) is not in the group."""

class GroupNotEmpty(GroupError):
    """The group still has members."""

class TooManyGroups(GroupError):
    """The cluster or this node already holds the most groups allowed."""

class GroupStateTooLarge(GroupError):
    """This node's group state would exceed the configured limit."""

class CampaignError(QuorateError):
    """A campaign was refused (elections off, bad name, already running, ...)."""

class CampaignEnded(QuorateError):
    """The campaign ended (resigned, or the node stopped)."""

class LeaderQueryError(QuorateError):
    """No quorum of voters confirmed the leader in time (or elections are off)."""

class LockError(QuorateError):
    """A lock could not be taken."""

class LockTimeout(LockError):
    """The lock was still held elsewhere when the wait ended."""

class LockLost(LockError):
    """The lock was granted but its lease ended before this node could take it."""

class LockRefused(LockError):
    """The node refused to run for the lock (already holds or awaits it, ...)."""

class SyncError(QuorateError):
    """The node could not catch up with the cluster's state in time."""

class MetadataError(QuorateError):
    """The metadata was refused (too large)."""
