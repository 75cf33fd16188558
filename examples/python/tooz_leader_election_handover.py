"""tooz's leader-election example on quorate: the same program, one URL changed.

Run beside a cluster (``pifpaf run quorate -- python tooz_leader_election.py``, or
give the URL: ``python tooz_leader_election.py quorate:///path/to/cluster``). Two
coordinators run for one group's leadership; the first elected stands down and the
other takes over; then a third coordinator, in no group, asks who leads.
"""

from __future__ import annotations

import os
import sys
import time
import uuid

from tooz import coordination


def main() -> int:
    url = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("TOOZ_TEST_URL")
    if not url:
        print(
            "usage: tooz_leader_election.py quorate:///path/to/cluster", file=sys.stderr
        )
        return 2
    group = str(uuid.uuid4()).encode("ascii")
    hosts = [coordination.get_coordinator(url, f"host-{i}".encode()) for i in (1, 2)]
    for c in hosts:
        c.start(start_heart=True)
    hosts[0].create_group(group).get()
    elected: list[tuple[float, bytes]] = []

    def when_i_am_elected_leader(event: coordination.LeaderElected) -> None:
        elected.append((time.monotonic(), event.member_id))
        print(f"{event.member_id.decode()} leads group {event.group_id.decode()}")

    for c in hosts:
        c.join_group(group).get()
        c.watch_elected_as_leader(group, when_i_am_elected_leader)
    t0 = time.monotonic()
    while not elected:
        for c in hosts:
            c.run_watchers()
    print(f"first leader after {1000 * (elected[0][0] - t0):.1f} ms")
    leader = next(c for c in hosts if c._member_id == elected[0][1])
    follower = next(c for c in hosts if c is not leader)
    t1 = time.monotonic()
    leader.stand_down_group_leader(group)
    while len(elected) < 2:
        follower.run_watchers()
    print(f"handover after stand_down: {1000 * (elected[1][0] - t1):.1f} ms")
    observer = coordination.get_coordinator(url, b"observer")
    observer.start()
    print(f"observer asks the voters: {observer.get_leader(group).get()!r} leads")
    for c in [observer, *hosts]:
        c.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
