"""A quorate node in a process of its own, driven by commands on stdin (for tests).

``python tests/agent.py DIR --id K [--seed ADDR]... [--heartbeat-timeout S]`` starts
node K of the cluster directory DIR on a free loopback port (no seeds unless given)
and prints JSON lines on stdout: ``node_started`` (with ``addr``), then the node's
events as ``python -m quorate node`` prints them, and one line per command outcome.
Lines it prints itself carry ``t``, the ``time.monotonic()`` clock (the same clock
in every process of the machine).

With ``--heartbeat-timeout`` a thread calls ``Node.heartbeat()`` every 0.1 s until the
``stop-beating`` command. Commands, one per line:

- ``campaign G``: runs for G's leadership; each leadership prints ``leading`` (its
  ``term``), then ``act`` lines while ``Leadership.is_valid()`` holds (every 0.05 s;
  ``t`` is read just *before* the check), and ``lost`` once ``wait_lost`` returned;
  then it waits for the next leadership (``campaign_ended`` when resigned).
- ``create G``, ``join G`` (after a sync): ``done`` or ``failed`` with ``error``.
- ``stop-beating``: ``beating_stopped``; ``beat``: ``heartbeat`` with ``alive``.
- ``members``: ``members`` with the ids seen ``alive``.
- ``quit`` (or end of input): leaves the cluster and exits.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from typing import Any

import quorate

_out = threading.Lock()


def emit(kind: str, **fields: Any) -> None:
    """Print one JSON line (whole, even from several threads)."""
    line: dict[str, Any] = {"event": kind, "t": time.monotonic()}
    line.update(fields)
    with _out:
        sys.stdout.write(json.dumps(line) + "\n")
        sys.stdout.flush()


def text(v: Any) -> Any:
    """Bytes as text (UTF-8, else hex), other values as they are."""
    if isinstance(v, bytes):
        try:
            return v.decode("utf-8")
        except UnicodeDecodeError:
            return v.hex()
    return v


def print_events(events: quorate.EventStream) -> None:
    """Print every event of the node until it stops."""
    for ev in events:
        with _out:
            sys.stdout.write(json.dumps({k: text(v) for k, v in ev.items()}) + "\n")
            sys.stdout.flush()


def beat(node: quorate.Node, stop: threading.Event) -> None:
    """Call ``heartbeat()`` every 0.1 s until ``stop`` is set."""
    while not stop.wait(0.1):
        try:
            if not node.heartbeat():
                emit("missed_heartbeat")
        except quorate.NodeStopped:
            return


def lead(campaign: quorate.Campaign) -> None:
    """Act as leader while each leadership holds; report when it is lost."""
    while True:
        try:
            leadership = campaign.leadership()
        except quorate.QuorateError as e:
            emit("campaign_ended", group=campaign.group, error=str(e))
            return
        assert leadership is not None
        term = leadership.term
        emit("leading", group=campaign.group, term=term)
        while not leadership.wait_lost(0.05):
            before = time.monotonic()
            if leadership.is_valid():
                emit("act", group=campaign.group, term=term, t=before)
        emit("lost", group=campaign.group, term=term)


def main() -> int:
    """Run the node until ``quit`` or the end of stdin."""
    p = argparse.ArgumentParser()
    p.add_argument("dir")
    p.add_argument("--id", type=int, required=True)
    p.add_argument("--seed", action="append", default=[])
    p.add_argument("--heartbeat-timeout", type=float)
    a = p.parse_args()
    node = quorate.Node.from_cluster_dir(
        a.dir,
        a.id,
        listen="127.0.0.1:0",
        seeds=a.seed,
        heartbeat_timeout=a.heartbeat_timeout,
    )
    events = node.events()
    emit("node_started", node=node.id, addr=node.local_addr)
    threading.Thread(target=print_events, args=(events,), daemon=True).start()
    stop_beating = threading.Event()
    if a.heartbeat_timeout is not None:
        threading.Thread(target=beat, args=(node, stop_beating), daemon=True).start()
    campaigns = []
    for line in sys.stdin:
        cmd, _, arg = line.strip().partition(" ")
        if cmd == "quit":
            break
        if cmd == "campaign":
            campaigns.append(node.campaign(arg))
            threading.Thread(target=lead, args=(campaigns[-1],), daemon=True).start()
        elif cmd in ("create", "join"):
            try:
                if cmd == "create":
                    node.create_group(arg)
                else:
                    node.sync()
                    node.join_group(arg)
                emit("done", cmd=cmd, group=arg)
            except quorate.QuorateError as e:
                emit("failed", cmd=cmd, group=arg, error=str(e))
        elif cmd == "stop-beating":
            stop_beating.set()
            emit("beating_stopped")
        elif cmd == "beat":
            emit("heartbeat", alive=node.heartbeat())
        elif cmd == "members":
            alive = [m.id for m in node.members() if m.state == "alive"]
            emit("members", alive=alive)
        else:
            emit("unknown_command", cmd=cmd)
    stop_beating.set()
    node.leave()
    return 0


if __name__ == "__main__":
    sys.exit(main())
