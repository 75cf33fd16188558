"""``python -m quorate``."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

from conftest import random_base_port, wait_for

import quorate


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "quorate", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_help() -> None:
    out = _run("--help")
    assert out.returncode == 0 and "init" in out.stdout and "node" in out.stdout
    out = _run("node", "--help")
    assert out.returncode == 0 and "--id" in out.stdout


def test_init(tmp_path: Path) -> None:
    d = tmp_path / "c"
    out = _run("init", str(d), "--nodes", "3", "--voters", "1,2", "--preset", "local")
    assert out.returncode == 0, out.stderr
    assert "voters = [\n    1,\n    2,\n]" in (d / "cluster.toml").read_text()
    out = _run("init", str(d), "--nodes", "3")
    assert out.returncode == 1 and "already holds a cluster" in out.stderr


def test_node_prints_json_events_and_leaves_on_sigint(tmp_path: Path) -> None:
    d = tmp_path / "c"
    quorate.init_cluster(d, nodes=2, preset="local", base_port=random_base_port(2))
    with quorate.Node.from_cluster_dir(d, 1, listen="127.0.0.1:0", seeds=[]) as n1:
        proc = subprocess.Popen(
            [sys.executable, "-m", "quorate", "node", str(d), "--id", "2"]
            + ["--listen", "127.0.0.1:0", "--seed", n1.local_addr, "--meta", "m=2"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert proc.stdout is not None
            first = json.loads(proc.stdout.readline())
            assert first["event"] == "node_started" and first["node"] == 2
            while True:
                ev = json.loads(proc.stdout.readline())
                if ev["event"] == "member_joined" and ev["member"] == 1:
                    assert "metadata" not in ev and isinstance(ev["meta"], str)
                    break
            wait_for(lambda: (m := n1.member(2)) is not None and m.metadata == b"m=2")
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
        kinds = [json.loads(line)["event"] for line in out.splitlines()]
        assert kinds[-2:] == ["leaving", "stopped"], (kinds, err)
        assert proc.returncode == 0, err
        wait_for(lambda: (m := n1.member(2)) is not None and m.state == "left")
