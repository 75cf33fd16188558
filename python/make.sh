#!/usr/bin/env bash
# The Python package's two jobs, each on a fresh machine:
#   python/make.sh demo   build quorate into python/.venv, then run the seed programs
#                         (examples/python: tooz, kazoo, etcd3) beside a 3-voter
#                         cluster that pifpaf starts
#   python/make.sh test   build, check the Python code (ruff, mypy), run the
#                         package's tests, then tooz's own test suite (tooz 9.1.0)
#                         against the quorate driver
# The virtual environment (python/.venv, or $QUORATE_VENV) is made on first use.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="${QUORATE_VENV:-$here/.venv}"

setup() {
  if [ ! -x "$venv/bin/python" ]; then
    # Debian's python3 lacks venv and ensurepip until python3-venv is installed.
    if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1 && command -v apt-get >/dev/null; then
      apt-get update -qq && apt-get install -y -qq python3-venv
    fi
    python3 -m venv "$venv"
  fi
  "$venv/bin/pip" install -q --upgrade pip
  # tooz's test suite imports every driver module it compares against.
  # ruff and mypy are pinned: a newer one may format or infer differently.
  "$venv/bin/pip" install -q "maturin>=1.9,<2" pytest testtools pifpaf \
    "tooz[etcd3gw,redis,memcached,ipc]==9.1.0" ruff==0.17.6 mypy==2.4.1
  # A debug build: the dev profile optimises the quorate crate (Cargo.toml), and
  # tooz's suite mostly waits on its timeouts (28 s of CPU in 83 s); a release
  # build takes about twice the CPU time (6 min against 3.5 from scratch).
  (cd "$here" && VIRTUAL_ENV="$venv" PATH="$venv/bin:$PATH" maturin develop -q)
}

case "${1:-}" in
  demo)
    setup
    cd "$here/../examples/python"
    # The seed programs, one after another, beside one 3-voter cluster.
    PATH="$venv/bin:$PATH" pifpaf run quorate -- sh -ec '
      for f in tooz_coordinator tooz_groups tooz_leader_election \
               tooz_leader_election_handover kazoo_election etcd_lease_election; do
        echo "== examples/python/$f.py"
        python "$f.py"
      done'
    ;;
  test)
    setup
    cd "$here/.."
    "$venv/bin/ruff" format --check python examples/python
    "$venv/bin/ruff" check python examples/python
    cd "$here"
    "$venv/bin/mypy" quorate bench tests/agent.py tests/test_processes.py
    PATH="$venv/bin:$PATH" python -m pytest -q -p no:cacheprovider tests
    # tooz's own suite, unchanged, against a cluster that pifpaf starts; a driver
    # that passes fewer than ZooKeeper's 90 (skipping more) fails too.
    # The README's command: pifpaf run quorate -- python -m pytest --pyargs
    # tooz.tests.test_coordination tooz.tests.test_partitioner
    report="$(mktemp)"
    PATH="$venv/bin:$PATH" pifpaf run quorate -- \
      python -m pytest -q -p no:cacheprovider -rs --junitxml="$report" \
      --pyargs tooz.tests.test_coordination tooz.tests.test_partitioner
    "$venv/bin/python" - "$report" <<'PY'
import sys
import xml.etree.ElementTree as ET

suite = ET.parse(sys.argv[1]).getroot()
suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
n = {k: int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped")}
passed = n["tests"] - n["failures"] - n["errors"] - n["skipped"]
print(f"tooz suite: {passed} passed, {n['skipped']} skipped, "
      f"{n['failures'] + n['errors']} failed (ZooKeeper's driver: 90 passed)")
sys.exit(0 if passed >= 90 and n["failures"] + n["errors"] == 0 else 1)
PY
    rm -f "$report"
    ;;
  *)
    echo "usage: python/make.sh demo|test" >&2
    exit 2
    ;;
esac
