"""Who is working on a job right now: leases, taken with a compare-and-set and kept alive on a timer.

A worker (a poller thread, or `generate --wait`) takes a job by writing its token into `lease_owner` with
an expiry, only where no live lease exists. While it works, the LeaseKeeper of its process renews every
lease it holds every third of the lease time, so a lease never runs out under a live worker however long a
call takes; if a renewal finds the lease gone (the process was frozen past the expiry and another worker
took the job), the worker's calls are cancelled at once, so two workers never talk to the provider for
one job. A crashed process renews nothing: its leases expire and the jobs are taken by others.
"""

import logging
import threading
import uuid
from datetime import timedelta

from django.conf import settings
from django.db import close_old_connections
from django.db.models import Q
from django.utils import timezone

from studio.jobs.models import Job, JobState
from studio.providers.http import CallCancelled

logger = logging.getLogger(__name__)

POLLED_STATES = [JobState.SUBMITTED, JobState.RUNNING, JobState.DOWNLOADING]


def lease_is_free(now):
    return Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lt=now)


def due_candidates():
    """Jobs the poller looks after at all, due now or later: waiting to be (re)submitted, in flight,
    ambiguous but woken by a callback, or failed on a deadline but still worth a look."""
    return Job.objects.filter(
        Q(state__in=POLLED_STATES + [JobState.QUEUED, JobState.SUBMIT_UNKNOWN])
        | Q(state=JobState.FAILED, timed_out_at__isnull=False),
        next_poll_at__isnull=False,
    )


def due_jobs(now):
    return due_candidates().filter(next_poll_at__lte=now).filter(lease_is_free(now))


class Lease:
    """One worker's hold on one job. `cancel` abandons the calls in flight (studio.providers.http)."""

    def __init__(self, job_id, token):
        self.job_id = job_id
        self.token = token
        self.cancel = threading.Event()
        self.lost = False
        # Set when the worker's process is stopping: a step that has not sent anything yet must not start.
        self.stopping = False
        self.keeper = None
        self.released = False

    def check(self):
        if self.lost or self.cancel.is_set():
            raise CallCancelled("The job's lease was lost or the worker is stopping.")
        if self.stopping:
            raise CallCancelled("The studio is stopping; the job resumes when it starts again.")

    def release(self):
        self.hand_back()
        Job.objects.filter(pk=self.job_id, lease_owner=self.token).update(lease_owner="", lease_expires_at=None)

    def hand_back(self):
        """Stop renewing: the caller's next write lets go of the job (a step's last write may do it itself)."""
        if self.keeper is not None:
            self.keeper.drop(self)
        self.released = True
        return self.token


def _expiry(now):
    return now + timedelta(seconds=settings.STUDIO_LEASE_SECONDS)


def claim_due_jobs(owner, limit):
    """Take up to `limit` due jobs with one token; returns (jobs, token). A job another worker holds is never taken."""
    now = timezone.now()
    ids = list(due_jobs(now).order_by("next_poll_at").values_list("pk", flat=True)[:limit])
    if not ids:
        return [], ""
    token = f"{owner}/{uuid.uuid4().hex[:12]}"
    # Re-check "due" too: another poller may have polled and rescheduled a job since it was listed.
    Job.objects.filter(pk__in=ids, next_poll_at__lte=now).filter(lease_is_free(now)).update(
        lease_owner=token, lease_expires_at=_expiry(now))
    return list(Job.objects.filter(lease_owner=token).select_related("account")), token


def claim_job(job_id, owner):
    """Take one job whatever its due time (the command line driving its own job); None if someone holds it."""
    now = timezone.now()
    token = f"{owner}/{uuid.uuid4().hex[:12]}"
    free = Job.objects.filter(pk=job_id).filter(lease_is_free(now))
    if not free.update(lease_owner=token, lease_expires_at=_expiry(now)):
        return None
    return Job.objects.select_related("account").get(pk=job_id), Lease(job_id, token)


class LeaseKeeper:
    """Renews the leases its process holds, on its own thread, until stopped."""

    def __init__(self, *, every=None):
        self.every = every or max(0.2, settings.STUDIO_LEASE_SECONDS / 3)
        self.lock = threading.Lock()
        self.held = {}  # job id -> Lease
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, name="lease-keeper", daemon=True)

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.stopped.set()
        if self.thread.is_alive():
            self.thread.join(timeout=5)

    def hold(self, lease):
        lease.keeper = self
        with self.lock:
            self.held[lease.job_id] = lease

    def drop(self, lease):
        with self.lock:
            if self.held.get(lease.job_id) is lease:
                del self.held[lease.job_id]

    def leases(self):
        with self.lock:
            return list(self.held.values())

    def _run(self):
        while not self.stopped.wait(self.every):
            try:
                self.renew()
            except Exception:  # a database hiccup must not end renewals; the next round tries again
                logger.exception("renewing leases failed")
            finally:
                close_old_connections()

    def renew(self):
        leases = self.leases()
        if not leases:
            return
        now = timezone.now()
        tokens = {lease.token for lease in leases}
        ids = [lease.job_id for lease in leases]
        renewed = Job.objects.filter(pk__in=ids, lease_owner__in=tokens).update(lease_expires_at=_expiry(now))
        if renewed == len(leases):
            return
        still = set(Job.objects.filter(pk__in=ids, lease_owner__in=tokens).values_list("pk", "lease_owner"))
        for lease in leases:
            if (lease.job_id, lease.token) not in still and self.held.get(lease.job_id) is lease:
                lease.lost = True
                lease.cancel.set()
                logger.warning("lost the lease of job %s; its calls in flight are cancelled", lease.job_id)

