"""The application watchdog: ``heartbeat_timeout`` and ``Node.heartbeat()``."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import start, stop_all, wait_alive, wait_for

import quorate


def test_heartbeat_timeout_is_checked_and_reported(
    cluster_dir: Path, cluster: list[quorate.Node]
) -> None:
    n1 = cluster[0]
    assert n1.heartbeat_timeout is None
    assert n1.heartbeat() is True and n1.heartbeat() is True, "no watchdog: a no-op"
    for bad in [0, -1.0, float("nan"), float("inf")]:
        with pytest.raises(ValueError, match="heartbeat_timeout"):
            start(cluster_dir, 10, [n1.local_addr], heartbeat_timeout=bad)
    node = start(
        cluster_dir,
        10,
        [n1.local_addr],
        issue_certificate=True,
        heartbeat_timeout=2.5,
    )
    try:
        assert node.heartbeat_timeout == 2.5
        assert node.heartbeat() is True
    finally:
        node.shutdown()
    with pytest.raises(quorate.NodeStopped):
        node.heartbeat()


class Beater:
    """Calls ``node.heartbeat()`` every 50 ms in a thread until ``stop()``."""

    def __init__(self, node: quorate.Node) -> None:
        self.node = node
        self.missed = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                if not self.node.heartbeat():
                    self.missed += 1
            except quorate.NodeStopped:
                return
            time.sleep(0.05)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


@pytest.fixture
def watched(
    cluster_dir: Path, cluster: list[quorate.Node]
) -> Iterator[tuple[quorate.Node, Beater]]:
    """Node 10 with a 1 s watchdog, kept alive by a beating thread."""
    node = start(
        cluster_dir,
        10,
        [cluster[0].local_addr],
        issue_certificate=True,
        heartbeat_timeout=1.0,
    )
    beater = Beater(node)
    try:
        for n in [*cluster, node]:
            wait_alive(n, {1, 2, 3, 10})
        yield node, beater
    finally:
        beater.stop()
        stop_all([node])


def test_a_silent_application_loses_its_groups_leaderships_and_locks(
    cluster: list[quorate.Node], watched: tuple[quorate.Node, Beater]
) -> None:
    n1 = cluster[0]
    node, beater = watched
    n1.create_group("wd")
    node.sync()
    node.join_group("wd", b"ten")
    n1.join_group("wd")
    campaign = node.campaign("wd-lead")
    lead = campaign.leadership(timeout=15.0)
    assert lead is not None
    other = n1.campaign("wd-lead")
    guard = node.lock("wd-lock").acquire(timeout=15.0)
    # Beating, it keeps everything well past the timeout.
    assert not lead.wait_lost(timeout=2.5)
    assert guard.is_owner() and node.group_members("wd").keys() == {1, 10}
    assert beater.missed == 0

    beater.stop()
    silent = time.monotonic()
    assert lead.wait_lost(timeout=15.0)
    assert time.monotonic() - silent >= 0.9, "not before the timeout"
    assert guard.wait_lost(timeout=15.0)
    taken = other.leadership(timeout=15.0)
    assert taken is not None and taken.term > lead.term
    wait_for(lambda: n1.group_members("wd").keys() == {1}, what="node 10 gone")
    with pytest.raises(quorate.CampaignEnded, match="resigned"):
        campaign.leadership(timeout=1.0)
    # Still a member of the cluster, seen alive by everyone.
    for n in [*cluster, node]:
        m = n.member(10)
        assert m is not None and m.state == "alive"
    assert node.metrics()["watchdog_expiries"] == 1

    assert node.heartbeat() is False, "the first beat after the silence says so"
    assert node.heartbeat() is True
    node.join_group("wd", b"back")
    n1.sync()
    assert n1.group_members("wd") == {1: b"", 10: b"back"}
