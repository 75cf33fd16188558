"""The asyncio forms (quorate.aio)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

import quorate
from quorate.aio import AsyncNode


async def _start(cluster_dir: Path, node_id: int, seeds: list[str]) -> AsyncNode:
    return await AsyncNode.from_cluster_dir(
        cluster_dir, node_id, listen="127.0.0.1:0", seeds=seeds
    )


async def _scenario(cluster_dir: Path) -> None:
    a = await _start(cluster_dir, 1, [])
    b = await _start(cluster_dir, 2, [a.local_addr])
    c = await _start(cluster_dir, 3, [a.local_addr])
    async with a, b, c:
        await b.wait_joined(10.0)
        joined = set()
        async for ev in a.events():
            if ev["event"] == "member_joined":
                joined.add(ev["member"])
            if joined == {2, 3}:
                break

        await a.create_group("g")
        await b.sync(10.0)
        await b.join_group("g", b"caps")
        await a.sync(10.0)
        assert a.group_members("g") == {2: b"caps"}

        async with a.campaign("lead") as campaign:
            lead = await campaign
            assert lead.is_valid() and lead.term > 0 and campaign.is_leader()
            assert await c.confirmed_leader("lead") == (1, lead.term)
            assert not await lead.wait_lost(timeout=0.1)
        assert await lead.wait_lost(timeout=5.0)

        async with b.lock("x") as guard:
            assert guard.is_owner()
            assert await c.lock("x").try_acquire() is None
            token = guard.fencing_token
        async with c.lock("x") as guard:
            assert guard.fencing_token > token

        # A cancelled wait takes nothing: the lock goes to the next node.
        held = await a.lock("y").acquire(timeout=15.0)
        waiting = asyncio.ensure_future(b.lock("y").acquire())
        await asyncio.sleep(0.3)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        await held.release()
        again = await c.lock("y").acquire(timeout=15.0)
        assert again.fencing_token > held.fencing_token
        await again.release()

        # A cancelled event read loses no event (the slice under way is kept).
        stream = a.events()
        reader = asyncio.ensure_future(stream.next())
        await asyncio.sleep(0.25)
        reader.cancel()
        try:
            update = await reader  # an event came before the cancel
        except asyncio.CancelledError:
            update = None
        await b.set_metadata(b"after-cancel")
        while not (
            update is not None
            and update["event"] == "member_updated"
            and update["member"] == 2
        ):
            update = await stream.next(timeout=10.0)
            assert update is not None
        assert update["metadata"] == b"after-cancel"

        assert (await a.metrics())["members"] == 3
        await c.leave()
        assert not c.node.running
        with pytest.raises(quorate.NodeStopped):
            await c.create_group("h")


def test_asyncio_forms(cluster_dir: Path) -> None:
    asyncio.run(asyncio.wait_for(_scenario(cluster_dir), timeout=60.0))


def test_wait_for_times_out_a_campaign(cluster_dir: Path) -> None:
    async def run() -> None:
        async with await _start(cluster_dir, 1, []) as a:
            async with a.campaign("g") as campaign:
                # One voter of three is no quorum: nobody can lead.
                assert await campaign.leadership(timeout=0.3) is None
                with pytest.raises(asyncio.TimeoutError):
                    await asyncio.wait_for(campaign.leadership(), timeout=0.3)

    asyncio.run(run())
