"""The poller: the one scheduler of provider calls, run by `manage.py qcluster` (and, for one job, by
`generate --wait`).

Every call to a provider for a job (submit, status, result, download) is made here, by a step run on a
pool of threads under the job's lease; django-q2's worker processes do the CPU work on stored videos and
the periodic sweeps, and never call a provider. django-q2's scheduler wakes only about every 30 s, far
too coarse for jobs that finish within seconds of a callback, so the cluster runs this loop of ours. All
scheduling state lives in the job rows (`next_poll_at`, the lease), so any number of clusters on any
number of machines can run it. Kill a cluster at any moment and its leases simply expire; another cluster
(or the same one, restarted) picks the jobs up.

Stopping (SIGTERM): no new claims; polls and downloads in flight are abandoned at once (they resume
elsewhere), submissions in flight get STUDIO_STOP_GRACE_SECONDS for their answer; every lease is released.
"""

import logging
import os
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor, wait
from datetime import timedelta

from django.conf import settings
from django.db import close_old_connections, connections
from django.db.models import Min
from django.utils import timezone

from studio.jobs import services
from studio.jobs.calls import JobCalls
from studio.jobs.leases import Lease, LeaseKeeper, claim_due_jobs, claim_job, due_candidates, lease_is_free
from studio.jobs.logcontext import job_context
from studio.jobs.media import DownloadError
from studio.jobs.models import Job, JobState
from studio.providers.base import NotNow, ProviderError
from studio.providers.http import CallCancelled

logger = logging.getLogger(__name__)

IDLE_SLEEP_SECONDS = 0.25
# After a round that took everything due, the loop waits this long before the next: jobs come due all the
# time, and claiming them a few at a time cost three queries a round for every one or two polls.
CLAIM_TICK_SECONDS = 0.05
RECOVERY_EVERY_SECONDS = 5.0
EXPECTED_FAILURES = (ProviderError, DownloadError)


def run_step(job, lease, keeper=None):
    """One step for one leased job, whatever happens in it, then let go of the job. Nothing raised in a
    step escapes: every failure is recorded and scheduled on the job."""
    close_old_connections()
    calls = JobCalls(job, lease)
    with job_context(job):
        try:
            services.job_advance(job, calls)
        except NotNow as error:
            services.job_defer(job, error)
        except CallCancelled:
            services.job_resume(job)
        except Exception as error:  # noqa: BLE001 - the firewall: a failure of any kind is the job's, not the loop's
            if not isinstance(error, EXPECTED_FAILURES):
                logger.exception("job %s: step failed unexpectedly", job.pk)
            _record_failure(job, error, calls)
        finally:
            if keeper is not None:
                keeper.drop(lease)
            if not lease.released:
                lease.release()


def _record_failure(job, error, calls):
    try:
        services.job_step_failed(job, error, exchanges=calls.exchanges)
    except Exception:  # the database itself failing: keep the job from being claimed again at once
        logger.exception("job %s: could not record its failure", job.pk)
        Job.objects.filter(pk=job.pk).update(next_poll_at=timezone.now() + timedelta(seconds=60))


def seconds_until_next_due():
    """How long the loop may sleep: until the soonest job nobody holds is due, at most IDLE_SLEEP_SECONDS."""
    now = timezone.now()
    soonest = due_candidates().filter(lease_is_free(now)).aggregate(soonest=Min("next_poll_at"))["soonest"]
    if soonest is None:
        return IDLE_SLEEP_SECONDS
    return max(0.0, min(IDLE_SLEEP_SECONDS, (soonest - now).total_seconds()))


class Poller:
    """Claims due jobs and runs their steps on a pool of threads until told to stop."""

    def __init__(self, *, threads=None, owner=None):
        self.threads = threads or settings.STUDIO_POLL_THREADS
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}"
        self.stopping = threading.Event()
        self.in_flight = {}  # future -> (lease, was a submission)
        self.last_loop_at = None  # time.monotonic() of the loop's last turn, for the cluster's heartbeat
        self.step_connections = []  # each step thread's database connection, kept open between steps

    def run(self, *, until=None, seconds=None):
        """Loop until `until()` is true, `seconds` have passed, or stop() is called."""
        deadline = time.monotonic() + seconds if seconds else None
        last_recovery = 0.0
        keeper = LeaseKeeper().start()
        logger.info("poller %s started with %s threads", self.owner, self.threads)
        with ThreadPoolExecutor(max_workers=self.threads, thread_name_prefix="poll",
                                initializer=self._step_thread_started) as pool:
            while not self.stopping.is_set() and not (until and until()):
                self.last_loop_at = time.monotonic()
                if deadline and time.monotonic() > deadline:
                    break
                if time.monotonic() - last_recovery > RECOVERY_EVERY_SECONDS:
                    services.recover_stalled_submissions()
                    last_recovery = time.monotonic()
                self.in_flight = {future: held for future, held in self.in_flight.items() if not future.done()}
                capacity = self.threads * 2 - len(self.in_flight)
                jobs, token = claim_due_jobs(self.owner, capacity) if capacity > 0 else ([], "")
                for job in jobs:
                    lease = Lease(job.pk, token)
                    keeper.hold(lease)
                    self.in_flight[pool.submit(run_step, job, lease, keeper)] = (lease, job.state == JobState.QUEUED)
                if capacity <= 0:
                    self.stopping.wait(0.05)
                elif not jobs:
                    self.stopping.wait(max(0.02, seconds_until_next_due()))
                elif len(jobs) < capacity:
                    self.stopping.wait(CLAIM_TICK_SECONDS)
            self._wind_down()
        keeper.stop()
        self._close_step_connections()
        connections.close_all()
        logger.info("poller %s stopped", self.owner)

    def _step_thread_started(self):
        self.step_connections.append(connections["default"])

    def _close_step_connections(self):
        """The step threads keep their connections between steps; once they are gone, close them from here."""
        for connection in self.step_connections:
            connection.inc_thread_sharing()
            try:
                connection.close()
            finally:
                connection.dec_thread_sharing()
        self.step_connections.clear()

    def _wind_down(self):
        """Abandon polls and downloads now; give submissions in flight the grace period, then abandon them."""
        for future, (lease, submitting) in self.in_flight.items():
            lease.stopping = True
            if not submitting:
                lease.cancel.set()
        wait(list(self.in_flight), timeout=settings.STUDIO_STOP_GRACE_SECONDS)
        for lease, _ in self.in_flight.values():
            lease.cancel.set()

    def stop(self):
        self.stopping.set()


# Driving one job from a command -----------------------------------------------------------------------


def drive_job(job, *, timeout, owner=None, sleep=time.sleep):
    """Take one job's steps in this process until it ends or needs a person, exactly as a poller thread
    would: under its lease, so a cluster working on the same job at the same time is waited for, never
    doubled. Then make the stored videos' posters here if no worker has yet."""
    owner = owner or f"{socket.gethostname()}:{os.getpid()}:cli"
    keeper = LeaseKeeper().start()
    try:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            job.refresh_from_db()
            if job.is_finished or job.state == JobState.SUBMIT_UNKNOWN:
                break
            wait_seconds = (job.next_poll_at - timezone.now()).total_seconds() if job.next_poll_at else 0.2
            if wait_seconds > 0:
                sleep(min(wait_seconds, 0.5, max(0.0, end - time.monotonic())))
                continue
            claimed = claim_job(job.pk, owner)
            if claimed is None:  # a cluster holds it right now
                sleep(0.2)
                continue
            job, lease = claimed
            keeper.hold(lease)
            run_step(job, lease, keeper)
    finally:
        keeper.stop()
    for result_id in job.results.filter(processed_at__isnull=True).values_list("pk", flat=True):
        services.result_process(result_id=result_id)
    job.refresh_from_db()
    return job


def step_once(job, *, owner=None):
    """Take the job's next step now, under its lease, as a poller thread would (scripts and tests); False
    when another worker holds the job."""
    claimed = claim_job(job.pk, owner or f"{socket.gethostname()}:{os.getpid()}:once")
    if claimed is None:
        return False
    run_step(*claimed)
    job.refresh_from_db()
    return True
