"""Starting nodes, membership, metadata, events, stopping."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import (
    alive,
    make_cluster_dir,
    random_base_port,
    start,
    stop_all,
    wait_alive,
    wait_for,
)

import quorate


def test_init_writes_a_cluster_directory(tmp_path: Path) -> None:
    d = tmp_path / "c"
    path = quorate.init_cluster(d, nodes=4, voters=[1, 2, 3], base_port=7301)
    assert path == str(d / "cluster.toml")
    for name in ["ca.pem", "ca/ca.key", "node-1.pem", "node-4.key", "client.pem"]:
        assert (d / name).exists(), name
    assert (d / "nodes" / "4" / "node-4.pem").exists()
    text = (d / "cluster.toml").read_text()
    assert "127.0.0.1:7304" in text and "voters = [" in text
    with pytest.raises(quorate.QuorateError, match="already holds a cluster"):
        quorate.init_cluster(d, nodes=4)
    quorate.init_cluster(d, nodes=2, force=True)
    with pytest.raises(ValueError, match="nodes"):
        quorate.init_cluster(tmp_path / "bad", nodes=0)
    with pytest.raises(quorate.QuorateError, match="voter 9"):
        quorate.init_cluster(tmp_path / "bad2", nodes=3, voters=[1, 9])


def test_members_converge(cluster: list[quorate.Node]) -> None:
    n1, n2, n3 = cluster
    assert [m.id for m in n1.members()] == [1, 2, 3]
    me = n2.member(2)
    assert me is not None
    assert (me.id, me.addr, me.state) == (2, n2.local_addr, "alive")
    assert me.metadata == b"" and me.incarnation >= 0
    assert repr(me).startswith("Member(id=2, addr='127.0.0.1:")
    assert n3.member(99) is None
    assert n1.id == 1 and n1.running
    assert n1.advertised_addr() == n1.local_addr
    assert repr(n1) == f"Node(id=1, local_addr='{n1.local_addr}', running=True)"
    n2.wait_joined(5.0)


def test_a_member_outside_cluster_toml_joins_with_an_issued_certificate(
    member: quorate.Node, cluster: list[quorate.Node]
) -> None:
    assert member.id == 10
    assert alive(member) == {1, 2, 3, 10}
    info = cluster[2].member(10)
    assert info is not None and info.addr == member.local_addr


def test_a_node_without_certificate_is_refused(cluster_dir: Path) -> None:
    with pytest.raises(quorate.StartError, match="no certificate for node 11"):
        quorate.Node.from_cluster_dir(cluster_dir, 11, listen="127.0.0.1:0")


def test_bad_cluster_directories_raise_start_error(tmp_path: Path) -> None:
    with pytest.raises(quorate.StartError, match=r"cluster\.toml.*quorate init"):
        quorate.Node.from_cluster_dir(tmp_path, 1)
    d = make_cluster_dir(tmp_path / "c")
    toml = d / "cluster.toml"
    good = toml.read_text()
    toml.write_text(good.replace('preset = "local"', 'preset = "fast"'))
    with pytest.raises(quorate.StartError, match="unknown preset"):
        quorate.Node.from_cluster_dir(d, 1, listen="127.0.0.1:0")
    toml.write_text(good)
    with pytest.raises(quorate.StartError, match="node ids start at 1"):
        quorate.Node.from_cluster_dir(d, 0, listen="127.0.0.1:0", preset="local")
    with pytest.raises(quorate.StartError, match="listen address"):
        quorate.Node.from_cluster_dir(d, 1, listen="nowhere", preset="local")


def test_an_address_in_use_raises_start_error(
    cluster_dir: Path, cluster: list[quorate.Node]
) -> None:
    taken = cluster[0].local_addr
    with pytest.raises(
        quorate.StartError, match=f"cannot start node 3: cannot bind {taken}"
    ):
        quorate.Node.from_cluster_dir(cluster_dir, 3, listen=taken)


def test_nodes_listen_on_cluster_toml_addresses(tmp_path: Path) -> None:
    for attempt in range(5):
        d = make_cluster_dir(tmp_path / f"c{attempt}", base_port=random_base_port(3))
        nodes: list[quorate.Node] = []
        try:
            for k in (1, 2, 3):
                nodes.append(quorate.Node.from_cluster_dir(d, k))
        except quorate.StartError as e:
            stop_all(nodes)
            if "cannot bind" in str(e):
                continue
            raise
        try:
            for n in nodes:
                wait_alive(n, {1, 2, 3})
            text = (d / "cluster.toml").read_text()
            assert all(n.local_addr in text for n in nodes)
            assert (d / "data" / "node-1").is_dir()
        finally:
            stop_all(nodes)
        return
    pytest.fail("no free base port in 5 attempts")


def test_explicit_parameters(tmp_path: Path) -> None:
    d = make_cluster_dir(tmp_path / "one", nodes=1)
    node = quorate.Node.start(
        1,
        "127.0.0.1:0",
        cert_pem=d / "node-1.pem",
        key_pem=d / "node-1.key",
        ca_pem=str(d / "ca.pem"),
        voters=[1],
        preset="local",
        metadata=b"solo",
        data_dir=tmp_path / "data",
    )
    with node:
        assert node.member(1) is not None and node.member(1).metadata == b"solo"  # type: ignore[union-attr]
        with node.campaign("g") as campaign:
            lead = campaign.leadership(timeout=15.0)
            assert lead is not None and lead.term > 0
    assert (tmp_path / "data").is_dir()
    with pytest.raises(quorate.StartError, match="no such file|cannot"):
        quorate.Node.start(
            1,
            "127.0.0.1:0",
            cert_pem=d / "missing.pem",
            key_pem=d / "node-1.key",
            ca_pem=d / "ca.pem",
        )


def test_metadata_is_gossiped(cluster: list[quorate.Node]) -> None:
    n1, n2, _ = cluster
    events = n1.events()
    n2.set_metadata(b"zone=\xffb")

    def updated() -> bool:
        m = n1.member(2)
        return m is not None and m.metadata == b"zone=\xffb"

    wait_for(updated, what="node 2's metadata on node 1")
    while True:
        ev = events.next(timeout=10.0)
        assert ev is not None
        if ev["event"] == "member_updated" and ev["member"] == 2:
            break
    assert ev["metadata"] == b"zone=\xffb"
    assert ev["meta"] == b"zone=\xffb".hex()
    with pytest.raises(quorate.MetadataError, match="exceeds the limit"):
        n2.set_metadata(b"x" * 100_000)


def test_events_yield_member_joined_dicts(cluster: list[quorate.Node]) -> None:
    n1 = cluster[0]
    joined = set()
    for ev in n1.events():
        assert {"ts_ms", "node", "event"} <= ev.keys()
        assert ev["node"] == 1
        if ev["event"] == "member_joined":
            assert set(ev) >= {"member", "addr", "incarnation", "meta", "metadata"}
            assert isinstance(ev["metadata"], bytes)
            joined.add(ev["member"])
        if joined == {2, 3}:
            break
    later = n1.events()
    assert later.next(timeout=0.05) is None
    assert later.lagged == 0 and not later.closed


def test_leave_is_seen_as_left_and_stops_every_call(
    cluster: list[quorate.Node],
) -> None:
    n1, n2, n3 = cluster
    events = n1.events()
    stream = n3.events()
    with n3:
        pass
    assert not n3.running
    wait_for(
        lambda: (m := n1.member(3)) is not None and m.state == "left",
        what="node 3 reported left",
    )
    calls: list[Callable[[], object]] = [
        lambda: n3.members(),
        lambda: n3.member(1),
        lambda: n3.events(),
        lambda: n3.set_metadata(b""),
        lambda: n3.create_group("g"),
        lambda: n3.groups(),
        lambda: n3.group_members("g"),
        lambda: n3.campaign("g"),
        lambda: n3.leader("g"),
        lambda: n3.confirmed_leader("g"),
        lambda: n3.lock("l"),
        lambda: n3.stats(),
        lambda: n3.metrics(),
        lambda: n3.sync(),
        lambda: n3.wait_joined(1.0),
        lambda: n3.leave(),
        lambda: n3.shutdown(),
    ]
    for call in calls:
        with pytest.raises(quorate.NodeStopped):
            call()
    assert n3.id == 3 and "running=False" in repr(n3)
    # The stream of a stopped node ends once read.
    list(stream)
    assert stream.closed
    with pytest.raises(quorate.NodeStopped):
        stream.next(timeout=0.1)
    kinds = set()
    while (ev := events.next(timeout=1.0)) is not None:
        kinds.add((ev["event"], ev.get("member")))
        if ("member_left", 3) in kinds:
            break
    assert ("member_left", 3) in kinds


def test_a_wait_in_another_thread_ends_when_the_node_leaves(
    cluster: list[quorate.Node],
) -> None:
    n1, n2, _ = cluster
    guard = n1.lock("busy").acquire(timeout=15.0)
    errors: list[BaseException] = []

    def wait_for_lock() -> None:
        try:
            n2.lock("busy").acquire()
        except BaseException as e:  # noqa: BLE001 - recorded for the assertion
            errors.append(e)

    t = threading.Thread(target=wait_for_lock)
    t.start()
    wait_for(lambda: 2 in n1.candidates("lock/busy"), what="node 2 waiting")
    n2.leave()
    t.join(timeout=10.0)
    assert not t.is_alive()
    assert len(errors) == 1 and isinstance(errors[0], quorate.NodeStopped), errors
    guard.release()


def test_stats_and_metrics(cluster: list[quorate.Node]) -> None:
    stats = cluster[0].stats()
    assert stats["frames_out"] > 0 and "open_connections" in stats
    metrics = cluster[0].metrics()
    assert metrics["members"] == 3
    assert set(stats) <= set(metrics)


def test_sync_and_join_timeout(cluster_dir: Path, cluster: list[quorate.Node]) -> None:
    n1, n2, _ = cluster
    n1.create_group("synced")
    n2.sync(timeout=10.0)
    assert "synced" in n2.groups()
    lonely = start(cluster_dir, 3, ["127.0.0.1:9"])
    try:
        with pytest.raises(quorate.JoinTimeout, match="127.0.0.1:9"):
            lonely.wait_joined(0.3)
    finally:
        lonely.shutdown()
