"""The poller: the loop that moves every unfinished job along, run by `manage.py qcluster`.

django-q2's scheduler wakes only about every 30 s, far too coarse for jobs that finish within seconds of
a callback, so the cluster runs this loop of ours. All scheduling state lives in the job rows
(`next_poll_at`, the lease), so any number of clusters on any number of machines can run it: a job is
taken with a compare-and-set lease and is polled by exactly one of them at a time. Kill a cluster at any
moment and its leases simply expire; another cluster (or the same one, restarted) picks the jobs up.
"""

import logging
import os
import socket
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from django.conf import settings
from django.db import close_old_connections, connections
from django.db.models import Min, Q
from django.utils import timezone

from studio.jobs import services
from studio.jobs.models import Job, JobState
from studio.providers.ratelimit import take_request_slot

logger = logging.getLogger(__name__)

POLLED_STATES = [JobState.SUBMITTED, JobState.RUNNING, JobState.DOWNLOADING]
IDLE_SLEEP_SECONDS = 0.25
RECOVERY_EVERY_SECONDS = 5.0


def lease_is_free(now):
    return Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lt=now)


def due_jobs(now):
    """Jobs whose next step is due: waiting to be (re)submitted, in flight, or failed on a deadline but
    still worth a look in case the provider finishes after all."""
    return due_candidates().filter(next_poll_at__lte=now).filter(lease_is_free(now))


def claim_due_jobs(owner, limit):
    """Take up to `limit` due jobs with a lease; a job another poller holds is never taken."""
    now = timezone.now()
    ids = list(due_jobs(now).order_by("next_poll_at").values_list("pk", flat=True)[:limit])
    if not ids:
        return []
    token = f"{owner}/{uuid.uuid4().hex[:12]}"
    # Re-check "due" too: another poller may have polled and rescheduled a job since it was listed.
    Job.objects.filter(pk__in=ids, next_poll_at__lte=now).filter(lease_is_free(now)).update(
        lease_owner=token, lease_expires_at=now + timedelta(seconds=settings.STUDIO_LEASE_SECONDS)
    )
    return list(Job.objects.filter(lease_owner=token).select_related("account"))


def step(job):
    """One step for one leased job, then let go of it."""
    lease = job.lease_owner
    close_old_connections()
    try:
        if not take_request_slot(job.account):
            services.defer_for_rate_limit(job)
        elif job.state == JobState.QUEUED:
            services.job_submit(job)
        else:
            services.job_poll(job)
    except Exception:
        # One job's bug must not stop the loop; its lease expires and it is tried again later.
        logger.exception("polling job %s failed", job.pk)
    finally:
        Job.objects.filter(pk=job.pk, lease_owner=lease).update(lease_owner="", lease_expires_at=None)
        close_old_connections()


def recover_stalled_submissions():
    """Jobs left "submitting" by a crashed worker: back to the queue if nothing was sent, else ambiguous."""
    now = timezone.now()
    stalled = Job.objects.filter(state=JobState.SUBMITTING).filter(lease_is_free(now))
    for job in stalled.select_related("account"):
        services.recover_stalled_submission(job)


def seconds_until_next_due():
    """How long the loop may sleep: until the soonest job nobody holds is due, at most IDLE_SLEEP_SECONDS."""
    now = timezone.now()
    soonest = due_candidates().filter(lease_is_free(now)).aggregate(soonest=Min("next_poll_at"))["soonest"]
    if soonest is None:
        return IDLE_SLEEP_SECONDS
    return max(0.0, min(IDLE_SLEEP_SECONDS, (soonest - now).total_seconds()))


def due_candidates():
    """Jobs the poller looks after at all, due now or later."""
    return Job.objects.filter(
        Q(state__in=POLLED_STATES + [JobState.QUEUED]) | Q(state=JobState.FAILED, timed_out_at__isnull=False),
        next_poll_at__isnull=False,
    )


class Poller:
    """Claims due jobs and runs their steps on a pool of threads until told to stop."""

    def __init__(self, *, threads=None, owner=None):
        self.threads = threads or settings.STUDIO_POLL_THREADS
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}"
        self.stopping = threading.Event()
        self.in_flight = set()

    def run(self, *, until=None, seconds=None):
        """Loop until `until()` is true, `seconds` have passed, or stop() is called."""
        deadline = time.monotonic() + seconds if seconds else None
        last_recovery = 0.0
        logger.info("poller %s started with %s threads", self.owner, self.threads)
        with ThreadPoolExecutor(max_workers=self.threads, thread_name_prefix="poll") as pool:
            while not self.stopping.is_set() and not (until and until()):
                if deadline and time.monotonic() > deadline:
                    break
                if time.monotonic() - last_recovery > RECOVERY_EVERY_SECONDS:
                    recover_stalled_submissions()
                    last_recovery = time.monotonic()
                self.in_flight = {future for future in self.in_flight if not future.done()}
                capacity = self.threads * 2 - len(self.in_flight)
                jobs = claim_due_jobs(self.owner, capacity) if capacity > 0 else []
                for job in jobs:
                    self.in_flight.add(pool.submit(step, job))
                if capacity <= 0:
                    self.stopping.wait(0.05)
                elif not jobs:
                    self.stopping.wait(max(0.02, seconds_until_next_due()))
            for future in self.in_flight:
                future.cancel()
        connections.close_all()
        logger.info("poller %s stopped", self.owner)

    def stop(self):
        self.stopping.set()
