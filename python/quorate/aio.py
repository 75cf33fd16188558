"""asyncio forms of the blocking API.

Each blocking call runs in a worker thread (:func:`asyncio.to_thread`) and, where
it may wait long, in short slices so that cancelling the awaiting task (or
:func:`asyncio.wait_for`) takes effect within a slice::

    import asyncio
    from quorate.aio import AsyncNode

    async def main() -> None:
        async with await AsyncNode.from_cluster_dir("./mycluster", 1) as node:
            await node.wait_joined(10.0)
            await node.create_group("workers")
            async for event in node.events():
                print(event)
                break
            async with node.campaign("scheduler") as campaign:
                lead = await campaign  # waits until this node leads
            async with node.lock("disk") as guard:
                print(guard.fencing_token)

    asyncio.run(main())
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Generator
from types import TracebackType
from typing import Any, Callable, TypeVar

from ._quorate import (
    Campaign,
    EventStream,
    Leadership,
    Lock,
    LockGuard,
    Member,
    Node,
    NodeStopped,
)

__all__ = [
    "AsyncCampaign",
    "AsyncEventStream",
    "AsyncLeadership",
    "AsyncLock",
    "AsyncLockGuard",
    "AsyncNode",
]

T = TypeVar("T")

#: Seconds each slice of a long wait lasts in its worker thread.
SLICE = 0.1


async def _sliced(call: Callable[[float], T | None], timeout: float | None) -> T | None:
    """Call ``call(slice)`` in a thread until it returns a value or time runs out."""
    loop = asyncio.get_running_loop()
    deadline = None if timeout is None else loop.time() + timeout
    while True:
        left = SLICE if deadline is None else max(0.0, deadline - loop.time())
        out = await asyncio.to_thread(call, min(SLICE, left))
        if out is not None:
            return out
        if deadline is not None and loop.time() >= deadline:
            return None


class AsyncEventStream:
    """``async for event in node.events():`` over an :class:`EventStream`.

    Cancelling a task waiting for an event loses no event: the slice under way is
    kept and awaited by the next read.
    """

    def __init__(self, stream: EventStream) -> None:
        self.stream = stream
        self._pending: asyncio.Future[dict[str, Any] | None] | None = None

    async def next(self, timeout: float | None = None) -> dict[str, Any] | None:
        """Return the next event, or ``None`` after ``timeout`` seconds.

        Raises :class:`NodeStopped` once the node stopped and every event was read.
        """
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while True:
            if self._pending is None:
                left = SLICE if deadline is None else max(0.0, deadline - loop.time())
                coro = asyncio.to_thread(self.stream.next, min(SLICE, left))
                self._pending = asyncio.ensure_future(coro)
            try:
                event = await asyncio.shield(self._pending)
            finally:
                if self._pending.done():
                    self._pending = None
            if event is not None:
                return event
            if deadline is not None and loop.time() >= deadline:
                return None

    @property
    def lagged(self) -> int:
        """Events this subscriber lost because it fell behind."""
        return self.stream.lagged

    def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        return self

    async def __anext__(self) -> dict[str, Any]:
        try:
            event = await self.next()
        except NodeStopped:
            raise StopAsyncIteration from None
        assert event is not None
        return event


class AsyncLeadership:
    """One leadership of a group (see :class:`Leadership`)."""

    def __init__(self, leadership: Leadership) -> None:
        self.leadership = leadership

    @property
    def group(self) -> str:
        """The group led."""
        return self.leadership.group

    @property
    def term(self) -> int:
        """The fencing token."""
        return self.leadership.term

    def is_valid(self) -> bool:
        """Whether this leadership still holds."""
        return self.leadership.is_valid()

    async def wait_lost(self, timeout: float | None = None) -> bool:
        """Wait until this leadership ends; whether it did within ``timeout``."""
        lost = await _sliced(
            lambda t: True if self.leadership.wait_lost(t) else None, timeout
        )
        return lost is not None

    async def resign(self) -> bool:
        """Step down and end the campaign."""
        return await asyncio.to_thread(self.leadership.resign)


class AsyncCampaign:
    """A running candidacy (see :class:`Campaign`); ``async with`` resigns on exit."""

    def __init__(self, campaign: Campaign) -> None:
        self.campaign = campaign

    @property
    def group(self) -> str:
        """The group this campaign runs for."""
        return self.campaign.group

    async def leadership(self, timeout: float | None = None) -> AsyncLeadership | None:
        """Wait until this node leads; ``None`` after ``timeout`` seconds.

        Raises :class:`CampaignEnded` when the campaign was resigned or the node
        stopped.
        """
        lead = await _sliced(self.campaign.leadership, timeout)
        return None if lead is None else AsyncLeadership(lead)

    def __await__(self) -> Generator[Any, None, AsyncLeadership]:
        """``await campaign``: wait as long as it takes for the leadership."""
        return self._lead().__await__()

    async def _lead(self) -> AsyncLeadership:
        lead = await self.leadership()
        assert lead is not None
        return lead

    def is_leader(self) -> bool:
        """Whether this node leads the group now."""
        return self.campaign.is_leader()

    async def resign(self) -> bool:
        """Stop running (a leader steps down first); ``False`` if it had ended."""
        return await asyncio.to_thread(self.campaign.resign)

    async def __aenter__(self) -> AsyncCampaign:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.resign()


class _StartingCampaign:
    """What :meth:`AsyncNode.campaign` returns: awaitable, or ``async with``."""

    def __init__(self, node: Node, group: str) -> None:
        self._node = node
        self._group = group
        self._campaign: AsyncCampaign | None = None

    async def _start(self) -> AsyncCampaign:
        return AsyncCampaign(await asyncio.to_thread(self._node.campaign, self._group))

    def __await__(self) -> Generator[Any, None, AsyncCampaign]:
        return self._start().__await__()

    async def __aenter__(self) -> AsyncCampaign:
        self._campaign = await self._start()
        return self._campaign

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._campaign is not None:
            await self._campaign.resign()


class AsyncLockGuard:
    """A held lock (see :class:`LockGuard`)."""

    def __init__(self, guard: LockGuard) -> None:
        self.guard = guard

    @property
    def name(self) -> str:
        """The lock's name."""
        return self.guard.name

    @property
    def fencing_token(self) -> int:
        """The fencing token: higher than every earlier holder's."""
        return self.guard.fencing_token

    def is_owner(self) -> bool:
        """Whether this node still holds the lock."""
        return self.guard.is_owner()

    async def wait_lost(self, timeout: float | None = None) -> bool:
        """Wait until the lock is lost or released; whether it was within timeout."""
        lost = await _sliced(
            lambda t: True if self.guard.wait_lost(t) else None, timeout
        )
        return lost is not None

    async def release(self) -> bool:
        """Release the lock: ``True`` the first time, ``False`` afterwards."""
        return await asyncio.to_thread(self.guard.release)


class AsyncLock:
    """A named lock (see :class:`Lock`); ``async with`` acquires and releases it."""

    def __init__(self, lock: Lock) -> None:
        self.lock = lock
        self._held: AsyncLockGuard | None = None

    @property
    def name(self) -> str:
        """The lock's name."""
        return self.lock.name

    def holder(self) -> tuple[int, int] | None:
        """Return ``(holder id, fencing token)`` as gossip says, or ``None``."""
        return self.lock.holder()

    async def acquire(self, timeout: float | None = None) -> AsyncLockGuard:
        """Wait until this node holds the lock, at most ``timeout`` seconds.

        Raises :class:`LockTimeout` after ``timeout``. Cancelling the awaiting task
        stops the wait within a slice; a lock granted meanwhile is released.
        """
        cancel = threading.Event()
        job = asyncio.ensure_future(
            asyncio.to_thread(self.lock.acquire, timeout, cancel=cancel)
        )
        try:
            return AsyncLockGuard(await asyncio.shield(job))
        except asyncio.CancelledError:
            cancel.set()
            job.add_done_callback(_release_in_thread)
            raise

    async def try_acquire(self) -> AsyncLockGuard | None:
        """Take the lock if it is free, else return ``None``."""
        guard = await asyncio.to_thread(self.lock.try_acquire)
        return None if guard is None else AsyncLockGuard(guard)

    async def __aenter__(self) -> AsyncLockGuard:
        self._held = await self.acquire()
        return self._held

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        held, self._held = self._held, None
        if held is not None:
            await held.release()


def _release_in_thread(job: asyncio.Future[LockGuard]) -> None:
    """Release a guard granted to a cancelled acquisition, off the event loop."""
    if job.cancelled() or job.exception() is not None:
        return
    threading.Thread(target=job.result().release, daemon=True).start()


class AsyncNode:
    """A :class:`Node` with ``async`` forms of its blocking methods.

    Snapshot reads (:meth:`members`, :meth:`groups`, :meth:`leader`, ...) never wait
    and stay plain methods. ``async with`` leaves the cluster on exit.
    """

    def __init__(self, node: Node) -> None:
        self.node = node

    @classmethod
    async def from_cluster_dir(cls, *args: Any, **kwargs: Any) -> AsyncNode:
        """Start a node as :meth:`Node.from_cluster_dir` does."""
        return cls(await asyncio.to_thread(Node.from_cluster_dir, *args, **kwargs))

    @classmethod
    async def start(cls, *args: Any, **kwargs: Any) -> AsyncNode:
        """Start a node as :meth:`Node.start` does."""
        return cls(await asyncio.to_thread(Node.start, *args, **kwargs))

    @property
    def id(self) -> int:
        """This node's id."""
        return self.node.id

    @property
    def local_addr(self) -> str:
        """The address the node's socket is bound to."""
        return self.node.local_addr

    def members(self) -> list[Member]:
        """Return the member list as this node sees it."""
        return self.node.members()

    def member(self, id: int) -> Member | None:
        """Return one member's record, or ``None``."""
        return self.node.member(id)

    def groups(self) -> list[str]:
        """Return every existing group, in name order."""
        return self.node.groups()

    def group_members(self, group: str) -> dict[int, bytes]:
        """Return the members of ``group`` and their capabilities, by node id."""
        return self.node.group_members(group)

    def member_capabilities(self, group: str, member: int) -> bytes:
        """Return one member's capabilities in ``group``."""
        return self.node.member_capabilities(group, member)

    def leader(self, group: str) -> tuple[int, int] | None:
        """Return ``(leader, term)`` of ``group`` as gossip says, or ``None``."""
        return self.node.leader(group)

    def candidates(self, group: str) -> list[int]:
        """Return the live candidates for ``group``'s leadership."""
        return self.node.candidates(group)

    def stats(self) -> dict[str, int]:
        """Return the protocol's and the transport's counters."""
        return self.node.stats()

    def heartbeat(self) -> bool:
        """Tell the application watchdog this program is alive (never waits).

        ``False`` when it had expired since the last call: see :meth:`Node.heartbeat`.
        """
        return self.node.heartbeat()

    def events(self, *, renewals: bool = False) -> AsyncEventStream:
        """Subscribe to this node's events (``async for event in ...``)."""
        return AsyncEventStream(self.node.events(renewals=renewals))

    def lock(self, name: str) -> AsyncLock:
        """Return the lock ``name``."""
        return AsyncLock(self.node.lock(name))

    async def wait_joined(self, timeout: float) -> None:
        """Wait until a seed answered; raises :class:`JoinTimeout`."""
        await asyncio.to_thread(self.node.wait_joined, timeout)

    async def sync(self, timeout: float = 5.0) -> None:
        """Synchronise with a quorum of voters; raises :class:`SyncError`."""
        await asyncio.to_thread(self.node.sync, timeout)

    async def set_metadata(self, metadata: bytes) -> None:
        """Publish new metadata."""
        await asyncio.to_thread(self.node.set_metadata, metadata)

    async def create_group(self, group: str) -> None:
        """Create ``group``."""
        await asyncio.to_thread(self.node.create_group, group)

    async def delete_group(self, group: str) -> None:
        """Delete ``group``."""
        await asyncio.to_thread(self.node.delete_group, group)

    async def join_group(self, group: str, capabilities: bytes = b"") -> None:
        """Join ``group`` with ``capabilities``."""
        await asyncio.to_thread(self.node.join_group, group, capabilities)

    async def leave_group(self, group: str) -> None:
        """Leave ``group``."""
        await asyncio.to_thread(self.node.leave_group, group)

    async def update_capabilities(self, group: str, capabilities: bytes) -> None:
        """Replace this node's capabilities in ``group``."""
        await asyncio.to_thread(self.node.update_capabilities, group, capabilities)

    def campaign(self, group: str) -> _StartingCampaign:
        """Run for the leadership of ``group``.

        ``campaign = await node.campaign(g)``, or ``async with node.campaign(g) as
        campaign:`` (which resigns on exit).
        """
        return _StartingCampaign(self.node, group)

    async def confirmed_leader(self, group: str) -> tuple[int, int] | None:
        """Return ``(leader, term)`` as a quorum of voters confirms it, or ``None``."""
        return await asyncio.to_thread(self.node.confirmed_leader, group)

    async def metrics(self) -> dict[str, int]:
        """Return every counter and gauge of the node."""
        return await asyncio.to_thread(self.node.metrics)

    async def leave(self) -> None:
        """Leave the cluster gracefully and stop."""
        await asyncio.to_thread(self.node.leave)

    async def shutdown(self) -> None:
        """Stop at once without a word."""
        await asyncio.to_thread(self.node.shutdown)

    async def __aenter__(self) -> AsyncNode:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.node.running:
            try:
                await self.leave()
            except NodeStopped:
                pass
