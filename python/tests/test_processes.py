"""Nodes in processes of their own: leaders killed, frozen, or gone silent.

Each node is a real process: ``python -m quorate node`` (the CLI), or
``tests/agent.py`` (a node driven by commands on stdin that also acts as a leader
and beats the watchdog). Both print JSON lines; the tests wait on those lines with
generous deadlines, and every process is killed at the end.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable

import pytest
from conftest import DEADLINE, make_cluster_dir

AGENT = str(Path(__file__).with_name("agent.py"))

Line = dict[str, Any]


class Proc:
    """One node's process; its stdout's JSON lines are collected as they come."""

    def __init__(self, name: str, argv: list[str], log: Path) -> None:
        self.name = name
        self.lines: list[Line] = []
        self._cond = threading.Condition()
        self._log = log
        self._stderr = open(log, "wb")
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            try:
                line = json.loads(raw)
            except ValueError:
                line = {"event": "unparsed", "text": raw}
            with self._cond:
                self.lines.append(line)
                self._cond.notify_all()

    def snapshot(self) -> list[Line]:
        with self._cond:
            return list(self.lines)

    def mark(self) -> int:
        """How many lines came so far (for ``after``: only later lines count)."""
        with self._cond:
            return len(self.lines)

    def wait(
        self,
        pred: Callable[[Line], bool],
        what: str,
        timeout: float = DEADLINE,
        after: int = 0,
    ) -> Line:
        """The first line from ``after`` on matching ``pred``, waiting at most
        ``timeout`` for it."""
        end = time.monotonic() + timeout
        with self._cond:
            while True:
                for line in self.lines[after:]:
                    if pred(line):
                        return line
                left = end - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and not self._alive()):
                    break
                self._cond.wait(min(left, 0.1))
        pytest.fail(f"{self.name}: no {what} within {timeout}s\n{self.describe()}")

    def _alive(self) -> bool:
        return self._reader.is_alive()

    def event(
        self, kind: str, timeout: float = DEADLINE, after: int = 0, **fields: Any
    ) -> Line:
        """The first line of ``kind`` (from ``after`` on) that has ``fields``."""
        return self.wait(
            lambda ln: (
                ln.get("event") == kind
                and all(ln.get(k) == v for k, v in fields.items())
            ),
            f"{kind} {fields}",
            timeout,
            after,
        )

    def send(self, command: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()

    def signal(self, sig: int) -> None:
        os.kill(self.proc.pid, sig)

    def describe(self) -> str:
        tail = "\n".join(json.dumps(ln) for ln in self.snapshot()[-40:])
        err = self._log.read_text(errors="replace")[-2000:]
        return f"-- last lines of {self.name}:\n{tail}\n-- stderr:\n{err}"

    def kill(self) -> None:
        """Kill the process (resumed first if stopped) and reap it."""
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGCONT)
                self.proc.kill()
            except ProcessLookupError:
                pass
        self.proc.wait(timeout=30)
        for f in (self.proc.stdin, self.proc.stdout):
            if f is not None:
                try:
                    f.close()
                except OSError:
                    pass
        self._stderr.close()


class Cluster:
    """Processes of one cluster directory; node 1 (an agent) is everyone's seed."""

    def __init__(self, path: Path, nodes: int) -> None:
        self.dir = make_cluster_dir(path / "cluster", nodes=nodes)
        self.logs = path
        self.procs: dict[int, Proc] = {}
        self.seed: str | None = None

    def _seeds(self) -> list[str]:
        return [] if self.seed is None else ["--seed", self.seed]

    def agent(self, node_id: int, *extra: str) -> Proc:
        """Start node ``node_id`` as ``tests/agent.py``."""
        argv = [sys.executable, AGENT, str(self.dir), "--id", str(node_id)]
        return self._start(node_id, argv + self._seeds() + list(extra))

    def cli(self, node_id: int, *extra: str) -> Proc:
        """Start node ``node_id`` as ``python -m quorate node``."""
        argv = [sys.executable, "-m", "quorate", "node", str(self.dir)]
        argv += ["--id", str(node_id), "--listen", "127.0.0.1:0"]
        return self._start(node_id, argv + self._seeds() + list(extra))

    def _start(self, node_id: int, argv: list[str]) -> Proc:
        assert node_id not in self.procs
        p = Proc(f"node {node_id}", argv, self.logs / f"node-{node_id}.stderr")
        self.procs[node_id] = p
        started = p.event("node_started")
        if self.seed is None:
            self.seed = started["addr"]
        return p

    def wait_all_joined(self) -> None:
        """Wait until every process has seen every other node join."""
        for k, p in self.procs.items():
            for other in self.procs:
                if other != k:
                    p.event("member_joined", member=other)

    def kill_all(self) -> None:
        for p in self.procs.values():
            p.kill()


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Callable[[int], Cluster]]:
    """Makes clusters of processes; kills every process they started at the end."""
    made: list[Cluster] = []

    def make(nodes: int) -> Cluster:
        c = Cluster(tmp_path / f"c{len(made)}", nodes)
        made.append(c)
        return c

    try:
        yield make
    finally:
        for c in made:
            c.kill_all()


def acquired(p: Proc, group: str) -> list[Line]:
    return [
        ln
        for ln in p.snapshot()
        if ln.get("event") == "leadership_acquired" and ln.get("group") == group
    ]


def test_nodes_in_several_processes_agree_on_members_and_one_leader(
    processes: Callable[[int], Cluster],
) -> None:
    c = processes(4)
    c.agent(1).send("campaign g")
    for k in (2, 3, 4):
        c.cli(k, "--campaign", "g", "--meta", f"n{k}")
    c.wait_all_joined()
    # Every process sees the others' metadata and one leader with one term.
    for k in (1, 3):
        for other in (2, 4):
            c.procs[k].event("member_joined", member=other, meta=f"n{other}")
    leader = None
    end = time.monotonic() + DEADLINE
    while leader is None and time.monotonic() < end:
        leaders = [(k, ln) for k, p in c.procs.items() for ln in acquired(p, "g")]
        if leaders:
            assert len(leaders) == 1, leaders
            leader = leaders[0]
        time.sleep(0.05)
    assert leader is not None, "nobody acquired the leadership"
    lead_id, line = leader
    for p in c.procs.values():
        p.event("leader_changed", group="g", leader=lead_id, term=line["term"])
    # A graceful stop: SIGTERM, the CLI says so, the others see it leave.
    c.procs[4].signal(signal.SIGTERM)
    assert c.procs[4].proc.wait(timeout=DEADLINE) == 0
    c.procs[4].event("stopped")
    for k in (1, 2, 3):
        c.procs[k].event("member_left", member=4)


def test_killing_the_leader_process_elects_another_with_a_higher_term(
    processes: Callable[[int], Cluster],
) -> None:
    c = processes(4)
    c.agent(1)
    for k in (2, 3, 4):
        c.cli(k, "--campaign", "g")
    c.wait_all_joined()
    c.procs[1].send("campaign g")
    first = None
    end = time.monotonic() + DEADLINE
    while first is None and time.monotonic() < end:
        found = [(k, ln) for k, p in c.procs.items() for ln in acquired(p, "g")]
        first = found[0] if found else None
        time.sleep(0.05)
    assert first is not None, "nobody acquired the leadership"
    old, old_line = first
    old_term = old_line["term"]

    survivors = [k for k in c.procs if k != old]
    marks = {k: c.procs[k].mark() for k in survivors}
    c.procs[old].signal(signal.SIGKILL)
    assert c.procs[old].proc.wait(timeout=DEADLINE) == -signal.SIGKILL
    new_line = c.procs[survivors[0]].wait(
        lambda ln: (
            ln.get("event") == "leader_changed"
            and ln.get("group") == "g"
            and ln.get("leader") not in (None, old)
        ),
        "a new leader",
        after=marks[survivors[0]],
    )
    new, new_term = new_line["leader"], new_line["term"]
    assert new in survivors and new_term > old_term
    c.procs[new].event("leadership_acquired", group="g", term=new_term)
    for k in survivors:
        p = c.procs[k]
        p.event("leader_changed", group="g", leader=new, term=new_term)
        p.event("member_failed", member=old, after=marks[k])


def test_a_leader_frozen_past_its_lease_reports_the_loss_and_never_acts_on_it(
    processes: Callable[[int], Cluster],
) -> None:
    c = processes(3)
    for k in (1, 2, 3):
        c.agent(k)
    c.wait_all_joined()
    n1, n2, n3 = (c.procs[k] for k in (1, 2, 3))
    n1.send("campaign g")
    old_term = n1.event("leading", group="g")["term"]
    n1.event("act", term=old_term)
    n2.send("campaign g")
    n3.event("leader_changed", group="g", leader=1, term=old_term)

    n1.signal(signal.SIGSTOP)
    stopped = time.monotonic()
    taken = n2.event("leading", group="g")
    assert taken["term"] > old_term
    assert taken["t"] > stopped
    n3.event("leader_changed", group="g", leader=2, term=taken["term"])
    n1.signal(signal.SIGCONT)

    lost = n1.event("lost", group="g", term=old_term)
    n1.event("leadership_lost", group="g", term=old_term, reason="lease_expired")
    assert lost["t"] > taken["t"]
    acts = [ln for ln in n1.snapshot() if ln["event"] == "act"]
    old_acts = [ln for ln in acts if ln["term"] == old_term]
    assert old_acts, "node 1 acted as leader before it was stopped"
    late = [ln for ln in old_acts if ln["t"] >= taken["t"]]
    assert not late, f"node 1 acted with term {old_term} while node 2 led: {late}"
    # Node 2 went on leading throughout.
    assert not [ln for ln in n2.snapshot() if ln["event"] == "lost"]


def test_a_silent_application_loses_its_groups_and_leadership_but_stays_a_member(
    processes: Callable[[int], Cluster],
) -> None:
    c = processes(5)
    c.agent(1)
    c.cli(2)
    c.cli(3)
    watched = c.agent(4, "--heartbeat-timeout", "1.0")
    started = watched.event("node_started")["t"]
    other = c.agent(5)
    c.wait_all_joined()
    watched.send("create wd")
    watched.event("done", cmd="create")
    for p in (watched, other):
        p.send("join wd")
        p.event("done", cmd="join")
    watched.send("campaign wd")
    old_term = watched.event("leading", group="wd")["term"]
    other.send("campaign wd")
    c.procs[2].event("leader_changed", group="wd", leader=4, term=old_term)
    # Let it beat for more than twice its timeout before it falls silent.
    time.sleep(max(0.0, started + 2.5 - time.monotonic()))
    watched.send("stop-beating")
    silent = watched.event("beating_stopped")["t"]
    # Beating all along (2.5 s, past the 1 s timeout), it kept everything.
    early = [ln for ln in watched.snapshot() if ln["event"] in ("lost", "group_left")]
    assert not early, early

    lost = watched.event("lost", group="wd", term=old_term)
    assert lost["t"] >= silent + 0.8, "lost before the heartbeat timeout"
    taken = other.event("leading", group="wd")
    assert taken["term"] > old_term
    for k in (1, 2, 3, 5):
        c.procs[k].event("group_left", group="wd", member=4)
        c.procs[k].event("leader_changed", group="wd", leader=5, term=taken["term"])
    # Still a member: alive in the others' views, never failed or left.
    other.send("members")
    assert 4 in other.event("members")["alive"]
    mark = watched.mark()
    watched.send("beat")
    assert watched.event("heartbeat", after=mark)["alive"] is False
    mark = watched.mark()
    watched.send("beat")
    assert watched.event("heartbeat", after=mark)["alive"] is True
    for p in c.procs.values():
        gone = [
            ln
            for ln in p.snapshot()
            if ln["event"] in ("member_failed", "member_left") and ln["member"] == 4
        ]
        assert not gone, (p.name, gone)
