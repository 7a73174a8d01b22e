"""Log lines name the job they are about: a context set around each step of a job (the poller's run_step) and
each task on its stored video (django-q2's process_result). A step that leaves its job failed or ambiguous
says so at WARNING, whichever of the many ways it got there."""

import logging
from contextlib import contextmanager

from studio.core.logs import log_context
from studio.jobs.models import Job, JobState, Result
from studio.providers.models import ProviderAccount

logger = logging.getLogger("studio.jobs")

BAD_ENDS = {JobState.FAILED: "failed", JobState.SUBMIT_UNKNOWN: "may or may not have reached its provider"}


@contextmanager
def job_context(job):
    """Around one step of `job`: every line logged in it names the job, its account and its provider."""
    before = job.state
    with log_context(job=job.pk, account=_account_name(job), provider=job.provider):
        try:
            yield job
        finally:
            if job.state != before and job.state in BAD_ENDS:
                logger.warning("job %s %s: %s", job.pk, BAD_ENDS[job.state], job.error_message)


@contextmanager
def result_context(result_id):
    """Around a task on a stored video: its lines name the video, its job, account and provider."""
    row = (Result.objects.filter(pk=result_id)
           .values("job_id", "job__provider", "job__account__name").first()) or {}
    with log_context(job=row.get("job_id"), account=row.get("job__account__name"), provider=row.get("job__provider"),
                     result=result_id):
        yield


def _account_name(job):
    """The poller loads each job with its account; anything else costs one small query."""
    if Job.account.is_cached(job):
        return job.account.name
    return ProviderAccount.objects.filter(pk=job.account_id).values_list("name", flat=True).first()
