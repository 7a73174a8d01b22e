"""What the job engine plugs into every provider call it makes (studio.providers.client.CallHooks).

Before a call: the worker must still hold the job's lease (and not be stopping before anything was
sent), the account must not be paused by its breaker, and the account's request budget must have a slot
left for this minute: every call counts, submit, status, result and download alike. At the last moment
before a submission's first byte leaves, the job's "sent" mark is committed. After every call, the
account's health is told how it went.
"""

from studio.core.failpoints import failpoint
from studio.providers.base import NotNow
from studio.providers.client import CallHooks, client_for
from studio.providers.health import tracker
from studio.providers.http import CallCancelled
from studio.providers.ratelimit import seconds_until_next_window, take_request_slot


class JobCalls(CallHooks):
    def __init__(self, job, lease):
        self.job = job
        self.lease = lease
        self.cancel = lease.cancel
        self.sent = False  # a submission's first byte has left (or may have)
        self.submit_admitted = False
        self._client = None

    @property
    def client(self):
        """The account's pooled client for this thread, its history of this step's calls emptied."""
        if self._client is None:
            self._client = client_for(self.job.account)
        return self._client

    @property
    def exchanges(self):
        return self._client.exchanges if self._client is not None else None

    def admit_submit(self):
        """Check and take what a submission needs before the job is claimed, so a paused or over-budget
        account costs a queued job nothing but a later due time."""
        self.lease.check()
        self._admit()
        self.submit_admitted = True

    def before_call(self, call):
        if call.is_post:
            self.lease.check()
            if self.submit_admitted:
                return
        elif self.lease.lost or self.lease.cancel.is_set():
            raise CallCancelled("The job's lease was lost or the worker is stopping.")
        self._admit()

    def _admit(self):
        tracker.gate(self.job.account)
        if not take_request_slot(self.job.account):
            limit = self.job.account.max_requests_per_minute
            raise NotNow(f"{self.job.account.name}'s budget of {limit} requests a minute is spent for this minute.",
                         kind="budget", retry_after=seconds_until_next_window())

    def before_bytes(self, call):
        if not call.is_post:
            return
        self.lease.check()
        failpoint("before_submit_post")
        if not self.job.mark_sent(lease_owner=self.lease.token):
            raise CallCancelled("The job's lease was lost before sending; nothing was sent.")
        self.sent = True

    def after_call(self, call, error=None):
        tracker.record(self.job.account, error)
