"""A job's life: create, submit once, poll, fetch the result, keep the video.

Every step loads the job, does one thing, and records it with a compare-and-set transition, so a step
that runs twice (a redelivered task, a second worker) finds the state already moved and does nothing.
"""

import logging
import random
import time
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from studio.jobs.media import DownloadError, download_video, make_poster_and_strip, mismatches, probe_video
from studio.jobs.models import Job, JobImage, JobState, Result
from studio.projects.image_links import signed_image_url
from studio.projects.images import MIME
from studio.projects.models import Prompt, PromptVersion
from studio.providers import catalog, pricing
from studio.providers.base import GenerationRequest, ImageInput, ProviderError, State, StatusUpdate
from studio.providers.client import client_for
from studio.providers.registry import model_spec

logger = logging.getLogger(__name__)

TRANSIENT_BACKOFF_SECONDS = 15
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
    )


def job_submit(job):
    """Send the job to its provider, exactly once. Returns the job in its new state."""
    if not job.claim_for_submit():
        return job
    client = client_for(job.account)
    try:
        submitted = client.submit(generation_request(job))
    except ProviderError as error:
        return _submit_failed(job, error, client.exchanges)
    job.mark_submitted(task_id=submitted.task_id, raw_status=submitted.raw_status, data=submitted.data,
                       payload=client.exchanges)
    schedule_poll(job, seconds=job.account.first_poll_delay(client.adapter))
    return job


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
    if job.state not in (JobState.SUBMITTED, JobState.RUNNING, JobState.DOWNLOADING):
        return job
    client = client_for(job.account)
    try:
        update = client.status(job.provider_task_id, job.provider_data)
        if update.state == State.SUCCEEDED and update.needs_result:
            update = _billed_result(job, client)
    except ProviderError as error:
        return _poll_failed(job, error, client)
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
    else:
        job.mark_running(raw_status=update.raw_status, progress=update.progress,
                         payload=client.exchanges if job.state == JobState.SUBMITTED else None)
        schedule_poll(job, seconds=backoff_seconds(job, client.adapter))
    return job


def _billed_result(job, client):
    """ModelMax bills when its result is fetched: fetch it once, keep it, and reuse it ever after."""
    kept = job.provider_data.get("result")
    if kept is None:
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
                          f"{project_dir}/videos")
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
