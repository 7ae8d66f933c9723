"""Named steps at which a fault drill may have this process die; off unless a test asks.

``EXCHANGIS_DIE_AT`` names steps (comma-separated). A process that reaches one kills itself
with SIGKILL, as a power loss at exactly that step would: the drills prove that what the
process had committed so far is carried on by someone else. Nothing else reads it.
"""

from __future__ import annotations

import os
import signal

SUBMIT_COMMITTED = "submit.committed"
"""The API has committed an execution's rows and not yet written its live state."""
FIRE_COMMITTED = "schedule.fire_committed"
"""A scheduler has committed a fire's contexts and not yet sent their runs."""


def die_at(step: str) -> None:
    """Kill this process with SIGKILL when ``EXCHANGIS_DIE_AT`` names ``step``."""
    if step in os.environ.get("EXCHANGIS_DIE_AT", "").split(","):
        os.kill(os.getpid(), signal.SIGKILL)
