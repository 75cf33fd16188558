"""A pifpaf plugin: ``pifpaf run quorate -- CMD`` runs CMD beside a 3-voter cluster.

The cluster lives in a temporary directory (``quorate init`` layout) on free loopback
ports; its three nodes are real processes (``python -m quorate node``), their output
in ``DIR/node-K.log``. CMD gets ``PIFPAF_URL`` and ``TOOZ_TEST_URL``
(``quorate:///DIR``: tooz's quorate backend, each coordinator a throwaway member of
the cluster), ``PIFPAF_QUORATE_DIR`` and ``PIFPAF_QUORATE_SEEDS``. The nodes leave the
cluster when CMD ends.
"""

from __future__ import annotations

import os
import random
import socket
import subprocess
import sys
import time
from typing import Any

from pifpaf import drivers  # type: ignore[import-untyped]

import quorate

#: How long the cluster may take to come up, in seconds.
START_TIMEOUT = 30.0


def free_base_port(count: int, tries: int = 200) -> int:
    """Return a port such that ``port .. port + count - 1`` are free UDP ports."""
    for _ in range(tries):
        base = random.randint(20000, 60000 - count)
        held = []
        try:
            for p in range(base, base + count):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                held.append(s)
                s.bind(("127.0.0.1", p))
            return base
        except OSError:
            continue
        finally:
            for s in held:
                s.close()
    raise RuntimeError(f"no {count} consecutive free UDP ports found")


class QuorateDriver(drivers.Driver):  # type: ignore[misc]
    """Starts a quorate cluster of ``--nodes`` voters (default 3)."""

    DEFAULT_NODES = 3

    def __init__(
        self, nodes: int = DEFAULT_NODES, preset: str = "local", **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.nodes = nodes
        self.preset = preset

    @classmethod
    def get_options(cls) -> list[dict[str, Any]]:
        return [
            {
                "param_decls": ["--nodes"],
                "type": int,
                "default": cls.DEFAULT_NODES,
                "help": "number of voting nodes",
            },
            {
                "param_decls": ["--preset"],
                "default": "local",
                "help": "timing preset: local, lan or wan",
            },
        ]

    def _setUp(self) -> None:
        super()._setUp()
        cluster = os.path.join(self.tempdir, "cluster")
        base = free_base_port(self.nodes)
        quorate.init_cluster(
            cluster,
            nodes=self.nodes,
            voters=list(range(1, self.nodes + 1)),
            base_port=base,
            preset=self.preset,  # type: ignore[arg-type]
            name="pifpaf",
        )
        for k in range(1, self.nodes + 1):
            self._start_node(cluster, k)
        self._wait_ready(cluster)
        seeds = ",".join(f"127.0.0.1:{base + k}" for k in range(self.nodes))
        url = "quorate://" + cluster
        self.putenv("QUORATE_DIR", cluster)
        self.putenv("QUORATE_SEEDS", seeds)
        self.putenv("URL", url)
        self.putenv("TOOZ_TEST_URL", url, raw=True)

    def _start_node(self, cluster: str, k: int) -> None:
        log_path = os.path.join(cluster, f"node-{k}.log")
        log = open(log_path, "wb")
        self.addCleanup(log.close)
        proc = subprocess.Popen(
            [sys.executable, "-m", "quorate", "node", cluster, "--id", str(k)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.addCleanup(self._stop_node, proc)
        deadline = time.monotonic() + START_TIMEOUT
        while b"node_started" not in _read(log_path):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"quorate node {k} did not start: {_read(log_path)!r}"
                )
            time.sleep(0.05)

    @staticmethod
    def _stop_node(proc: subprocess.Popen[bytes]) -> None:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def _wait_ready(self, cluster: str) -> None:
        """Wait until a member can join and a quorum of voters answers it."""
        probe: quorate.Node | None = None
        try:
            probe = quorate.Node.from_cluster_dir(
                cluster,
                (1 << 60) | random.getrandbits(32),
                listen="127.0.0.1:0",
                issue_certificate=True,
            )
            probe.wait_joined(START_TIMEOUT)
            probe.sync(START_TIMEOUT)
        finally:
            if probe is not None:
                probe.leave()


def _read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()
