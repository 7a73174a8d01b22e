"""Provider callbacks (qingbo's callback_url). A callback only wakes the job for an immediate poll: its
body is never trusted. Only the first callback of a job wakes it; a replay does nothing.

For a job whose submission is *Outcome unknown*, the callback (its token is per job) is the provider
saying it did get the job: the task id it names is kept, and the poller looks that task up with the
account's key and settles the job if it is really there (services.job_settle)."""

import json

from django.contrib.auth.decorators import login_not_required
from django.http import Http404, HttpResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from studio.jobs.models import TERMINAL_STATES, Job, JobState

MAX_TASK_ID = 200


@csrf_exempt
@login_not_required
@require_POST
def job_webhook(request, token):
    job = Job.objects.filter(webhook_token=token).only("pk", "state", "provider_data").first()
    if job is None or not token:
        raise Http404("Unknown callback.")
    if job.state in TERMINAL_STATES:
        return HttpResponse("already finished", content_type="text/plain")
    now = timezone.now()
    task_id = _named_task(request.body)
    if task_id and job.state in (JobState.SUBMITTING, JobState.SUBMIT_UNKNOWN):
        # No task id of ours yet: keep the one the callback names, in case the submission's answer is lost.
        # (A job that has just been accepted keeps its own data: the state must still be the one read.)
        Job.objects.filter(pk=job.pk, state=job.state).update(
            provider_data={**job.provider_data, "callback_task_id": task_id})
    if job.state == JobState.SUBMIT_UNKNOWN:
        if task_id:
            Job.objects.filter(pk=job.pk, state=JobState.SUBMIT_UNKNOWN, webhook_received_at__isnull=True).update(
                webhook_received_at=now, next_poll_at=now)
        return HttpResponse("ok", content_type="text/plain")
    updates = {"webhook_received_at": now}
    # A job still being submitted has no task id to poll yet: job_submit sees the mark and polls at once.
    if job.state != JobState.SUBMITTING:
        updates["next_poll_at"] = now
    Job.objects.filter(pk=job.pk, webhook_received_at__isnull=True).update(**updates)
    return HttpResponse("ok", content_type="text/plain")


def _named_task(body):
    """The task id a callback names, if it looks like one; nothing else of the body is used."""
    try:
        data = json.loads(body[:65536])
    except (ValueError, UnicodeDecodeError):
        return ""
    task_id = data.get("task_id") if isinstance(data, dict) else None
    if isinstance(task_id, (str, int)) and 0 < len(str(task_id)) <= MAX_TASK_ID:
        return str(task_id)
    return ""
