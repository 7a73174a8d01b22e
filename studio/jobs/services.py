"""A job's life: create, submit once, poll, fetch the result, keep the video.

Every step loads the job, does one thing, and records it with a compare-and-set transition, so a step
that runs twice (a redelivered task, a second worker) finds the state already moved and does nothing.
"""

import logging
import random
import secrets
import time
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from studio.core.failpoints import failpoint
from studio.jobs.media import DownloadError, download_video, make_poster_and_strip, mismatches, probe_video
from studio.jobs.models import Job, JobImage, JobState, Result
from studio.projects.image_links import signed_image_url
from studio.projects.images import MIME
from studio.projects.models import Prompt, PromptVersion
from studio.providers import catalog, pricing
from studio.providers.base import GenerationRequest, ImageInput, ProviderError, State, StatusUpdate
from studio.providers.client import client_for
from studio.providers.ratelimit import seconds_until_next_window
from studio.providers.registry import model_spec

logger = logging.getLogger(__name__)

TRANSIENT_BACKOFF_SECONDS = 15
SUBMIT_FALLBACK_SECONDS = 10
REVISIT_TIMED_OUT_SECONDS = 30 * 60
REVISIT_TIMED_OUT_FOR = timedelta(hours=24)
MAX_BACKOFF_SECONDS = 300


# Creating ----------------------------------------------------------------------------------------


def prompt_version_for(*, project, user, text, negative_prompt=""):
    """The project's prompt version with exactly this text, or a new prompt holding it as version 1."""
    existing = (
        PromptVersion.objects.filter(prompt__project=project, text=text, negative_prompt=negative_prompt)
        .order_by("-created_at")
        .first()
    )
    if existing:
        return existing
    prompt = Prompt.objects.create(project=project, title=text[:80], created_by=user)
    return PromptVersion.objects.create(prompt=prompt, number=1, text=text, negative_prompt=negative_prompt,
                                        created_by=user)


def job_create(*, project, user, account, model, params, first_frame=None, last_frame=None, references=(),
               prompt_version=None, batch=None, enqueue=True):
    """Validate against the catalog, then record a queued job. Raises ValidationFailed; nothing is sent."""
    spec = model_spec(account.provider, model)
    images = catalog.ImagesGiven(bool(first_frame), bool(last_frame), len(references))
    clean = catalog.validate(spec, params, images)
    cost, currency = pricing.estimate(spec, clean)
    with transaction.atomic():
        if prompt_version is None:
            prompt_version = prompt_version_for(project=project, user=user, text=clean["prompt"],
                                                negative_prompt=clean.get("negative_prompt", ""))
        job = Job.objects.create(
            project=project, batch=batch, prompt_version=prompt_version, account=account, provider=account.provider,
            model=model, params=clean, cost_estimate=cost, currency=currency, created_by=user,
            webhook_token=secrets.token_urlsafe(32),
            # A queued submit task normally runs within a second; should it be lost, the poller sends the job
            # after the fallback delay. Without a task (the command line's --wait), the job is due at once.
            next_poll_at=timezone.now() + timedelta(seconds=SUBMIT_FALLBACK_SECONDS if enqueue else 0),
        )
        roles = [(JobImage.Role.FIRST_FRAME, first_frame), (JobImage.Role.LAST_FRAME, last_frame)]
        roles += [(JobImage.Role.REFERENCE, image) for image in references]
        for position, (role, image) in enumerate(roles):
            if image is not None:
                JobImage.objects.create(job=job, image=image, role=role, position=position)
        job.record("Created", payload={"params": clean, "cost_estimate": str(cost)})
        if enqueue:
            transaction.on_commit(lambda: enqueue_submit(job.pk))
    return job


def enqueue_submit(job_id):
    from django_q.tasks import async_task

    async_task("studio.jobs.tasks.submit_job", job_id, task_name=f"submit-job-{job_id}", group="jobs")


# Submitting ----------------------------------------------------------------------------------------


def generation_request(job):
    """The unified request for this job, with its images as bytes and as signed links."""
    by_role = {JobImage.Role.FIRST_FRAME: None, JobImage.Role.LAST_FRAME: None}
    references = []
    for use in job.images.select_related("image").order_by("position"):
        with use.image.file.open("rb") as handle:
            content = handle.read()
        image = ImageInput(content=content, mime=MIME[use.image.format], url=signed_image_url(use.image),
                           name=use.image.original_name)
        if use.role == JobImage.Role.REFERENCE:
            references.append(image)
        else:
            by_role[use.role] = image
    return GenerationRequest(
        model=job.model, params=dict(job.params), first_frame=by_role[JobImage.Role.FIRST_FRAME],
        last_frame=by_role[JobImage.Role.LAST_FRAME], reference_images=references,
        callback_url=webhook_url(job) if job.webhook_token else "",
    )


def webhook_url(job):
    return settings.STUDIO_PUBLIC_URL.rstrip("/") + reverse("job_webhook", args=[job.webhook_token])


def job_submit(job):
    """Send the job to its provider, exactly once. Returns the job in its new state.

    The order matters for crashes: the claim commits, then the "sent" marker commits, then the POST;
    the provider's task id is committed the moment it arrives. A crash before the marker leaves a job
    that certainly was not sent (it goes back to the queue); after it, the job is ambiguous.
    """
    if not job.claim_for_submit(lease_seconds=settings.STUDIO_SUBMIT_LEASE_SECONDS):
        return job
    try:
        request = generation_request(job)
    except (OSError, ValueError) as error:
        job.mark_failed(f"The job's images could not be read: {error}")
        return job
    failpoint("before_submit_post")
    Job.objects.filter(pk=job.pk).update(submit_sent_at=timezone.now())
    client = client_for(job.account)
    try:
        submitted = client.submit(request)
    except ProviderError as error:
        return _submit_failed(job, error, client.exchanges)
    failpoint("after_submit_answer")
    now = timezone.now()
    job.mark_submitted(task_id=submitted.task_id, raw_status=submitted.raw_status, data=submitted.data,
                       deadline_at=now + timedelta(hours=client.adapter.deadline_hours),
                       next_poll_at=now + timedelta(seconds=job.account.first_poll_delay(client.adapter)),
                       payload=client.exchanges)
    # A callback that came while we were sending (before the task id existed) only left its mark: poll now.
    # One that comes from here on sets next_poll_at itself, and nothing below overwrites it.
    Job.objects.filter(pk=job.pk, state=JobState.SUBMITTED, webhook_received_at__isnull=False).update(
        next_poll_at=timezone.now())
    job.release_submit_lease()
    return job


def recover_stalled_submission(job):
    """A job left "submitting" by a crashed sender (its lease expired)."""
    if job.submit_sent_at is None:
        job.requeue_after("The studio stopped before sending this job; it goes back to the queue.", timezone.now())
    else:
        job.mark_submit_unknown(
            "The studio stopped while sending this job: the provider may have accepted it, but we could not "
            "confirm. Check the provider's console, then mark it as failed or submit it again."
        )


def defer_for_rate_limit(job):
    """The account's request budget for this minute is spent: try again in the next minute."""
    when = timezone.now() + timedelta(seconds=seconds_until_next_window() + random.uniform(0, 2))
    Job.objects.filter(pk=job.pk).update(next_poll_at=when)


def _submit_failed(job, error, exchanges):
    if error.permanent:
        job.mark_failed(error.message, payload=exchanges)
    elif error.ambiguous:
        job.mark_submit_unknown(error.message, payload=exchanges)
    else:
        delay = error.retry_after or TRANSIENT_BACKOFF_SECONDS
        job.requeue_after(f"Not sent: {error.message}. Trying again in {round(delay)} s.",
                          timezone.now() + timedelta(seconds=delay), payload=exchanges)
    return job


def schedule_poll(job, *, seconds):
    when = timezone.now() + timedelta(seconds=seconds)
    Job.objects.filter(pk=job.pk).update(next_poll_at=when, poll_attempts=job.poll_attempts + 1)
    job.next_poll_at, job.poll_attempts = when, job.poll_attempts + 1


def backoff_seconds(job, adapter, retry_after=None):
    """The account's pace, stretched for long jobs, jittered so many jobs do not poll in step."""
    if retry_after:
        return retry_after
    interval = job.account.poll_interval(adapter)
    base = interval * (1.5 ** min(job.poll_attempts - 20, 6) if job.poll_attempts > 20 else 1)
    return min(MAX_BACKOFF_SECONDS, base) * random.uniform(0.85, 1.15)


# Polling -------------------------------------------------------------------------------------------


def job_poll(job):
    """Ask the provider how the job is doing and act on the answer."""
    revisiting = job.state == JobState.FAILED and job.timed_out_at is not None
    if job.state not in (JobState.SUBMITTED, JobState.RUNNING, JobState.DOWNLOADING) and not revisiting:
        return job
    client = client_for(job.account)
    try:
        update = client.status(job.provider_task_id, job.provider_data)
        failpoint("after_status_answer")
        if update.state == State.SUCCEEDED and update.needs_result:
            update = _billed_result(job, client)
    except ProviderError as error:
        return _poll_failed(job, error, client)
    if revisiting:
        return _revisit(job, update, client)
    if update.enhanced_prompt and update.enhanced_prompt != job.enhanced_prompt:
        Job.objects.filter(pk=job.pk).update(enhanced_prompt=update.enhanced_prompt)
        job.enhanced_prompt = update.enhanced_prompt
    if update.state == State.SUCCEEDED:
        return _succeeded_upstream(job, update, client)
    if update.state == State.FAILED:
        job.mark_failed(update.error or f"The provider reports the job {update.raw_status or 'failed'}.",
                        payload=client.exchanges, raw_status=update.raw_status)
    elif update.state == State.CANCELLED:
        job.mark_cancelled(f"Cancelled at the provider ({update.raw_status}).")
    elif job.deadline_at and timezone.now() > job.deadline_at:
        job.mark_timed_out(
            f"No result after {client.adapter.deadline_hours} hours: the provider never finished this job "
            f"(its last status was “{update.raw_status}”). The studio keeps checking for a day in case it does.",
            revisit_at=timezone.now() + timedelta(seconds=REVISIT_TIMED_OUT_SECONDS),
        )
    else:
        job.mark_running(raw_status=update.raw_status, progress=update.progress,
                         payload=client.exchanges if job.state == JobState.SUBMITTED else None)
        schedule_poll(job, seconds=backoff_seconds(job, client.adapter))
    return job


def _revisit(job, update, client):
    """A job our deadline failed: revive it if the provider finished after all; give up after a day."""
    if update.state == State.SUCCEEDED:
        job.record("The provider finished after the deadline: reviving the job.", payload=client.exchanges)
        return _succeeded_upstream(job, update, client)
    if update.state in (State.FAILED, State.CANCELLED) or timezone.now() - job.timed_out_at > REVISIT_TIMED_OUT_FOR:
        Job.objects.filter(pk=job.pk).update(next_poll_at=None)
    else:
        Job.objects.filter(pk=job.pk).update(next_poll_at=timezone.now() + timedelta(seconds=REVISIT_TIMED_OUT_SECONDS))
    return job


def _billed_result(job, client):
    """ModelMax bills when its result is fetched: fetch it once, keep it, and reuse it ever after."""
    kept = job.provider_data.get("result")
    if kept is None:
        if job.provider_data.get("result_requested_at"):
            job.record("An earlier attempt asked for the billed result but stopped before keeping it; asking again "
                       "so the video is not lost (the provider may bill it twice).")
        job.provider_data = {**job.provider_data, "result_requested_at": timezone.now().isoformat()}
        Job.objects.filter(pk=job.pk).update(provider_data=job.provider_data)
        update = client.result(job.provider_task_id, job.provider_data)
        kept = {"state": update.state, "video_urls": update.video_urls, "error": update.error,
                "raw_status": update.raw_status}
        job.provider_data = {**job.provider_data, "result": kept}
        Job.objects.filter(pk=job.pk).update(provider_data=job.provider_data)
        job.record("Result fetched (billed once)", payload=client.exchanges)
    return StatusUpdate(state=kept["state"], raw_status=kept["raw_status"], video_urls=kept["video_urls"],
                        error=kept["error"])


def _poll_failed(job, error, client):
    if error.permanent:
        job.mark_failed(f"The provider refused the status check: {error.message}", payload=client.exchanges)
        return job
    job.record(f"Status check failed, will retry: {error.message}", payload=client.exchanges)
    schedule_poll(job, seconds=backoff_seconds(job, client.adapter, error.retry_after) * 2)
    return job


def _succeeded_upstream(job, update, client):
    if not update.video_urls:
        job.record("The provider says finished but lists no video yet; asking again.", payload=client.exchanges)
        schedule_poll(job, seconds=job.account.poll_interval(client.adapter))
        return job
    job.provider_data = {**job.provider_data, "video_urls": update.video_urls}
    Job.objects.filter(pk=job.pk).update(provider_data=job.provider_data)
    if job.state != JobState.DOWNLOADING:
        job.mark_downloading(raw_status=update.raw_status, payload=client.exchanges)
    return job_download(job, client)


# Keeping the video ------------------------------------------------------------------------------------


def job_download(job, client=None):
    """Download, probe and store every result not stored yet; the job succeeds only once all are on disk."""
    client = client or client_for(job.account)
    spec = model_spec(job.provider, job.model)
    stored = set(job.results.values_list("index", flat=True))
    for index, url in enumerate(job.provider_data.get("video_urls", [])):
        if index in stored:
            continue
        try:
            _store_result(job, spec, index, url, client)
        except DownloadError as error:
            return _download_failed(job, error, client)
    job.mark_succeeded()
    return job


def _store_result(job, spec, index, url, client):
    project_dir = f"projects/{job.project_id}"
    file = download_video(lambda http, link: client.stream_download(link, http=http), client.absolute_url(url),
                          f"{project_dir}/videos", heartbeat=lease_keeper(job))
    path = Path(settings.MEDIA_ROOT) / file.relative_path
    try:
        probe = probe_video(path)
        poster, strip, count = make_poster_and_strip(path, f"{project_dir}/posters")
        Result.objects.create(
            job=job, index=index, file=file.relative_path, sha256=file.sha256, bytes=file.bytes,
            duration=probe.duration, width=probe.width, height=probe.height, fps=probe.fps,
            video_codec=probe.video_codec, has_audio=probe.has_audio, poster=poster, thumbnail_strip=strip,
            thumbnail_count=count, mismatches=mismatches(spec, job.params, probe),
        )
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    job.record(f"Stored video {index + 1}: {file.bytes} bytes, sha256 {file.sha256[:12]}…")


def lease_keeper(job, every=10.0):
    """A heartbeat that extends the job's lease at most every `every` seconds while work goes on."""
    last = time.monotonic()

    def renew():
        nonlocal last
        if time.monotonic() - last >= every and job.lease_owner:
            Job.objects.filter(pk=job.pk, lease_owner=job.lease_owner).update(
                lease_expires_at=timezone.now() + timedelta(seconds=settings.STUDIO_LEASE_SECONDS))
            last = time.monotonic()

    return renew


def _download_failed(job, error, client):
    if error.permanent:
        job.mark_failed(f"The video could not be kept: {error.message}")
    elif error.expired and job.provider_data.get("result") is None:
        job.record(f"{error.message} Asking the provider for a fresh link.")
        schedule_poll(job, seconds=1)
    else:
        job.record(f"Download failed, will retry: {error.message}")
        schedule_poll(job, seconds=backoff_seconds(job, client.adapter) * 2)
    return job


# People deciding about ambiguous jobs ---------------------------------------------------------------


def job_give_up(*, job, user):
    """Mark an ambiguous job as failed: the person will check the provider's console themselves."""
    return job.mark_failed(f"Marked as failed by {user} after an ambiguous submission.")


def job_submit_again(*, job, user):
    """Send an ambiguous job again. The provider may already have it: this may be charged twice."""
    with transaction.atomic():
        if not job.resubmit(f"Sent again by {user}, knowing the provider may charge twice."):
            return False
        transaction.on_commit(lambda: enqueue_submit(job.pk))
    return True


# Driving one job in this process (the command line's --wait) -----------------------------------------


def job_run_to_end(job, *, timeout=3600, sleep=time.sleep):
    """Submit and follow one job until it ends (or is ambiguous), without the cluster."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job.refresh_from_db()
        if job.is_finished or job.state == JobState.SUBMIT_UNKNOWN:
            return job
        wait = (job.next_poll_at - timezone.now()).total_seconds() if job.next_poll_at else 0
        if wait > 0:
            sleep(min(wait, max(0.0, deadline - time.monotonic())))
            continue
        if job.state == JobState.QUEUED:
            job_submit(job)
        else:
            job_poll(job)
    job.refresh_from_db()
    return job
