"""Reads: how jobs are reported to people and scripts."""

from pathlib import Path

from django.conf import settings
from django.db.models import Count
from django.urls import reverse
from django.utils import timezone

from studio.jobs.models import Job, JobState


def stored_results(job):
    """The job's videos in order, using prefetched rows when there are any."""
    return sorted(job.results.all(), key=lambda result: result.index)


def job_report(job):
    """One job as a plain dict: what `generate --json` and `jobs --json` print."""
    return {
        "id": job.pk,
        "state": job.state,
        "provider": job.provider,
        "model": job.model,
        "provider_task_id": job.provider_task_id,
        "error": job.error_message,
        "cost_estimate": str(job.cost_estimate) if job.cost_estimate is not None else None,
        "currency": job.currency,
        "results": [
            {"path": str(Path(settings.MEDIA_ROOT) / r.file.name), "sha256": r.sha256, "bytes": r.bytes,
             "duration": r.duration, "width": r.width, "height": r.height, "fps": r.fps,
             "has_audio": r.has_audio, "mismatches": r.mismatches}
            for r in stored_results(job)
        ],
    }


# Seconds until a card asks again. Short hops (queued, downloading) finish in a moment; generation takes
# a while, and a job waiting for a person or already finished is not asked about at all.
CARD_POLL_SECONDS = {
    JobState.QUEUED: 1,
    JobState.SUBMITTING: 1,
    JobState.DOWNLOADING: 1,
    JobState.SUBMITTED: 2,
    JobState.RUNNING: 2,
}


def prepare_cards(jobs):
    """Give each job what its card shows beyond the row itself: when to ask again, time taken, video links,
    and how many jobs its batch has (one query for all the cards)."""
    now = timezone.now()
    batch_ids = {job.batch_id for job in jobs if job.batch_id}
    batch_sizes = dict(
        Job.objects.filter(batch_id__in=batch_ids).order_by().values("batch_id").annotate(n=Count("pk"))
        .values_list("batch_id", "n")
    ) if batch_ids else {}
    for job in jobs:
        job.batch_size = batch_sizes.get(job.batch_id, 0)
        job.poll_delay = CARD_POLL_SECONDS.get(job.state)
        job.elapsed = duration_text((job.finished_at or now) - job.created_at)
        job.result_list = stored_results(job)
        if job.state == JobState.SUCCEEDED and any(result.processed_at is None for result in job.result_list):
            job.poll_delay = CARD_POLL_SECONDS[JobState.DOWNLOADING]  # the poster is on its way
        for result in job.result_list:
            result.video_url = media_url(job.project_id, result.file.name)
            result.poster_url = media_url(job.project_id, result.poster.name) if result.poster else ""
    return jobs


def media_url(project_id, name):
    """The studio's own, members-only address for a stored file (never the provider's link)."""
    return reverse("media_file", args=[project_id, name.removeprefix(f"projects/{project_id}/")])


def duration_text(delta):
    seconds = max(0, int(delta.total_seconds()))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"
