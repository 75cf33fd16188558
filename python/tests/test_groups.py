"""Groups (tooz's API) and their errors."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from conftest import wait_for

import quorate


def test_group_lifecycle(cluster: list[quorate.Node]) -> None:
    n1, n2, n3 = cluster
    n1.create_group("workers")
    assert n1.groups() == ["workers"]
    n2.sync()
    n2.join_group("workers", b"gpu=1")
    n3.sync()
    n3.join_group("workers")
    n1.sync()
    assert n1.group_members("workers") == {2: b"gpu=1", 3: b""}
    assert n1.member_capabilities("workers", 2) == b"gpu=1"
    n2.update_capabilities("workers", b"gpu=2")
    n1.sync()
    assert n1.member_capabilities("workers", 2) == b"gpu=2"
    n2.leave_group("workers")
    n3.leave_group("workers")
    n1.sync()
    assert n1.group_members("workers") == {}
    n1.delete_group("workers")
    n2.sync()
    assert n2.groups() == []


def test_group_errors(cluster: list[quorate.Node]) -> None:
    n1, n2, _ = cluster
    n1.create_group("g")
    with pytest.raises(quorate.GroupAlreadyExists, match='group "g" already exists'):
        n1.create_group("g")
    with pytest.raises(quorate.BadGroupName, match="invalid group name"):
        n1.create_group("")
    with pytest.raises(quorate.BadGroupName):
        n1.create_group("x" * 200)
    with pytest.raises(quorate.GroupNotCreated, match='"missing" does not exist'):
        n1.join_group("missing")
    with pytest.raises(quorate.GroupNotCreated):
        n1.group_members("missing")
    n1.join_group("g", b"a")
    with pytest.raises(quorate.AlreadyJoined):
        n1.join_group("g")
    with pytest.raises(quorate.NotJoined):
        n1.member_capabilities("g", 3)
    n2.sync()
    with pytest.raises(quorate.NotJoined):
        n2.leave_group("g")
    with pytest.raises(quorate.GroupNotEmpty, match="still has members"):
        n2.delete_group("g")
    with pytest.raises(quorate.GroupStateTooLarge, match="exceeds the limit"):
        n1.update_capabilities("g", b"x" * 10_000)
    for cls in [
        quorate.BadGroupName,
        quorate.GroupNotCreated,
        quorate.GroupAlreadyExists,
        quorate.AlreadyJoined,
        quorate.NotJoined,
        quorate.GroupNotEmpty,
        quorate.TooManyGroups,
        quorate.GroupStateTooLarge,
    ]:
        assert issubclass(cls, quorate.GroupError)
        assert issubclass(cls, quorate.QuorateError)


def test_group_events(cluster: list[quorate.Node]) -> None:
    n1, n2, _ = cluster
    events = n1.events()
    # Node 1 syncs after each write so that it sees every intermediate state (gossip
    # alone may bring it several writes at once).
    steps: list[tuple[Callable[[], None], str, dict[str, object]]] = [
        (lambda: n2.create_group("ev"), "group_created", {"group": "ev"}),
        (
            lambda: n2.join_group("ev", b"\x00caps"),
            "group_joined",
            {"group": "ev", "member": 2, "capabilities": b"\x00caps"},
        ),
        (
            lambda: n2.update_capabilities("ev", b"v2"),
            "capabilities_updated",
            {"group": "ev", "member": 2, "capabilities": b"v2"},
        ),
        (lambda: n2.leave_group("ev"), "group_left", {"group": "ev", "member": 2}),
        (lambda: n2.delete_group("ev"), "group_deleted", {"group": "ev"}),
    ]
    for write, kind, fields in steps:
        write()
        n1.sync(timeout=10.0)
        ev = wait_for(lambda: _next_group_event(events), what=kind)
        assert ev["event"] == kind, ev
        for k, v in fields.items():
            assert ev[k] == v, (kind, k)


def _next_group_event(events: quorate.EventStream) -> dict[str, object] | None:
    ev = events.next(timeout=0.2)
    if ev is not None and ev["event"].startswith(("group_", "capabilities_")):
        return ev
    return None
