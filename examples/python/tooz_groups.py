"""tooz's "Group Membership" examples; only the URL differs from 'zake://'.

Run beside a cluster: ``pifpaf run quorate -- python tooz_groups.py``.
"""

import os
import uuid

from tooz import coordination

URL = os.environ["TOOZ_TEST_URL"]

coordinator = coordination.get_coordinator(URL, b"host-1")
coordinator.start()

# Create a group
group = bytes(str(uuid.uuid4()).encode("ascii"))
request = coordinator.create_group(group)
request.get()

# Join a group
request = coordinator.join_group(group)
request.get()

coordinator.stop()

# Watching group changes
coordinator = coordination.get_coordinator(URL, b"host-1")
coordinator.start()

# Create a group
group = bytes(str(uuid.uuid4()).encode("ascii"))
request = coordinator.create_group(group)
request.get()


def group_joined(event):
    # Event is an instance of tooz.coordination.MemberJoinedGroup
    print(event.group_id, event.member_id)


coordinator.watch_join_group(group, group_joined)
# (Beyond the original: another member joins, and the watcher sees it.)
other = coordination.get_coordinator(URL, b"host-2")
other.start()
other.join_group(group).get()
while not coordinator.run_watchers():
    pass
other.stop()
coordinator.stop()
