"""Signs of life of the background work: each cluster's heartbeat, and jobs that nobody takes.

Each `manage.py qcluster` runs a Heartbeat: a thread that every STUDIO_HEARTBEAT_SECONDS writes the process's
row (host, pid, start time, when its poller last went round its loop, whether django-q2's sentinel is alive)
and that deletes the row when the cluster stops. A cluster killed with `kill -9`, or whose machine is lost,
leaves its row behind; once its last beat is STUDIO_CLUSTER_STALE_SECONDS old it shows as dead, and live
clusters forget it after a day.

Overdue jobs are the other sign, seen from the jobs' side: due for more than STUDIO_OVERDUE_SECONDS and held
by no lease. The poller takes a due job within a quarter second, so overdue jobs mean no poller is running
(or all are stuck, or far behind).
"""

import logging
import os
import socket
import threading
import time
from datetime import timedelta

from django.conf import settings
from django.db import close_old_connections, connections
from django.utils import timezone

from studio.jobs.leases import due_candidates, lease_is_free
from studio.jobs.models import ClusterHeartbeat

logger = logging.getLogger(__name__)

FORGET_DEAD_AFTER = timedelta(days=1)
STOP_SECONDS = 1.0  # the longest a stopping cluster waits for a beat in flight


class Heartbeat:
    """This process's row, kept fresh by a thread of its own. `sentinel` is django-q2's sentinel process;
    `poller` the Poller, or None when the cluster runs without one."""

    def __init__(self, *, sentinel, poller=None, every=None):
        self.sentinel = sentinel
        self.poller = poller
        self.every = every or settings.STUDIO_HEARTBEAT_SECONDS
        self.host = socket.gethostname()[:255]
        self.pid = os.getpid()
        self.started_at = timezone.now()
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name="heartbeat", daemon=True)

    def start(self):
        """Beats once before returning (the row is there when the cluster is), never raising: a database out for
        a moment must not stop the cluster, and the thread beats again shortly."""
        self._try_beat()
        self.thread.start()
        return self

    def stop(self):
        """Stop beating and remove the row: a cluster that stopped is not a dead one."""
        self.stopping.set()
        self.thread.join(timeout=STOP_SECONDS)
        try:
            self.mine().delete()
        except Exception as error:  # noqa: BLE001 - the database gone: the row will show as dead
            logger.warning("could not remove this cluster's heartbeat: %s", error)

    def mine(self):
        return ClusterHeartbeat.objects.filter(host=self.host, pid=self.pid)

    def beat(self, now=None):
        now = now or timezone.now()
        ClusterHeartbeat.objects.update_or_create(host=self.host, pid=self.pid, defaults={
            "started_at": self.started_at, "beat_at": now, "runs_poller": self.poller is not None,
            "poller_loop_at": self._poller_loop_at(now), "sentinel_alive": _exists(self.sentinel.pid),
        })
        ClusterHeartbeat.objects.filter(beat_at__lt=now - FORGET_DEAD_AFTER).delete()

    def _poller_loop_at(self, now):
        looped = getattr(self.poller, "last_loop_at", None)  # time.monotonic() of the loop's last turn
        return None if looped is None else now - timedelta(seconds=time.monotonic() - looped)

    def _run(self):
        while not self.stopping.wait(self.every):
            close_old_connections()
            self._try_beat()
        connections.close_all()

    def _try_beat(self):
        try:
            self.beat()
        except Exception as error:  # noqa: BLE001 - the database unreachable for a moment: beat again later
            logger.warning("could not record this cluster's heartbeat: %s", error)


def _exists(pid):
    """Whether the process runs (or has just ended and is not reaped yet). Not Process.is_alive(): that reaps
    the process, which only the thread that watches the sentinel (qcluster's main thread) may do."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


# Reads ----------------------------------------------------------------------------------------------------


def clusters(*, now=None):
    """Every cluster with a row, each with its `state` (see ClusterHeartbeat.status)."""
    now = now or timezone.now()
    rows = list(ClusterHeartbeat.objects.all())
    for row in rows:
        row.state = row.status(now=now, stale_seconds=settings.STUDIO_CLUSTER_STALE_SECONDS)
    return rows


def overdue_jobs(*, now=None):
    """Jobs due for more than STUDIO_OVERDUE_SECONDS that no worker holds, the longest overdue first."""
    now = now or timezone.now()
    since = now - timedelta(seconds=settings.STUDIO_OVERDUE_SECONDS)
    return due_candidates().filter(next_poll_at__lt=since).filter(lease_is_free(now)).order_by("next_poll_at")


def ago(moment, now):
    """How long ago, in the unit a person would use: "12 s ago", "5 min ago", "3.5 h ago"."""
    seconds = max(0.0, (now - moment).total_seconds())
    if seconds < 90:
        return f"{seconds:.0f} s ago"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min ago"
    return f"{seconds / 3600:.1f} h ago"
