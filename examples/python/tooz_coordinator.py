"""tooz's "Creating A Coordinator" example; only the URL differs from 'zake://'.

Run beside a cluster: ``pifpaf run quorate -- python tooz_coordinator.py``
(``TOOZ_TEST_URL`` is ``quorate:///path/to/cluster``).
"""

import os

from tooz import coordination

URL = os.environ["TOOZ_TEST_URL"]

coordinator = coordination.get_coordinator(URL, b"host-1")
coordinator.start()
coordinator.stop()

coordinator = coordination.get_coordinator(URL, b"host-1")
coordinator.start(start_heart=True)
coordinator.stop()
print("coordinator started and stopped, with and without a heart")
