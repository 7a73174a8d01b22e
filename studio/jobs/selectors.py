"""Reads: how jobs are reported to people and scripts."""

import hashlib
from dataclasses import dataclass
from datetime import timedelta

from django.db.models import Count
from django.urls import reverse
from django.utils import timezone

from studio.core import media_store
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
            {"path": media_store.where(r.file.name), "sha256": r.sha256, "bytes": r.bytes,
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


class Cards(list):
    """Jobs ready for their cards, and what the project page's updater starts from."""

    @property
    def poll_delay(self):
        """The shortest delay any of the cards wants, or None when none is live."""
        return min((job.poll_delay for job in self if job.poll_delay), default=None)

    @property
    def newest_id(self):
        return max((job.pk for job in self), default=0)


def prepare_cards(jobs):
    """Give each job what its card shows beyond the row itself: when to ask again, time taken, video links,
    how many jobs its batch has (one query for all the cards), and, for a live card, the version of what it
    shows."""
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
        job.version = card_version(job) if job.poll_delay else ""
    return Cards(jobs)


def card_version(job):
    """A short hash of what a live card shows that its job can change (all but the time, which the updater
    sends on its own): when it differs from the one the page holds, the page gets the card again."""
    results = [(r.pk, r.processed_at, r.poster.name, r.processing_error) for r in job.result_list]
    shown = (job.state, job.progress, job.provider_status, job.error_message, results)
    return hashlib.blake2s(repr(shown).encode(), digest_size=4).hexdigest()


# A job made elsewhere (another tab, a teammate, the command line) joins an open project page once it is this
# old: by then a card the page's own composer or "Run again" put in the grid is there and named in the page's
# request, so no card is added twice.
NEW_CARD_GRACE = timedelta(seconds=5)
NEW_CARDS_AT_ONCE = 24


@dataclass
class GridUpdate:
    """What the project page's updater gets back: the live cards that changed (whole), the live ones that did
    not (only their time), the jobs made elsewhere since the page was drawn (newest first), the delay before it
    asks again (None: nothing left to follow) and the newest job it was drawn with."""

    changed: list
    unchanged: list
    new: list
    delay: int | None
    after: int | None


def grid_update(jobs, *, shown, after):
    """`jobs`: the person's jobs of the project; `shown`: {job id: version} of every card on the page (a
    finished card's version is ""); `after`: the newest job the page was drawn with (None: add no cards). Five
    queries at most, however many cards."""
    related = ("account", "prompt_version")
    live = [job_id for job_id, version in shown.items() if version]
    followed = list(jobs.filter(pk__in=live).select_related(*related).prefetch_related("results"))
    new = []
    if after is not None:
        made_elsewhere = jobs.filter(pk__gt=after, created_at__lte=timezone.now() - NEW_CARD_GRACE)
        new = list(made_elsewhere.exclude(pk__in=list(shown)).select_related(*related)
                   .prefetch_related("results").order_by("-created_at", "-pk")[:NEW_CARDS_AT_ONCE])
    cards = prepare_cards(followed + new)
    return GridUpdate(
        changed=[job for job in followed if job.version != shown[job.pk]],
        unchanged=[job for job in followed if job.version == shown[job.pk] and not job.is_finished],
        new=new,
        delay=cards.poll_delay,
        after=after,
    )


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
