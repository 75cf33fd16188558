"""tooz operations on the quorate backend against tooz's ``file://`` driver.

Usage (from ``python/``, in the package's virtual environment)::

    python bench/tooz_bench.py [--ops 200] [--elections 30]

It starts a 3-voter quorate cluster of its own (three ``python -m quorate node``
processes on loopback, the ``local`` timing preset, as ``pifpaf run quorate`` does),
or uses the one ``pifpaf run quorate -- python bench/tooz_bench.py`` started
(``PIFPAF_URL``). One coordinator per backend runs each operation ``--ops`` times,
one after another, and the table gives ops/s (operations over the phase's wall
time, the stand-downs after election rounds left out) and the median and
99th-percentile latency of one operation:

- ``create_group``: a new group each time;
- ``join_group``: this coordinator joins each of those groups (and leaves it, not
  timed: a quorate node's own group state is bounded, 4 KiB by default, so one
  node creates a few hundred groups at most: keep ``--ops`` to 200 or so);
- ``get_members``: of one group that it joined (quorate: a read synchronised with
  the voters);
- ``lock acquire+release``: one lock, taken and released;
- ``election round``: ``watch_elected_as_leader`` on a new group, then
  ``run_watchers()`` until the callback ran (then ``unwatch``, not timed); tooz's
  ``file://`` driver does not implement elections.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from typing import Callable

from tooz import coordination


def timed(
    n: int, op: Callable[[int], object], after: Callable[[int], object] | None = None
) -> list[float]:
    """Time ``op(i)`` for each ``i < n``; return each call's seconds.

    ``after(i)`` runs after each call, not timed.
    """
    lat = []
    for i in range(n):
        t = time.perf_counter()
        op(i)
        lat.append(time.perf_counter() - t)
        if after is not None:
            after(i)
    return lat


def bench(url: str, ops: int, elections: int) -> dict[str, list[float]]:
    """Time every operation on the backend at ``url``: each call's seconds."""
    member = f"bench-{uuid.uuid4().hex[:8]}".encode()
    coord = coordination.get_coordinator(url, member)
    coord.start(start_heart=True)
    prefix = uuid.uuid4().hex[:8]
    groups = [f"{prefix}-g{i}".encode() for i in range(ops)]
    out: dict[str, list[float]] = {}
    try:
        out["create_group"] = timed(ops, lambda i: coord.create_group(groups[i]).get())
        out["join_group"] = timed(
            ops,
            lambda i: coord.join_group(groups[i]).get(),
            lambda i: coord.leave_group(groups[i]).get(),
        )
        coord.join_group(groups[0]).get()
        out["get_members"] = timed(ops, lambda i: coord.get_members(groups[0]).get())
        coord.leave_group(groups[0]).get()
        lock = coord.get_lock(f"{prefix}-lock".encode())

        def lock_round(i: int) -> None:
            assert lock.acquire(blocking=True)
            lock.release()

        out["lock acquire+release"] = timed(ops, lock_round)
        if "quorate" in url:
            callbacks: dict[
                int, coordination.EventCallback[coordination.LeaderElected]
            ] = {}

            def stand_down(i: int) -> None:
                coord.unwatch_elected_as_leader(elected(prefix, i), callbacks.pop(i))

            out["election round"] = timed(
                elections, lambda i: elect(coord, prefix, i, callbacks), stand_down
            )
        for g in groups:
            coord.delete_group(g).get()
    finally:
        coord.stop()
    return out


def elected(prefix: str, i: int) -> bytes:
    """Name the group of election round ``i``."""
    return f"{prefix}-e{i}".encode()


def elect(
    coord: coordination.CoordinationDriver,
    prefix: str,
    i: int,
    callbacks: dict[int, coordination.EventCallback[coordination.LeaderElected]],
) -> None:
    """Run for a new group's leadership; ``run_watchers()`` until elected."""
    group = elected(prefix, i)
    won: list[coordination.LeaderElected] = []

    def on_elected(event: coordination.LeaderElected) -> None:
        won.append(event)

    callbacks[i] = on_elected
    coord.watch_elected_as_leader(group, on_elected)
    deadline = time.monotonic() + 30
    while not won:
        coord.run_watchers()
        if time.monotonic() > deadline:
            raise RuntimeError(f"not elected leader of {group!r} within 30 s")


@contextlib.contextmanager
def quorate_cluster() -> Iterator[str]:
    """Yield a quorate URL: pifpaf's when run under it, else a cluster of ours."""
    url = os.environ.get("PIFPAF_URL", "")
    if url.startswith("quorate://"):
        yield url
        return
    from quorate.pifpaf_driver import QuorateDriver

    with QuorateDriver(nodes=3, preset="local") as cluster:
        yield cluster.env["PIFPAF_URL"]


def row(name: str, lat: list[float] | None) -> str:
    """One table row: ops/s (one after another), median and p99 latency in ms."""
    if lat is None:
        return f"| {name:<22} | {'n/a':>9} | {'n/a':>11} | {'n/a':>9} |"
    ms = sorted(x * 1000 for x in lat)
    p99 = ms[min(len(ms) - 1, max(0, round(0.99 * len(ms)) - 1))]
    return (
        f"| {name:<22} | {len(lat) / sum(lat):>9.1f} | "
        f"{statistics.median(ms):>11.2f} | {p99:>9.2f} |"
    )


def tooz_version() -> str:
    """Return the installed tooz's version."""
    from importlib.metadata import version

    return version("tooz")


def main() -> int:
    """Run both backends and print the table."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ops", type=int, default=200, help="operations per phase")
    p.add_argument("--elections", type=int, default=30, help="election rounds")
    a = p.parse_args()

    results: dict[str, dict[str, list[float]]] = {}
    with quorate_cluster() as url:
        results["quorate"] = bench(url, a.ops, a.elections)
    with tempfile.TemporaryDirectory(prefix="tooz-file-") as d:
        results["file"] = bench("file://" + d, a.ops, a.elections)

    ops = [
        "create_group",
        "join_group",
        "get_members",
        "lock acquire+release",
        "election round",
    ]
    print(
        f"tooz {tooz_version()}: {a.ops} ops per phase, {a.elections} election "
        f"rounds; {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{time.strftime('%Y-%m-%d')}"
    )
    for backend, label in [
        ("quorate", "quorate (3 voters, local preset, loopback)"),
        ("file", "file:// (tmpdir)"),
    ]:
        print()
        print(f"{label}:")
        print()
        print(
            f"| {'operation':<22} | {'ops/s':>9} | {'median ms':>11} | {'p99 ms':>9} |"
        )
        print(f"|{'-' * 24}|{'-' * 10}:|{'-' * 12}:|{'-' * 10}:|")
        for op in ops:
            print(row(op, results[backend].get(op)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
