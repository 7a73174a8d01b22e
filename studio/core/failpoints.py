"""Crash points for the recovery tests: `kill -9` of the whole cluster at a chosen step.

Inert unless STUDIO_FAILPOINTS names the point (comma-separated); each point fires once per marker
directory (STUDIO_FAILPOINT_DIR), so a restarted cluster with the same environment runs on.
"""

import os
import signal
from pathlib import Path


def failpoint(name):
    names = os.environ.get("STUDIO_FAILPOINTS")
    if not names or name not in names.split(","):
        return
    marker = Path(os.environ.get("STUDIO_FAILPOINT_DIR", "/tmp")) / f"studio-failpoint-{name}"
    try:
        marker.touch(exist_ok=False)
    except FileExistsError:
        return
    os.killpg(os.getpgid(0), signal.SIGKILL)
