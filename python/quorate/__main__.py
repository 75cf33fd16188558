"""``python -m quorate``: make a cluster directory, or run one node of it.

``init DIR --nodes N`` writes what ``quorate init`` writes; ``node DIR --id K`` runs
node K and prints its events as JSON lines (as ``quorate node --json`` does) until
Ctrl-C or SIGTERM, then leaves the cluster gracefully.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from collections.abc import Sequence
from types import FrameType
from typing import Any

from . import Campaign, EventStream, Node, QuorateError, init_cluster


def _int_list(text: str) -> list[int]:
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a comma-separated list of node ids"
        ) from None


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m quorate",
        description="Membership and leader election for edge clusters.",
    )
    sub = p.add_subparsers(dest="cmd", required=True)

    i = sub.add_parser(
        "init", help="write a cluster directory: CA, node certificates, cluster.toml"
    )
    i.add_argument("dir", help="directory to write (created if missing)")
    i.add_argument("--nodes", type=int, default=5, help="number of nodes (ids 1..N)")
    i.add_argument(
        "--voters",
        type=_int_list,
        default=None,
        help="voter ids, comma-separated (default: the first three nodes)",
    )
    i.add_argument(
        "--base-port",
        type=int,
        default=7101,
        help="port of node 1; node K listens on 127.0.0.1:(P + K - 1)",
    )
    i.add_argument(
        "--preset",
        choices=["local", "lan", "wan"],
        default="lan",
        help="timing preset",
    )
    i.add_argument("--name", default="quorate", help="cluster name")
    i.add_argument("--force", action="store_true", help="overwrite a cluster")

    n = sub.add_parser(
        "node", help="run one node, printing its events as JSON lines until Ctrl-C"
    )
    n.add_argument("dir", help="the cluster directory written by init")
    n.add_argument("--id", type=int, required=True, help="this node's id")
    n.add_argument("--listen", help="listen address (default: cluster.toml's)")
    n.add_argument(
        "--seed",
        action="append",
        dest="seeds",
        help="join through this address instead of cluster.toml's seeds (repeatable)",
    )
    n.add_argument(
        "--preset", choices=["local", "lan", "wan"], help="override the timing preset"
    )
    n.add_argument("--meta", default="", help="metadata to publish (text)")
    n.add_argument(
        "--campaign",
        action="append",
        default=[],
        metavar="GROUP",
        help="run for the leadership of GROUP (repeatable)",
    )
    n.add_argument(
        "--issue-certificate",
        action="store_true",
        help="a node not in cluster.toml: issue its certificate with DIR/ca/ca.key",
    )
    n.add_argument(
        "--renewals", action="store_true", help="also print leadership_renewed"
    )
    return p


class _Out:
    """JSON lines on stdout; stops printing quietly once stdout is closed."""

    def __init__(self, node: int) -> None:
        self.node = node
        self.closed = False

    def event(self, ev: dict[str, Any]) -> None:
        line = {k: _text(v) for k, v in ev.items() if k != "metadata"}
        self._write(line)

    def line(self, kind: str, **fields: Any) -> None:
        obj: dict[str, Any] = {
            "ts_ms": int(time.time() * 1000),
            "node": self.node,
            "event": kind,
        }
        obj.update(fields)
        self._write(obj)

    def _write(self, obj: dict[str, Any]) -> None:
        if self.closed:
            return
        try:
            sys.stdout.write(json.dumps(obj, separators=(",", ":")) + "\n")
            sys.stdout.flush()
        except (BrokenPipeError, ValueError):
            self.closed = True


def _text(v: Any) -> Any:
    """Bytes as the CLI prints them: UTF-8 text when they are, else hex."""
    if isinstance(v, bytes):
        try:
            return v.decode("utf-8")
        except UnicodeDecodeError:
            return v.hex()
    return v


class _Stop(Exception):
    pass


def _on_term(signum: int, frame: FrameType | None) -> None:
    raise _Stop


def _run_node(a: argparse.Namespace) -> int:
    node = Node.from_cluster_dir(
        a.dir,
        a.id,
        listen=a.listen,
        seeds=a.seeds,
        preset=a.preset,
        metadata=a.meta.encode(),
        issue_certificate=a.issue_certificate,
    )
    out = _Out(node.id)
    out.line("node_started", addr=node.local_addr)
    events = node.events(renewals=a.renewals)
    campaigns: list[Campaign] = []
    signal.signal(signal.SIGTERM, _on_term)
    try:
        campaigns = [node.campaign(g) for g in a.campaign]
        while True:
            ev = events.next(timeout=0.5)
            if ev is not None:
                out.event(ev)
    except (KeyboardInterrupt, _Stop):
        pass
    finally:
        for c in campaigns:
            c.resign()
        _drain(events, out)
        out.line("leaving")
        node.leave()
        _drain(events, out)
        out.line("stopped", dropped_lines=0)
    return 0


def _drain(events: EventStream, out: _Out) -> None:
    try:
        while (ev := events.next(timeout=0)) is not None:
            out.event(ev)
    except QuorateError:
        pass


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``python -m quorate`` with ``argv`` (default: the command line)."""
    a = _parser().parse_args(argv)
    try:
        if a.cmd == "init":
            path = init_cluster(
                a.dir,
                nodes=a.nodes,
                voters=a.voters,
                base_port=a.base_port,
                preset=a.preset,
                name=a.name,
                force=a.force,
            )
            print(f"wrote cluster {a.name!r} with {a.nodes} nodes: {path}")
            print(f"start each node: python -m quorate node {a.dir} --id K")
            return 0
        return _run_node(a)
    except (QuorateError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
