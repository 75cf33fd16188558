"""Fixtures: a fresh cluster directory and a running three-voter cluster per test.

Nodes listen on port 0 (a free port picked by the system) and join through node 1's
bound address, so tests never race other processes for ports; the one test that uses
cluster.toml's own addresses retries on another base port when one is taken.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Callable, TypeVar

import pytest

import quorate

T = TypeVar("T")

#: Generous deadline of every condition wait (a loaded CI machine is slow).
DEADLINE = 20.0


def wait_for(
    cond: Callable[[], T | None], timeout: float = DEADLINE, what: str = "condition"
) -> T:
    """Poll ``cond`` until it returns a truthy value; fail after ``timeout``."""
    end = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > end:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


def random_base_port(nodes: int) -> int:
    """A base port in the dynamic range with room for ``nodes`` ports."""
    return random.randrange(20000, 60000 - nodes)


def make_cluster_dir(path: Path, nodes: int = 3, **kwargs: object) -> Path:
    """Write a cluster directory (timing preset ``local``) at ``path``."""
    kwargs.setdefault("preset", "local")
    kwargs.setdefault("base_port", random_base_port(nodes))
    quorate.init_cluster(path, nodes=nodes, **kwargs)  # type: ignore[arg-type]
    return path


def start(
    cluster_dir: Path, node_id: int, seeds: list[str], **kwargs: object
) -> quorate.Node:
    """Start a node of ``cluster_dir`` on a free port, joining through ``seeds``."""
    return quorate.Node.from_cluster_dir(
        cluster_dir,
        node_id,
        listen="127.0.0.1:0",
        seeds=seeds,
        **kwargs,  # type: ignore[arg-type]
    )


def alive(node: quorate.Node) -> set[int]:
    """The ids ``node`` sees alive."""
    return {m.id for m in node.members() if m.state == "alive"}


def wait_alive(node: quorate.Node, ids: set[int]) -> None:
    """Wait until ``node`` sees exactly ``ids`` alive."""
    wait_for(lambda: alive(node) == ids, what=f"node {node.id} seeing {sorted(ids)}")


def stop_all(nodes: list[quorate.Node]) -> None:
    """Shut down every node still running."""
    for n in nodes:
        if n.running:
            n.shutdown()


@pytest.fixture
def cluster_dir(tmp_path: Path) -> Path:
    """A fresh cluster directory of three nodes, all voters."""
    return make_cluster_dir(tmp_path / "cluster")


@pytest.fixture
def cluster(cluster_dir: Path) -> Iterator[list[quorate.Node]]:
    """Nodes 1, 2 and 3 (the voters), running and seeing each other alive."""
    n1 = start(cluster_dir, 1, [])
    nodes = [n1]
    try:
        nodes += [start(cluster_dir, k, [n1.local_addr]) for k in (2, 3)]
        for n in nodes:
            wait_alive(n, {1, 2, 3})
        yield nodes
    finally:
        stop_all(nodes)


@pytest.fixture
def member(cluster_dir: Path, cluster: list[quorate.Node]) -> Iterator[quorate.Node]:
    """Node 10, not in cluster.toml, with a certificate issued in memory."""
    node = start(cluster_dir, 10, [cluster[0].local_addr], issue_certificate=True)
    try:
        for n in [*cluster, node]:
            wait_alive(n, {1, 2, 3, 10})
        yield node
    finally:
        stop_all([node])
