"""Provider callbacks (qingbo's callback_url). A callback only wakes the job for an immediate poll: its
body is never trusted. Only the first callback of a job wakes it; a replay does nothing."""

from django.contrib.auth.decorators import login_not_required
from django.http import Http404, HttpResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from studio.jobs.models import TERMINAL_STATES, Job, JobState


@csrf_exempt
@login_not_required
@require_POST
def job_webhook(request, token):
    job = Job.objects.filter(webhook_token=token).only("pk", "state").first()
    if job is None or not token:
        raise Http404("Unknown callback.")
    if job.state in TERMINAL_STATES or job.state == JobState.SUBMIT_UNKNOWN:
        return HttpResponse("already finished", content_type="text/plain")
    now = timezone.now()
    updates = {"webhook_received_at": now}
    # A job still being submitted has no task id to poll yet: job_submit sees the mark and polls at once.
    if job.state != JobState.SUBMITTING:
        updates["next_poll_at"] = now
    Job.objects.filter(pk=job.pk, webhook_received_at__isnull=True).update(**updates)
    return HttpResponse("ok", content_type="text/plain")
