"""A tooz backend with no server to run: ``quorate:///path/to/cluster-dir``.

Every tooz coordinator is a quorate node of its own: it joins the cluster described by
the cluster directory (``quorate init`` output, or one host's bundle) through its
seeds, and leaves it on ``stop()``. Its tooz member id travels as the node's metadata,
so every coordinator sees every other one's member id, as bytes.

URL::

    quorate:///path/to/cluster-dir?node_id=K&seeds=HOST:PORT,...&preset=lan&timeout=10

- ``node_id``: run as node ``K`` of ``cluster.toml`` with its certificate
  (``DIR/node-K.pem``). Without it, the coordinator runs as a throwaway member with a
  random id and a certificate issued in memory with the CA key (``DIR/ca/ca.key``),
  which only a trusted host (or a test) has.
- ``seeds``: where to join (default: the file's seeds); a host in the URL
  (``quorate://HOST:PORT/DIR``) is a seed too.
- ``listen``: the address to bind (default: the node's address in ``cluster.toml``,
  or ``127.0.0.1:0`` for a throwaway member). ``advertise``: the address peers use.
- ``preset``: ``lan``, ``wan`` or ``local`` (default: the file's).
- ``timeout``: the session timeout in seconds (default 30), as in tooz's other
  timeout-based drivers: a coordinator that does not call ``heartbeat()`` (or run
  tooz's heart, ``start(start_heart=True)``) for that long leaves its groups,
  resigns its leaderships and releases its locks, as if it had failed, while its
  node stays a member. The node's own watchdog does it (``Node.heartbeat``), in
  the node's runtime: a Python program that hangs with the GIL held still loses
  its session. ``timeout=0`` turns sessions off.
- ``wait``: seconds to wait for the cluster (joining, synchronising, confirming a
  write; default 10). A start that cannot reach a seed within it raises
  ``ToozConnectionError`` naming the seeds.

Semantics:

- Groups, members and capabilities are quorate groups (capabilities serialised with
  msgpack, as tooz's other drivers do). Every read synchronises with a quorum of the
  cluster's voters first and every write returns once a quorum holds it, so a read on
  any coordinator sees every write that returned before it began.
- A member that stops or crashes leaves its groups when the cluster declares it
  failed (SWIM's detection bound, seconds); one whose process lives on but stops
  heartbeating leaves them when its session times out (``timeout``).
- ``watch_elected_as_leader`` runs for the group's leadership (a lease granted by a
  quorum of voters; among live candidates the lowest node id wins); the callback runs
  from ``run_watchers()`` once this coordinator leads. ``get_leader`` asks the voters.
  ``stand_down_group_leader`` resigns and returns once the voters released the lease.
- Locks are quorate locks: decided by the voters, held by one coordinator at a time,
  with a fencing token (``QuorateLock.fencing_token``); not reentrant, even on the
  same object.

Not implemented, because quorate's model has no equivalent: shared (reader) locks — a
quorate lock is a lease that one node holds; ``Lock.break_()`` — another holder's
lease cannot be revoked, it ends when its holder releases it, leaves, or stops
renewing it; and leaving a group on behalf of another process that uses the same
member id — a node's group memberships are its own state, which only it changes.
"""

from __future__ import annotations

import os
import threading
import urllib.parse
from typing import Any, Callable, Generic, TypeVar

import tooz
from tooz import coordination, locking, utils

import quorate

T = TypeVar("T")

#: Seconds to wait for the cluster by default (join, sync, writes, leader queries).
DEFAULT_WAIT = 10.0

#: Session timeout by default, in seconds (tooz's other timeout-based drivers' too).
DEFAULT_SESSION_TIMEOUT = 30.0


def group_name(group_id: bytes | str) -> str:
    """Return the quorate group name of a tooz group id (percent-encoded)."""
    raw = group_id.encode("utf-8") if isinstance(group_id, str) else group_id
    return urllib.parse.quote(raw, safe="")


def group_id_of(name: str) -> bytes:
    """Return the tooz group id of a quorate group name (``group_name``'s inverse)."""
    return urllib.parse.unquote_to_bytes(name)


def _dump(capabilities: Any) -> bytes:
    """Capabilities as stored: msgpack, or nothing for tooz's default (none)."""
    return b"" if capabilities == b"" else utils.dumps(capabilities)


def _load(stored: bytes) -> Any:
    """Return stored capabilities: ``None`` for a member that gave none."""
    return None if stored == b"" else utils.loads(stored)


def _member_bytes(member_id: bytes | str) -> bytes:
    return member_id.encode("utf-8") if isinstance(member_id, str) else member_id


class QuorateResult(coordination.CoordAsyncResult[T], Generic[T]):
    """The outcome of an operation that already ran: tooz's ``.get()`` returns it."""

    def __init__(self, fn: Callable[[], T]) -> None:
        self._value: T | None = None
        self._error: BaseException | None = None
        try:
            self._value = fn()
        except tooz.ToozError as e:
            self._error = e

    def get(self, timeout: float | None = None) -> T:
        if self._error is not None:
            raise self._error
        return self._value  # type: ignore[return-value]

    def done(self) -> bool:
        return True


class QuorateLock(locking.Lock):
    """A quorate lock as a tooz lock."""

    def __init__(self, name: bytes, driver: QuorateDriver) -> None:
        super().__init__(name)
        self._lock = driver._running().lock(group_name(name))
        self._guard: quorate.LockGuard | None = None
        self._mutex = threading.Lock()

    def acquire(
        self,
        blocking: bool | float = True,
        shared: bool = False,
        timeout: float | None = None,
    ) -> bool:
        if shared:
            raise tooz.NotImplemented(
                "shared locks: a quorate lock is a lease that one node holds"
            )
        wait, limit = utils.convert_blocking(blocking, timeout)
        try:
            if wait:
                guard: quorate.LockGuard | None = self._lock.acquire(limit)
            else:
                guard = self._lock.try_acquire()
        except quorate.LockTimeout:
            return False
        except quorate.QuorateError as e:
            raise tooz.ToozError(str(e)) from e
        if guard is None:
            return False
        with self._mutex:
            self._guard = guard
        return True

    def release(self) -> bool:
        with self._mutex:
            guard, self._guard = self._guard, None
        if guard is None:
            return False
        return bool(guard.release())

    def break_(self) -> bool:
        raise tooz.NotImplemented(
            "breaking a lock: another holder's lease ends only when it releases "
            "the lock, leaves, or stops renewing it"
        )

    def is_still_owner(self) -> bool:
        guard = self._guard
        return guard is not None and guard.is_owner()

    @property
    def acquired(self) -> bool:
        return self.is_still_owner()

    @property
    def fencing_token(self) -> int | None:
        """The fencing token of the current holding, or None when not held."""
        guard = self._guard
        return None if guard is None else guard.fencing_token


class QuorateDriver(coordination.CoordinationDriverCachedRunWatchers):
    """tooz's coordination API on a quorate node (see the module documentation)."""

    CHARACTERISTICS = (
        coordination.Characteristics.DISTRIBUTED_ACROSS_THREADS,
        coordination.Characteristics.DISTRIBUTED_ACROSS_PROCESSES,
        coordination.Characteristics.DISTRIBUTED_ACROSS_HOSTS,
        # Each node's own state is one versioned record: a coordinator's operations
        # take effect in its order; others see them once they synchronise.
        coordination.Characteristics.SEQUENTIAL,
    )

    def __init__(
        self, member_id: bytes, parsed_url: Any, options: dict[str, Any]
    ) -> None:
        super().__init__(member_id, parsed_url, options)
        opts = utils.collapse(options)
        self._dir = parsed_url.path
        self._node_id = int(opts["node_id"]) if "node_id" in opts else None
        seeds = [s for s in str(opts.get("seeds", "")).split(",") if s]
        if parsed_url.netloc:
            seeds.insert(0, parsed_url.netloc)
        self._seeds = seeds or None
        self._listen = opts.get("listen")
        self._advertise = opts.get("advertise")
        self._preset = opts.get("preset")
        self._timeout = float(opts.get("wait", DEFAULT_WAIT))
        self._session = float(opts.get("timeout", DEFAULT_SESSION_TIMEOUT))
        self._node: quorate.Node | None = None
        self._campaigns: dict[bytes, quorate.Campaign] = {}
        self._leading: dict[bytes, quorate.Leadership] = {}

    # ---- life ----

    def _start(self) -> None:
        node_id = self._node_id
        throwaway = node_id is None
        if node_id is None:
            node_id = (int.from_bytes(os.urandom(8), "big") >> 2) | (1 << 60)
        listen = self._listen or ("127.0.0.1:0" if throwaway else None)
        try:
            node = quorate.Node.from_cluster_dir(
                self._dir,
                node_id,
                listen=listen,
                seeds=self._seeds,
                preset=self._preset,
                metadata=_member_bytes(self._member_id),
                issue_certificate=throwaway,
                advertise=self._advertise,
                heartbeat_timeout=self._session if self._session > 0 else None,
            )
        except quorate.QuorateError as e:
            raise coordination.ToozConnectionError(str(e)) from e
        try:
            node.wait_joined(self._timeout)
        except quorate.QuorateError as e:
            node.shutdown()
            raise coordination.ToozConnectionError(str(e)) from e
        self._node = node

    def _stop(self) -> None:
        node, self._node = self._node, None
        self._campaigns.clear()
        self._leading.clear()
        if node is not None:
            try:
                node.leave()
            except quorate.NodeStopped:
                pass

    def heartbeat(self) -> float:
        """Renews the session (see ``timeout``); returns when to beat next.

        After an expired session the coordinator is in no group and leads none:
        it joins and runs again as a new member would.
        """
        if not self._running().heartbeat():
            self._joined_groups.clear()
            self._leading.clear()
            self._campaigns.clear()
        return self._session / 3 if self._session > 0 else 1.0

    def _running(self) -> quorate.Node:
        node = self._node
        if node is None or not node.running:
            raise tooz.ToozError("the coordinator is not started")
        return node

    def _sync(self) -> quorate.Node:
        node = self._running()
        try:
            node.sync(self._timeout)
        except quorate.QuorateError as e:
            raise coordination.OperationTimedOut(str(e)) from e
        return node

    # ---- groups ----

    def create_group(self, group_id: bytes) -> QuorateResult[None]:
        def create() -> None:
            node = self._sync()
            try:
                node.create_group(group_name(group_id))
            except quorate.GroupAlreadyExists:
                raise coordination.GroupAlreadyExist(group_id) from None
            except quorate.QuorateError as e:
                raise tooz.ToozError(str(e)) from e

        return QuorateResult(create)

    def get_groups(self) -> QuorateResult[list[bytes]]:
        return QuorateResult(lambda: [group_id_of(g) for g in self._sync().groups()])

    def delete_group(self, group_id: bytes) -> QuorateResult[None]:
        def delete() -> None:
            node = self._sync()
            try:
                node.delete_group(group_name(group_id))
            except quorate.GroupNotCreated:
                raise coordination.GroupNotCreated(group_id) from None
            except quorate.GroupNotEmpty:
                raise coordination.GroupNotEmpty(group_id) from None
            except quorate.QuorateError as e:
                raise tooz.ToozError(str(e)) from e

        return QuorateResult(delete)

    def join_group(
        self, group_id: bytes, capabilities: Any = b""
    ) -> QuorateResult[None]:
        def join() -> None:
            node = self._sync()
            me = _member_bytes(self._member_id)
            if me in self._members(node, group_id):
                raise coordination.MemberAlreadyExist(group_id, self._member_id)
            try:
                node.join_group(group_name(group_id), _dump(capabilities))
            except quorate.GroupNotCreated:
                raise coordination.GroupNotCreated(group_id) from None
            except quorate.AlreadyJoined:
                me = self._member_id
                raise coordination.MemberAlreadyExist(group_id, me) from None
            except quorate.QuorateError as e:
                raise tooz.ToozError(str(e)) from e
            self._joined_groups.add(group_id)

        return QuorateResult(join)

    def leave_group(self, group_id: bytes) -> QuorateResult[None]:
        def leave() -> None:
            node = self._running()
            try:
                node.leave_group(group_name(group_id))
            except quorate.GroupNotCreated:
                raise coordination.GroupNotCreated(group_id) from None
            except quorate.NotJoined:
                self._refuse_leave_for_another(node, group_id)
                raise coordination.MemberNotJoined(group_id, self._member_id) from None
            except quorate.QuorateError as e:
                raise tooz.ToozError(str(e)) from e
            finally:
                self._joined_groups.discard(group_id)

        return QuorateResult(leave)

    def _refuse_leave_for_another(self, node: quorate.Node, group_id: bytes) -> None:
        """Another process with this member id is in the group: only it can leave."""
        self._sync()
        if _member_bytes(self._member_id) in self._members(node, group_id):
            raise tooz.NotImplemented(
                "leaving a group for another process with the same member id: a "
                "quorate node changes only its own group memberships"
            )

    def update_capabilities(
        self, group_id: bytes, capabilities: Any
    ) -> QuorateResult[None]:
        def update() -> None:
            node = self._running()
            try:
                node.update_capabilities(group_name(group_id), _dump(capabilities))
            except quorate.GroupNotCreated:
                raise coordination.GroupNotCreated(group_id) from None
            except quorate.NotJoined:
                raise coordination.MemberNotJoined(group_id, self._member_id) from None
            except quorate.QuorateError as e:
                raise tooz.ToozError(str(e)) from e

        return QuorateResult(update)

    def get_members(self, group_id: bytes) -> QuorateResult[set[bytes]]:
        return QuorateResult(lambda: set(self._members(self._sync(), group_id)))

    def get_member_capabilities(
        self, group_id: bytes, member_id: bytes
    ) -> QuorateResult[Any]:
        return QuorateResult(lambda: self._member(group_id, member_id)["capabilities"])

    def get_members_with_capabilities(
        self, group_id: bytes
    ) -> QuorateResult[dict[bytes, Any]]:
        def members() -> dict[bytes, Any]:
            found = self._members(self._sync(), group_id)
            return {m: _load(caps) for m, (_, caps) in found.items()}

        return QuorateResult(members)

    def get_member_info(
        self, group_id: bytes, member_id: bytes
    ) -> QuorateResult[dict[str, Any]]:
        return QuorateResult(lambda: self._member(group_id, member_id))

    def _member(self, group_id: bytes, member_id: bytes) -> dict[str, Any]:
        node = self._sync()
        found = self._members(node, group_id)
        entry = found.get(_member_bytes(member_id))
        if entry is None:
            raise coordination.MemberNotJoined(group_id, member_id)
        node_id, caps = entry
        member = node.member(node_id)
        return {
            "capabilities": _load(caps),
            "node_id": node_id,
            "address": member.addr if member is not None else None,
        }

    def _members(
        self, node: quorate.Node, group_id: bytes
    ) -> dict[bytes, tuple[int, bytes]]:
        """Return the group's members by tooz member id: (node id, capabilities)."""
        try:
            members = node.group_members(group_name(group_id))
        except quorate.GroupNotCreated:
            raise coordination.GroupNotCreated(group_id) from None
        except quorate.QuorateError as e:
            raise tooz.ToozError(str(e)) from e
        return {self._member_id_of(node, i): (i, c) for i, c in members.items()}

    @staticmethod
    def _member_id_of(node: quorate.Node, node_id: int) -> bytes:
        """Return a node's tooz member id: its metadata (else its node id)."""
        member = node.member(node_id)
        if member is not None and member.metadata:
            return member.metadata
        return str(node_id).encode("ascii")

    # ---- leaders ----

    def watch_elected_as_leader(
        self,
        group_id: bytes,
        callback: coordination.EventCallback[coordination.LeaderElected],
    ) -> None:
        super().watch_elected_as_leader(group_id, callback)
        if group_id not in self._campaigns:
            try:
                self._campaigns[group_id] = self._running().campaign(
                    group_name(group_id)
                )
            except quorate.QuorateError as e:
                raise tooz.ToozError(str(e)) from e

    def unwatch_elected_as_leader(
        self,
        group_id: bytes,
        callback: coordination.EventCallback[coordination.LeaderElected],
    ) -> None:
        super().unwatch_elected_as_leader(group_id, callback)
        if group_id not in self._hooks_elected_leader:
            self._resign(group_id)

    def stand_down_group_leader(self, group_id: bytes) -> bool:
        """Resigns this coordinator's leadership of the group, if it leads it.

        Returns once the voters released the lease. It runs for the group again at
        the next ``run_watchers()`` while it still watches the group.
        """
        if group_id not in self._leading:
            return False
        self._resign(group_id)
        return True

    def _resign(self, group_id: bytes) -> None:
        self._leading.pop(group_id, None)
        campaign = self._campaigns.pop(group_id, None)
        if campaign is not None:
            try:
                campaign.resign()
            except quorate.QuorateError:
                pass

    # None when nobody leads, as tooz's other drivers return (tooz 9.1.0's
    # annotation says bytes).
    def get_leader(  # type: ignore[override]
        self, group_id: bytes
    ) -> QuorateResult[bytes | None]:
        def leader() -> bytes | None:
            node = self._running()
            try:
                found = node.confirmed_leader(group_name(group_id))
            except quorate.QuorateError as e:
                raise coordination.OperationTimedOut(str(e)) from e
            if found is None:
                return None
            if node.member(found[0]) is None:
                self._sync()
            return self._member_id_of(node, found[0])

        return QuorateResult(leader)

    def run_elect_coordinator(self) -> None:
        """Run the elected-leader callbacks of the groups this coordinator now leads.

        A campaign for a group that nobody leads gets up to two election rounds to
        win before this returns.
        """
        node = self._running()
        for group_id in list(self._hooks_elected_leader):
            lead = self._leading.get(group_id)
            if lead is not None and lead.is_valid():
                continue
            self._leading.pop(group_id, None)
            lead = self._campaign_for(node, group_id).leadership(
                self._election_wait(node, group_id)
            )
            if lead is None:
                continue
            self._leading[group_id] = lead
            self._hooks_elected_leader[group_id].run(
                coordination.LeaderElected(group_id, self._member_id)
            )

    def _campaign_for(self, node: quorate.Node, group_id: bytes) -> quorate.Campaign:
        """Return this coordinator's running campaign for the group.

        A new one when there is none, or the node's watchdog ended it (an expired
        session).
        """
        campaign = self._campaigns.get(group_id)
        if campaign is not None:
            try:
                campaign.leadership(0)
                return campaign
            except quorate.CampaignEnded:
                pass
        campaign = node.campaign(group_name(group_id))
        self._campaigns[group_id] = campaign
        return campaign

    def _election_wait(self, node: quorate.Node, group_id: bytes) -> float:
        """Return how long to wait for a campaign to win.

        A while when the voters say nobody leads (an election takes a round or two),
        not at all when someone else does.
        """
        try:
            found = node.confirmed_leader(group_name(group_id))
        except quorate.QuorateError:
            return 0.0
        if found is None or found[0] == node.id:
            return min(self._timeout, 2.0)
        return 0.0

    def run_watchers(self, timeout: float | None = None) -> list[Any]:
        results = super().run_watchers(timeout)
        self.run_elect_coordinator()
        return results

    # ---- locks ----

    def get_lock(self, name: bytes) -> QuorateLock:
        return QuorateLock(name, self)
