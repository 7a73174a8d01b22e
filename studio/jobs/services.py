"""A job's life: create, submit once, poll, fetch the result, keep the video, and what to do when it fails.

Every provider call for a job is made from `job_advance`, which the poller's threads (and `generate
--wait`) run under the job's lease; nothing else sends. Each step does one thing and records it with a
compare-and-set transition, so a step that runs twice finds the state already moved and does nothing.
Any failure of a step, whatever raised it, is recorded and scheduled (`job_step_failed`): backoff with
jitter, the same failure N times in a row ends the job with its reason, and the deadline holds whatever
the answers are. The CPU work on a stored video (probe, poster, strip) runs later in a django-q2 task.
"""

import logging
import random
import secrets
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from studio.core import media_store
from studio.core.failpoints import failpoint
from studio.core.redaction import public_text
from studio.jobs.leases import lease_is_free
from studio.jobs.logcontext import job_context
from studio.jobs.media import DownloadError, download_video, make_poster_and_strip, mismatches, probe_video
from studio.jobs.models import Job, JobImage, JobState, Result
from studio.projects.image_links import signed_image_url
from studio.projects.images import MIME
from studio.projects.models import Prompt, PromptVersion
from studio.providers import catalog, pricing
from studio.providers.base import (
    GenerationRequest,
    HttpCall,
    ImageInput,
    NotNow,
    ProviderError,
    State,
    StatusUpdate,
)
from studio.providers.http import CallCancelled
from studio.providers.registry import adapter_for, model_spec

logger = logging.getLogger(__name__)

REVISIT_TIMED_OUT_SECONDS = 30 * 60
REVISIT_TIMED_OUT_FOR = timedelta(hours=24)
MAX_POLL_SECONDS = 300
# ModelMax bills when its result is fetched: never more than this many fetches for one job.
MAX_BILLED_RESULT_FETCHES = 2


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
               prompt_version=None, batch=None):
    """Validate against the catalog, then record a queued job, due at once: the poller sends it within its
    idle sleep. Raises ValidationFailed; nothing is sent here."""
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
            webhook_token=secrets.token_urlsafe(32), next_poll_at=timezone.now(), queued_at=timezone.now(),
        )
        roles = [(JobImage.Role.FIRST_FRAME, first_frame), (JobImage.Role.LAST_FRAME, last_frame)]
        roles += [(JobImage.Role.REFERENCE, image) for image in references]
        for position, (role, image) in enumerate(roles):
            if image is not None:
                JobImage.objects.create(job=job, image=image, role=role, position=position)
        job.record("Created", payload={"params": clean, "cost_estimate": str(cost)})
    return job


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


def job_advance(job, calls):
    """Take the one step the job's state calls for. The caller holds the job's lease (calls.lease)."""
    if job.state == JobState.QUEUED:
        return job_submit(job, calls)
    if job.state == JobState.SUBMITTING:
        return job_recover_stalled(job)
    if job.state == JobState.SUBMIT_UNKNOWN:
        return job_settle(job, calls)
    return job_poll(job, calls)


def job_submit(job, calls):
    """Send the job to its provider, exactly once.

    Everything that can be prepared is prepared first: the request with its images, the client, the
    account's budget slot. The "sent" mark is committed by calls.before_bytes() at the last moment before
    the first byte is written, and the provider's task id the moment it arrives. A crash before the mark
    leaves a job that certainly was not sent (it goes back to the queue); after it, the job is ambiguous.
    """
    if _queued_too_long(job):
        job.mark_failed(f"Not sent within {settings.STUDIO_QUEUE_HOURS} hours of being queued (the account stayed "
                        "paused or over its budget); nothing reached the provider.")
        return job
    calls.admit_submit()  # raises NotNow (paused, budget spent) before the job is even claimed
    if not job.claim_for_submit():
        return job
    try:
        request = generation_request(job)
    except (OSError, ValueError, KeyError) as error:
        job.mark_failed(f"The job's images could not be read: {public_text(error, 300)}")
        return job
    client = calls.client
    try:
        submitted = client.submit(request, hooks=calls)
    except Exception as error:  # noqa: BLE001 - whatever happened, what matters is whether anything left
        return _submit_failed(job, error, sent=calls.sent, exchanges=client.exchanges)
    failpoint("after_submit_answer")
    now = timezone.now()
    job.mark_submitted(task_id=submitted.task_id, raw_status=submitted.raw_status, data=submitted.data,
                       deadline_at=now + timedelta(hours=client.adapter.deadline_hours),
                       next_poll_at=now + timedelta(seconds=job.account.first_poll_delay(client.adapter)),
                       payload=client.exchanges)
    # A callback that came while we were sending (before the task id existed) only left its mark: poll now.
    Job.objects.filter(pk=job.pk, state=JobState.SUBMITTED, webhook_received_at__isnull=False).update(
        next_poll_at=timezone.now())
    return job


def _queued_too_long(job):
    return timezone.now() - (job.queued_at or job.created_at) > timedelta(hours=settings.STUDIO_QUEUE_HOURS)


def _submit_failed(job, error, *, sent, exchanges):
    """Decide what a failed submission means. Only a clear refusal fails the job; only an error after the
    first byte left can make it ambiguous; anything before that is safe to send again later."""
    if isinstance(error, NotNow):
        job.requeue_after(f"Not sent yet: {error.message}", _later(error.retry_after, jitter=2.0), payload=exchanges,
                          failure_kind=job.failure_kind, failure_streak=job.failure_streak)
    elif isinstance(error, ProviderError) and error.permanent:
        job.mark_failed(error.message, payload=exchanges)
    elif isinstance(error, ProviderError) and error.kind == "rate_limited":
        delay = error.retry_after or backoff_seconds(1)
        job.requeue_after(f"Not sent: {error.message}. Trying again in {_seconds_text(delay)}.", _later(delay),
                          payload=exchanges, failure_kind=job.failure_kind, failure_streak=job.failure_streak)
    elif sent:
        job.mark_submit_unknown(_ambiguous_message(error), payload=exchanges)
        _settle_soon_if_called_back(job)
    elif isinstance(error, CallCancelled):
        job.requeue_after("Not sent: the worker stopped before sending; the job goes back to the queue.",
                          timezone.now(), failure_kind=job.failure_kind, failure_streak=job.failure_streak)
    else:
        _requeue_after_failure(job, error, exchanges)
    return job


def _ambiguous_message(error):
    if isinstance(error, ProviderError) and error.ambiguous:
        return error.message
    if isinstance(error, CallCancelled):
        return ("The studio stopped while waiting for the provider's answer: the provider may have accepted the job, "
                "but we could not confirm. Check the provider's console, then mark it as failed or submit it again.")
    return (f"Something went wrong after the job was sent ({describe(error)}): the provider may have accepted it, "
            "but we could not confirm. Check the provider's console, then mark it as failed or submit it again.")


def _requeue_after_failure(job, error, exchanges):
    kind = failure_kind(error)
    streak = job.failure_streak + 1 if job.failure_kind == kind else 1
    if streak >= settings.STUDIO_FAILURE_LIMIT:
        job.mark_failed(f"Could not send this job, {streak} times in a row: {describe(error)}. Nothing reached the "
                        "provider.", payload=exchanges)
        return
    delay = backoff_seconds(streak, getattr(error, "retry_after", None))
    job.requeue_after(f"Not sent: {describe(error)}. Trying again in {_seconds_text(delay)}.", _later(delay),
                      payload=exchanges, failure_kind=kind, failure_streak=streak)


def _settle_soon_if_called_back(job):
    """The provider called back while we waited for its answer: the task it named can settle the job now."""
    Job.objects.filter(pk=job.pk, state=JobState.SUBMIT_UNKNOWN, provider_data__has_key="callback_task_id").update(
        next_poll_at=timezone.now())


def job_recover_stalled(job):
    """A job left "submitting" by a worker that died (its lease expired)."""
    if job.submit_sent_at is None:
        job.requeue_after("The studio stopped before sending this job; it goes back to the queue.", timezone.now())
    else:
        job.mark_submit_unknown(
            "The studio stopped while sending this job: the provider may have accepted it, but we could not "
            "confirm. Check the provider's console, then mark it as failed or submit it again."
        )
        _settle_soon_if_called_back(job)
    return job


def recover_stalled_submissions():
    """Jobs left "submitting" by a crashed worker: back to the queue if nothing was sent, else ambiguous."""
    stalled = Job.objects.filter(state=JobState.SUBMITTING).filter(lease_is_free(timezone.now()))
    for job in stalled.select_related("account"):
        with job_context(job):
            job_recover_stalled(job)


def job_settle(job, calls):
    """An ambiguous job whose provider called back: look the named task up, and follow it if it is ours.

    The callback's body is never trusted: it only names a task id, which is fetched from the provider with
    the account's key; it must exist and be for the job's model."""
    task_id = job.provider_data.get("callback_task_id", "")
    Job.objects.filter(pk=job.pk).update(next_poll_at=None)
    if not task_id:
        return job
    client = calls.client
    update = client.status(task_id, job.provider_data, hooks=calls)
    if update.model and update.model != job.model:
        job.record(f"A callback named the task {task_id}, but the provider says it is for {update.model}, not "
                   f"{job.model}; the job stays unknown.", payload=client.exchanges)
        return job
    job.mark_settled(
        task_id=task_id, payload=client.exchanges,
        message=f"Settled: the provider called back for this job and confirms its task {task_id} "
                f"({update.raw_status or update.state}). It was accepted once; the studio follows it from here.",
        deadline_at=timezone.now() + timedelta(hours=client.adapter.deadline_hours),
    )
    return job


# Polling -------------------------------------------------------------------------------------------


def job_poll(job, calls):
    """Ask the provider how the job is doing and act on the answer."""
    revisiting = job.state == JobState.FAILED and job.timed_out_at is not None
    if job.state not in (JobState.SUBMITTED, JobState.RUNNING, JobState.DOWNLOADING) and not revisiting:
        return job
    client = calls.client
    update = client.status(job.provider_task_id, job.provider_data, hooks=calls)
    failpoint("after_status_answer")
    if update.state == State.SUCCEEDED and update.needs_result:
        update = _billed_result(job, client, calls)
    if revisiting:
        return _revisit(job, update, client, calls)
    if update.enhanced_prompt and update.enhanced_prompt != job.enhanced_prompt:
        job.enhanced_prompt = public_text(update.enhanced_prompt, 4000)
        Job.objects.filter(pk=job.pk).update(enhanced_prompt=job.enhanced_prompt)
    if update.state == State.SUCCEEDED:
        return _succeeded_upstream(job, update, client, calls)
    if update.state == State.FAILED:
        job.mark_failed(update.error or f"The provider reports the job {update.raw_status or 'failed'}.",
                        payload=client.exchanges, raw_status=update.raw_status)
    elif update.state == State.CANCELLED:
        job.mark_cancelled(f"Cancelled at the provider ({public_text(update.raw_status, 60)}).")
    elif _past_deadline(job):
        _time_out(job, f"its last status was “{public_text(update.raw_status, 60)}”", client.adapter)
    elif job.state == JobState.RUNNING:
        job.poll_continues(raw_status=update.raw_status, progress=update.progress,
                           seconds=poll_seconds(job, client.adapter), lease=calls.lease)
    else:
        job.mark_running(raw_status=update.raw_status, progress=update.progress, payload=client.exchanges)
        job.schedule_next(poll_seconds(job, client.adapter))
    return job


def _past_deadline(job):
    return job.deadline_at is not None and timezone.now() > job.deadline_at


def _time_out(job, why, adapter):
    job.mark_timed_out(
        f"No result after {adapter.deadline_hours} hours: the provider never finished this job ({why}). "
        "The studio keeps checking for a day in case it does.",
        revisit_at=_later(REVISIT_TIMED_OUT_SECONDS),
    )


def _revisit(job, update, client, calls):
    """A job we failed (deadline, repeated failures): revive it if the provider finished after all; give up
    after a day."""
    if update.state == State.SUCCEEDED:
        job.record("The provider finished after all: reviving the job.", payload=client.exchanges)
        return _succeeded_upstream(job, update, client, calls)
    if update.state in (State.FAILED, State.CANCELLED) or _revisits_over(job):
        Job.objects.filter(pk=job.pk).update(next_poll_at=None)
    else:
        Job.objects.filter(pk=job.pk).update(next_poll_at=_later(REVISIT_TIMED_OUT_SECONDS))
    return job


def _revisits_over(job):
    return timezone.now() - job.timed_out_at > REVISIT_TIMED_OUT_FOR


def _billed_result(job, client, calls):
    """ModelMax bills when its result is fetched: fetch it, keep it, reuse it ever after; never fetch more
    than MAX_BILLED_RESULT_FETCHES times, even when the answers cannot be read."""
    kept = job.provider_data.get("result")
    if kept is None:
        fetches = int(job.provider_data.get("result_fetches", 0))
        if fetches >= MAX_BILLED_RESULT_FETCHES:
            raise ProviderError(
                f"The provider's billed result was fetched {fetches} times and could not be used; fetching it "
                "again may bill the job again, so the studio stops here. Check the provider's console.",
                permanent=True, kind="billed_result")
        if fetches:
            job.record("An earlier attempt fetched the billed result but could not keep it; asking once more so the "
                       "video is not lost (the provider may bill it twice).")
        job.provider_data = {**job.provider_data, "result_fetches": fetches + 1,
                             "result_requested_at": timezone.now().isoformat()}
        Job.objects.filter(pk=job.pk).update(provider_data=job.provider_data)
        update = client.result(job.provider_task_id, job.provider_data, hooks=calls)
        kept = {"state": update.state, "video_urls": update.video_urls, "error": public_text(update.error),
                "raw_status": public_text(update.raw_status, 60)}
        job.provider_data = {**job.provider_data, "result": kept}
        Job.objects.filter(pk=job.pk).update(provider_data=job.provider_data)
        job.record("Result fetched (billed once)", payload=client.exchanges)
    return StatusUpdate(state=kept["state"], raw_status=kept["raw_status"], video_urls=kept["video_urls"],
                        error=kept["error"])


def _succeeded_upstream(job, update, client, calls):
    if not update.video_urls:
        raise ProviderError("The provider says the job finished but lists no video.", kind="no_video")
    job.provider_data = {**job.provider_data, "video_urls": update.video_urls}
    Job.objects.filter(pk=job.pk).update(provider_data=job.provider_data)
    if job.state != JobState.DOWNLOADING:
        job.mark_downloading(raw_status=update.raw_status, payload=client.exchanges)
    return job_download(job, client, calls)


def poll_seconds(job, adapter, retry_after=None):
    """The account's pace, stretched for long jobs, jittered so many jobs do not poll in step."""
    if retry_after:
        return retry_after
    interval = job.account.poll_interval(adapter)
    base = interval * (1.5 ** min(job.poll_attempts - 20, 6) if job.poll_attempts > 20 else 1)
    return min(MAX_POLL_SECONDS, base) * random.uniform(0.85, 1.15)


# Keeping the video ------------------------------------------------------------------------------------


def job_download(job, client, calls):
    """Download every result not stored yet; the job succeeds once all are on disk. The probe and poster
    follow in a task (result_process), so the video shows at once and its poster a moment later."""
    stored = set(job.results.values_list("index", flat=True))
    for index, url in enumerate(job.provider_data.get("video_urls", [])):
        if index not in stored:
            _store_result(job, index, url, client, calls)
    job.mark_succeeded()
    return job


def _store_result(job, index, url, client, calls):
    link = client.absolute_url(url)
    calls.before_call(_DOWNLOAD)
    file = download_video(client.stream_download, link, f"projects/{job.project_id}/videos", cancel=calls.cancel)
    result, created = result_store(job=job, index=index, file=file)
    if created:
        job.record(f"Stored video {index + 1}: {file.bytes:,} bytes, sha256 {file.sha256[:12]}…")


_DOWNLOAD = HttpCall("GET", "video")


def result_store(*, job, index, file):
    """Keep a downloaded file as the job's result `index`, once: a second worker's copy is removed."""
    with transaction.atomic():
        result, created = Result.objects.get_or_create(
            job=job, index=index, defaults={"file": file.relative_path, "sha256": file.sha256, "bytes": file.bytes})
        if created:
            transaction.on_commit(lambda: enqueue_result_processing(result.pk))
    if not created and result.file.name != file.relative_path:
        media_store.delete(file.relative_path)
    return result, created


def enqueue_result_processing(result_id):
    """Hand the probe and poster to django-q2's workers; a lost task is picked up by the sweep schedule."""
    from django_q.tasks import async_task

    try:
        async_task("studio.jobs.tasks.process_result", result_id, task_name=f"process-result-{result_id}",
                   group="results")
    except Exception:  # the broker is down: the video is stored, and the sweep will make its poster later
        logger.exception("could not queue the processing of result %s", result_id)


def result_process(*, result_id):
    """Probe a stored video, make its poster and thumbnail strip, and note where it differs from the request.
    Safe to repeat: files have fixed names and the row is written only while unprocessed."""
    result = Result.objects.select_related("job").filter(pk=result_id, processed_at__isnull=True).first()
    if result is None:
        return None
    job = result.job
    try:
        with media_store.local_copy(result.file.name) as path:
            probe = probe_video(path)
            poster, strip, count = make_poster_and_strip(path, f"projects/{job.project_id}/posters",
                                                         stem=Path(result.file.name).stem)
    except (DownloadError, OSError) as error:
        message = getattr(error, "message", None) or public_text(error, 300)
        if Result.objects.filter(pk=result.pk, processed_at__isnull=True).update(
                processed_at=timezone.now(), processing_error=public_text(message, 500)):
            job.record(f"Video {result.index + 1} could not be read: {message}")
        return result
    spec = model_spec(job.provider, job.model)
    fields = {"duration": probe.duration, "width": probe.width, "height": probe.height, "fps": probe.fps,
              "video_codec": probe.video_codec, "has_audio": probe.has_audio, "poster": poster,
              "thumbnail_strip": strip, "thumbnail_count": count, "mismatches": mismatches(spec, job.params, probe),
              "processed_at": timezone.now()}
    if Result.objects.filter(pk=result.pk, processed_at__isnull=True).update(**fields):
        job.record(f"Video {result.index + 1} checked: {probe.width}×{probe.height}, {probe.duration} s"
                   f"{', with sound' if probe.has_audio else ''}; poster made")
    result.refresh_from_db()
    return result


def results_process_pending(*, older_than=0):
    """Queue the processing of stored videos whose task was lost (a crash, the broker down)."""
    cutoff = timezone.now() - timedelta(seconds=older_than)
    ids = list(Result.objects.filter(processed_at__isnull=True, created_at__lte=cutoff).values_list("pk", flat=True))
    for result_id in ids:
        enqueue_result_processing(result_id)
    return len(ids)


# When a step fails ----------------------------------------------------------------------------------


def failure_kind(error):
    if isinstance(error, ProviderError):
        return error.kind[:40]
    if isinstance(error, DownloadError):
        return "expired_link" if error.expired else "download"
    return type(error).__name__[:40]


def describe(error):
    """An error in words fit for a job's history: the provider's own message, or the exception's."""
    message = getattr(error, "message", None) or str(error) or type(error).__name__
    return public_text(message, 500)


def backoff_seconds(streak, retry_after=None):
    """Exponential backoff with jitter, capped (a persistent failure settles at minutes), never before the
    provider's Retry-After."""
    base = settings.STUDIO_BACKOFF_BASE_SECONDS * 2 ** (max(1, streak) - 1)
    delay = min(settings.STUDIO_BACKOFF_MAX_SECONDS, base) * random.uniform(0.8, 1.2)
    return max(delay, retry_after or 0)


def job_step_failed(job, error, *, exchanges=None):
    """Any failure of a step, whatever raised it: record it, then schedule the next attempt, or end the job
    when it keeps failing the same way or its deadline has passed."""
    job.refresh_from_db()
    if job.is_finished and not job.timed_out_at:
        return job
    words = describe(error)
    if job.state in (JobState.QUEUED, JobState.SUBMITTING):
        return _submit_step_failed(job, error, exchanges)
    if job.state == JobState.SUBMIT_UNKNOWN:
        return _settle_failed(job, error, exchanges)
    if job.state == JobState.FAILED:  # a timed-out job being revisited: just look again later
        job.record(f"Still no answer ({words}); looking again in 30 minutes.", payload=exchanges)
        again = None if _revisits_over(job) else _later(REVISIT_TIMED_OUT_SECONDS)
        Job.objects.filter(pk=job.pk).update(next_poll_at=again)
        return job
    if isinstance(error, ProviderError) and error.permanent or isinstance(error, DownloadError) and error.permanent:
        job.mark_failed(_permanent_message(job, error, words), payload=exchanges)
        return job
    kind = failure_kind(error)
    streak = job.failure_streak + 1 if job.failure_kind == kind else 1
    adapter = adapter_for(job.provider)
    if _past_deadline(job):
        _time_out(job, f"the last attempt failed: {words}", adapter)
    elif streak >= settings.STUDIO_FAILURE_LIMIT:
        job.mark_timed_out(f"{_what_failed(job)} failed {streak} times in a row: {words}. The studio keeps "
                           "checking for a day in case the provider recovers.",
                           revisit_at=_later(REVISIT_TIMED_OUT_SECONDS), payload=exchanges)
    else:
        delay = backoff_seconds(streak, getattr(error, "retry_after", None))
        message = f"{_what_failed(job)} failed ({words}); trying again in {_seconds_text(delay)}."
        if kind == "expired_link" and not job.provider_data.get("result"):
            delay = min(delay, 1.0 * streak)  # a fresh link is one status call away
            message = f"{words} Asking the provider for a fresh link in {_seconds_text(delay)}."
        job.record(message, payload=exchanges)
        job.schedule_next(delay, failure_kind=kind, failure_streak=streak)
    return job


def _submit_step_failed(job, error, exchanges):
    if job.state == JobState.SUBMITTING and job.submit_sent_at:
        job.mark_submit_unknown(_ambiguous_message(error), payload=exchanges)
        _settle_soon_if_called_back(job)
    elif job.state == JobState.SUBMITTING:
        _requeue_after_failure(job, error, exchanges)
    else:
        kind = failure_kind(error)
        streak = job.failure_streak + 1 if job.failure_kind == kind else 1
        if streak >= settings.STUDIO_FAILURE_LIMIT:
            job.mark_failed(f"Could not prepare this job, {streak} times in a row: {describe(error)}. "
                            "Nothing was sent.")
        else:
            job.schedule_next(backoff_seconds(streak), failure_kind=kind, failure_streak=streak)
    return job


def _settle_failed(job, error, exchanges):
    """Looking up the task a callback named failed: try again a few times, then leave the job to a person."""
    kind = failure_kind(error)
    streak = job.failure_streak + 1 if job.failure_kind == kind else 1
    permanent = isinstance(error, ProviderError) and error.permanent
    if permanent or streak >= settings.STUDIO_FAILURE_LIMIT:
        job.record(f"Could not confirm the task the provider's callback named ({describe(error)}); the job stays "
                   "unknown.", payload=exchanges)
        Job.objects.filter(pk=job.pk).update(next_poll_at=None, failure_streak=0, failure_kind="")
    else:
        job.record(f"Looking up the task the provider's callback named failed ({describe(error)}); trying again.",
                   payload=exchanges)
        job.schedule_next(backoff_seconds(streak), failure_kind=kind, failure_streak=streak)
    return job


def _what_failed(job):
    return "The download" if job.state == JobState.DOWNLOADING else "The status check"


def _permanent_message(job, error, words):
    if job.state == JobState.DOWNLOADING:
        return f"The video could not be kept: {words}"
    if isinstance(error, ProviderError) and error.kind.startswith("http_"):
        return f"The provider refused the status check: {words}"
    return words


def job_defer(job, error):
    """The call was not made (account paused, budget spent): try at the time given, unless the deadline passed."""
    if _past_deadline(job) and job.state in (JobState.SUBMITTED, JobState.RUNNING, JobState.DOWNLOADING):
        _time_out(job, error.message, adapter_for(job.provider))
        return job
    Job.objects.filter(pk=job.pk).update(next_poll_at=_later(error.retry_after or 1.0, jitter=2.0))
    return job


def job_resume(job):
    """A step abandoned on purpose (the worker stopping): due again at once, for whichever worker is next."""
    Job.objects.filter(pk=job.pk, next_poll_at__isnull=False).update(next_poll_at=timezone.now())
    return job


def _later(seconds, *, jitter=0.0):
    return timezone.now() + timedelta(seconds=(seconds or 0) + random.uniform(0, jitter))


def _seconds_text(seconds):
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min"


# People deciding about ambiguous jobs ---------------------------------------------------------------


def job_give_up(*, job, user):
    """Mark an ambiguous job as failed: the person will check the provider's console themselves."""
    return job.mark_failed(f"Marked as failed by {user} after an ambiguous submission.")


def job_submit_again(*, job, user):
    """Send an ambiguous job again (the poller picks it up at once). The provider may already have it: this
    may be charged twice."""
    return job.resubmit(f"Sent again by {user}, knowing the provider may charge twice.")


