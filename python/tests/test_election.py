"""Campaigns, leaderships and locks."""

from __future__ import annotations

import _thread
import threading
import time

import pytest
from conftest import wait_for

import quorate


def test_a_campaign_wins_and_a_resign_hands_over(cluster: list[quorate.Node]) -> None:
    n1, n2, n3 = cluster
    events = n1.events()
    c1 = n1.campaign("sched")
    assert c1.group == "sched" and repr(c1) == "Campaign(group='sched')"
    lead1 = c1.leadership(timeout=15.0)
    assert lead1 is not None
    assert (lead1.group, lead1.is_valid(), c1.is_leader()) == ("sched", True, True)
    assert 0 < lead1.remaining <= 10.0
    assert lead1.deadline is not None and lead1.deadline > time.monotonic()
    assert not lead1.wait_lost(timeout=0.05)
    assert n3.confirmed_leader("sched") == (1, lead1.term)
    wait_for(lambda: n3.leader("sched") == (1, lead1.term), what="gossiped leader")

    c2 = n2.campaign("sched")
    assert c2.leadership(timeout=0.3) is None, "node 1 still leads"
    wait_for(lambda: n3.candidates("sched") == [1, 2], what="both candidates")
    assert c1.resign() is True
    assert c1.resign() is False
    assert lead1.wait_lost(timeout=5.0) and not lead1.is_valid()
    with pytest.raises(quorate.CampaignEnded):
        c1.leadership(timeout=1.0)
    own = [
        (ev["event"], ev["term"], ev.get("reason"))
        for ev in iter(lambda: events.next(timeout=0.5), None)
        if ev["event"].startswith("leadership_")
    ]
    assert own == [
        ("leadership_acquired", lead1.term, None),
        ("leadership_lost", lead1.term, "resigned"),
    ]

    lead2 = c2.leadership(timeout=15.0)
    assert lead2 is not None and lead2.term > lead1.term
    assert n1.confirmed_leader("sched") == (2, lead2.term)
    assert lead2.resign() is True and lead2.resign() is False
    with pytest.raises(quorate.CampaignEnded, match="resigned"):
        c2.leadership(timeout=1.0)
    assert n3.confirmed_leader("sched") is None


def test_a_campaign_ends_when_its_node_leaves(cluster: list[quorate.Node]) -> None:
    n3 = cluster[2]
    campaign = n3.campaign("ends")
    waiting = n3.campaign("other")
    assert campaign.leadership(timeout=15.0) is not None
    n3.leave()
    assert not campaign.is_leader()
    with pytest.raises(quorate.CampaignEnded, match="stopped"):
        campaign.leadership(timeout=5.0)
    with pytest.raises(quorate.CampaignEnded):
        waiting.leadership()
    assert campaign.resign() is True and campaign.resign() is False


def test_campaign_errors(cluster: list[quorate.Node]) -> None:
    n1 = cluster[0]
    c = n1.campaign("twice")
    with pytest.raises(quorate.CampaignError, match="already running"):
        n1.campaign("twice")
    with pytest.raises(quorate.CampaignError, match="invalid group name"):
        n1.campaign("")
    c.resign()
    n1.campaign("twice").resign()


def test_elections_off_without_voters(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from conftest import make_cluster_dir

    d = make_cluster_dir(tmp_path / "c", nodes=1, voters=[1])
    text = (d / "cluster.toml").read_text().replace("voters = [1]", "voters = []")
    (d / "cluster.toml").write_text(text)
    with quorate.Node.from_cluster_dir(d, 1, listen="127.0.0.1:0") as node:
        with pytest.raises(quorate.CampaignError, match="elections are off"):
            node.campaign("g")
        with pytest.raises(quorate.LeaderQueryError, match="elections are off"):
            node.confirmed_leader("g")
        with pytest.raises(quorate.LockRefused, match="elections are off"):
            node.lock("l").acquire(timeout=1.0)
        with pytest.raises(quorate.SyncError, match="no voters"):
            node.sync(timeout=1.0)


def test_lock_exclusion_and_rising_fencing_tokens(
    cluster: list[quorate.Node],
) -> None:
    n1, n2, n3 = cluster
    lock1, lock2 = n1.lock("disk"), n2.lock("disk")
    assert lock1.name == "disk"
    g1 = lock1.acquire(timeout=15.0)
    assert g1.name == "disk" and g1.is_owner() and g1.remaining > 0
    assert repr(g1).startswith("LockGuard(name='disk', fencing_token=")
    wait_for(lambda: lock2.holder() == (1, g1.fencing_token), what="gossiped holder")
    assert lock2.try_acquire() is None
    with pytest.raises(quorate.LockTimeout, match="still held elsewhere"):
        lock2.acquire(timeout=0.5)
    # Not reentrant: on the holder, a second acquisition waits like another node's.
    with pytest.raises(quorate.LockTimeout):
        n1.lock("disk").acquire(timeout=0.5)
    assert n1.lock("disk").try_acquire() is None

    got: list[quorate.LockGuard] = []
    t = threading.Thread(target=lambda: got.append(lock2.acquire(timeout=15.0)))
    t.start()
    wait_for(lambda: 2 in n1.candidates("lock/disk"), what="node 2 waiting")
    with pytest.raises(quorate.LockTimeout):
        n2.lock("disk").acquire(timeout=0.5)
    assert g1.release() is True
    assert g1.release() is False
    assert not g1.is_owner() and g1.wait_lost(timeout=1.0)
    t.join(timeout=20.0)
    assert len(got) == 1
    g2 = got[0]
    assert g2.fencing_token > g1.fencing_token and g2.is_owner()
    with g2:
        assert n3.lock("disk").try_acquire() is None
    assert not g2.is_owner()

    lock3 = n3.lock("disk")
    with lock3 as g3:
        assert g3.fencing_token > g2.fencing_token
        assert n3.confirmed_leader("lock/disk") == (3, g3.fencing_token)
        with pytest.raises(quorate.LockRefused, match="not reentrant"):
            with lock3:
                pass
    assert not g3.is_owner()
    with pytest.raises(quorate.LockRefused):
        n1.lock("x" * 200).acquire(timeout=1.0)


def test_ctrl_c_interrupts_a_lock_wait_and_takes_nothing(
    cluster: list[quorate.Node],
) -> None:
    n1, n2, _ = cluster
    held = n1.lock("ctrl-c").acquire(timeout=15.0)
    timer = threading.Timer(0.3, _thread.interrupt_main)
    timer.start()
    start = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        n2.lock("ctrl-c").acquire()
    assert time.monotonic() - start < 5.0
    timer.join()
    wait_for(lambda: n1.candidates("lock/ctrl-c") == [1], what="node 2 stopped waiting")
    held.release()
    again = n1.lock("ctrl-c").acquire(timeout=15.0)
    assert again.fencing_token > held.fencing_token
    again.release()


def test_cancelled_lock_wait(cluster: list[quorate.Node]) -> None:
    n1, n2, _ = cluster
    held = n1.lock("cancel").acquire(timeout=15.0)
    cancel = threading.Event()
    threading.Timer(0.3, cancel.set).start()
    with pytest.raises(quorate.LockTimeout, match="cancelled"):
        n2.lock("cancel").acquire(cancel=cancel)
    held.release()


def test_exception_hierarchy() -> None:
    assert issubclass(quorate.QuorateError, Exception)
    for lock_cls in [quorate.LockTimeout, quorate.LockLost, quorate.LockRefused]:
        assert issubclass(lock_cls, quorate.LockError)
    classes: list[type[quorate.QuorateError]] = [
        quorate.StartError,
        quorate.JoinTimeout,
        quorate.NodeStopped,
        quorate.GroupError,
        quorate.CampaignError,
        quorate.CampaignEnded,
        quorate.LeaderQueryError,
        quorate.LockError,
        quorate.SyncError,
        quorate.MetadataError,
    ]
    for cls in classes:
        assert issubclass(cls, quorate.QuorateError)
        assert cls.__module__ == "quorate"
