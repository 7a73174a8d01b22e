"""Generation jobs, their history, and the videos they produce.

A batch is one prompt version sent to one or more targets (account + model); each target is a job.
The job row holds all of its state (including when to poll next and who holds the lease), so the
task queue only ever carries job ids and can be lost without losing work.
"""

import uuid
from datetime import timedelta

from django.conf import settings
from django.db import models, transaction
from django.utils import timezone

from studio.core.redaction import bounded_payload, public_text, short_text
from studio.projects.models import ImageAsset, Project, ProjectScopedQuerySet, PromptVersion
from studio.providers.models import ProviderAccount


class Batch(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="batches")
    prompt_version = models.ForeignKey(PromptVersion, on_delete=models.PROTECT, related_name="batches")
    name = models.CharField(max_length=200)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ProjectScopedQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "batches"

    def __str__(self):
        return self.name


class JobState(models.TextChoices):
    QUEUED = "queued", "Queued"
    SUBMITTING = "submitting", "Submitting"
    SUBMIT_UNKNOWN = "submit_unknown", "Outcome unknown"
    SUBMITTED = "submitted", "Waiting at provider"
    RUNNING = "running", "Running"
    DOWNLOADING = "downloading", "Downloading"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


TERMINAL_STATES = {JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED}
# A job's history keeps at most this much JSON per event (a provider's answers, cut with a note).
PAYLOAD_LIMIT = 16 * 1024


class Job(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="jobs")
    batch = models.ForeignKey(Batch, null=True, blank=True, on_delete=models.SET_NULL, related_name="jobs")
    prompt_version = models.ForeignKey(PromptVersion, on_delete=models.PROTECT, related_name="jobs")
    account = models.ForeignKey(ProviderAccount, on_delete=models.PROTECT, related_name="jobs")
    # Copied from the account at creation so history stays true if the account is later changed.
    provider = models.CharField(max_length=20)
    model = models.CharField(max_length=80, help_text="The provider's own model id.")
    params = models.JSONField(default=dict, help_text="Unified parameters as requested.")
    cost_estimate = models.DecimalField(max_digits=10, decimal_places=4, null=True, blank=True)
    currency = models.CharField(max_length=3, default="USD")

    state = models.CharField(max_length=20, choices=JobState.choices, default=JobState.QUEUED, db_index=True)
    progress = models.PositiveSmallIntegerField(null=True, blank=True)
    provider_task_id = models.CharField(max_length=200, blank=True, db_index=True)
    provider_status = models.CharField(max_length=60, blank=True, help_text="The provider's last raw status value.")
    enhanced_prompt = models.TextField(blank=True)
    error_message = models.TextField(blank=True)
    # Opaque per-provider data kept between calls (status/result paths, ModelMax's billed result).
    provider_data = models.JSONField(default=dict, blank=True)

    # Scheduling lives here, not in the queue: a restarted cluster resumes from these columns.
    next_poll_at = models.DateTimeField(null=True, blank=True, db_index=True)
    poll_attempts = models.PositiveIntegerField(default=0)
    lease_owner = models.CharField(max_length=80, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    deadline_at = models.DateTimeField(null=True, blank=True)
    webhook_token = models.CharField(max_length=64, blank=True, default="")
    webhook_received_at = models.DateTimeField(null=True, blank=True)
    # Set in its own commit just before the submission POST: after a crash, a job still "submitting"
    # without it certainly never reached the provider and can go back to the queue.
    submit_sent_at = models.DateTimeField(null=True, blank=True)
    # Set when a deadline failed the job: such a job is still checked now and then, and revives if it finishes.
    timed_out_at = models.DateTimeField(null=True, blank=True)
    # The current run of failed attempts that failed the same way (ProviderError.kind); reset by any success.
    failure_streak = models.PositiveSmallIntegerField(default=0)
    failure_kind = models.CharField(max_length=40, blank=True)

    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    # When the job last joined the queue (created, or sent again by a person): a job not sent within
    # STUDIO_QUEUE_HOURS of it fails.
    queued_at = models.DateTimeField(null=True, blank=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = ProjectScopedQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["state", "next_poll_at"], name="job_due_for_poll")]

    def __str__(self):
        return f"Job {self.pk} {self.provider}/{self.model} ({self.state})"

    @property
    def is_finished(self):
        return self.state in TERMINAL_STATES

    # State transitions. Each is a compare-and-set on the state column (transition + event in one
    # transaction): when two workers race, exactly one update matches and the other backs off.
    #
    #   queued ──claim_for_submit──> submitting ──mark_submitted──> submitted ──mark_running──> running
    #   (running stays running, one write a poll: poll_continues)
    #     ^  ^                         │    │                          │   ^                      │
    #     │  └──requeue_after──────────┘    └─mark_submit_unknown──> submit_unknown               │
    #     │     (nothing left this machine,     (the POST left; its      │  (settled: a callback    │
    #     │      or the provider said 429)       answer did not come)    │   named the task)        │
    #     └──────────resubmit (a person)─────────────────────────────────┘                          │
    #   submitted / running ──mark_downloading──> downloading ──mark_succeeded──> succeeded <───────┘
    #   any unfinished ──mark_failed──> failed      submitted / running / downloading ──mark_timed_out──> failed
    #   (timed out: still checked for a day, and mark_downloading revives it if the provider finishes after all)
    #   queued / submitted / running ──mark_cancelled──> cancelled
    #
    # Scheduling fields (next_poll_at, failure_streak) change with schedule_next() and the transitions;
    # the lease fields belong to studio.jobs.leases.

    def transition(self, to_state, *, allowed_from, message="", payload=None, **fields):
        """Move to `to_state` if the job is still in one of `allowed_from`; returns whether it did."""
        _bound_outside_text(fields)
        with transaction.atomic():
            updated = Job.objects.filter(pk=self.pk, state__in=list(allowed_from)).update(state=to_state, **fields)
            if updated != 1:
                return False
            JobEvent.objects.create(job=self, from_state=self.state, to_state=to_state, message=public_text(message),
                                    payload=_stored(payload))
        self.state = to_state
        for name, value in fields.items():
            setattr(self, name, value)
        return True

    def record(self, message, payload=None):
        """A line of history without a state change (a provider answer, a retry, a note)."""
        JobEvent.objects.create(job=self, from_state=self.state, to_state=self.state, message=public_text(message),
                                payload=_stored(payload))

    def schedule_next(self, seconds, *, failure_kind="", failure_streak=0):
        """When to take the next step. A step that went well counts as a poll (the pace stretches for long
        jobs) and clears the failure streak; a failed one only sets the streak."""
        when = timezone.now() + timedelta(seconds=seconds)
        polls = self.poll_attempts + (0 if failure_streak else 1)
        fields = {"next_poll_at": when, "poll_attempts": polls, "failure_kind": failure_kind,
                  "failure_streak": failure_streak}
        Job.objects.filter(pk=self.pk).update(**fields)
        for name, value in fields.items():
            setattr(self, name, value)

    def claim_for_submit(self):
        """Take the queued job for submission (the caller holds its lease)."""
        return self.transition(JobState.SUBMITTING, allowed_from=[JobState.QUEUED], message="Sending to the provider")

    def mark_sent(self, *, lease_owner):
        """Committed at the last moment before the submission's first byte leaves; only while we hold the lease."""
        now = timezone.now()
        ours = Job.objects.filter(pk=self.pk, state=JobState.SUBMITTING, lease_owner=lease_owner)
        sent = ours.update(submit_sent_at=now)
        if sent:
            self.submit_sent_at = now
        return bool(sent)

    def mark_submitted(self, *, task_id, raw_status, data, deadline_at, next_poll_at, payload=None):
        return self.transition(
            JobState.SUBMITTED, allowed_from=[JobState.SUBMITTING],
            message=f"Accepted by the provider as {task_id}", payload=payload,
            provider_task_id=task_id, provider_status=raw_status, provider_data=data,
            submitted_at=timezone.now(), error_message="", deadline_at=deadline_at, next_poll_at=next_poll_at,
            failure_streak=0, failure_kind="",
        )

    def mark_submit_unknown(self, message, payload=None):
        return self.transition(
            JobState.SUBMIT_UNKNOWN, allowed_from=[JobState.SUBMITTING], message=message, payload=payload,
            error_message=message, next_poll_at=None,
        )

    def mark_settled(self, *, task_id, message, deadline_at, payload=None):
        """An ambiguous submission turned out to have been accepted: follow the task from here."""
        return self.transition(
            JobState.SUBMITTED, allowed_from=[JobState.SUBMIT_UNKNOWN], message=message, payload=payload,
            provider_task_id=task_id, error_message="", submitted_at=timezone.now(), deadline_at=deadline_at,
            next_poll_at=timezone.now(), failure_streak=0, failure_kind="",
        )

    def requeue_after(self, message, when, payload=None, *, failure_kind="", failure_streak=0):
        """A submission that certainly did not reach the provider (or that it refused for now) goes back to the
        queue."""
        return self.transition(
            JobState.QUEUED, allowed_from=[JobState.SUBMITTING], message=message, payload=payload,
            next_poll_at=when, error_message=message, submit_sent_at=None, failure_kind=failure_kind,
            failure_streak=failure_streak,
        )

    def mark_running(self, *, raw_status, progress, payload=None):
        fields = {"provider_status": short_text(raw_status, 60), "progress": progress}
        if self.started_at is None:
            fields["started_at"] = timezone.now()
        return self.transition(
            JobState.RUNNING, allowed_from=[JobState.SUBMITTED], message=f"Running ({raw_status})",
            payload=payload, **fields,
        )

    def poll_continues(self, *, raw_status, progress, seconds, lease):
        """The common poll: still running at the provider. Its news, its next poll and letting go of the lease
        are one write."""
        when = timezone.now() + timedelta(seconds=seconds)
        fields = {"provider_status": short_text(raw_status, 60), "progress": progress, "next_poll_at": when,
                  "poll_attempts": self.poll_attempts + 1, "failure_kind": "", "failure_streak": 0,
                  "lease_owner": "", "lease_expires_at": None}
        if self.started_at is None:
            fields["started_at"] = timezone.now()
        token = lease.hand_back()
        if not Job.objects.filter(pk=self.pk, state=JobState.RUNNING, lease_owner=token).update(**fields):
            lease.released = False  # someone else moved the job on: the step's own release tidies up
            return False
        for name, value in fields.items():
            setattr(self, name, value)
        return True

    def mark_downloading(self, *, raw_status, payload=None):
        # A job failed only by our deadline may still finish upstream: it revives straight into downloading.
        revivable = [JobState.FAILED] if self.timed_out_at else []
        return self.transition(
            JobState.DOWNLOADING, allowed_from=[JobState.SUBMITTED, JobState.RUNNING, *revivable],
            message="Finished at the provider; downloading the video", payload=payload,
            provider_status=raw_status, progress=100, error_message="",
        )

    def mark_succeeded(self):
        return self.transition(
            JobState.SUCCEEDED, allowed_from=[JobState.DOWNLOADING], message="Video stored",
            finished_at=timezone.now(), next_poll_at=None, error_message="", timed_out_at=None,
            failure_streak=0, failure_kind="",
        )

    def mark_timed_out(self, message, *, revisit_at, payload=None):
        """Failed by us (deadline, or the same failure again and again), not by the provider: keep looking now
        and then in case it finishes."""
        return self.transition(
            JobState.FAILED, allowed_from=[JobState.SUBMITTED, JobState.RUNNING, JobState.DOWNLOADING],
            message=message, payload=payload, finished_at=timezone.now(), timed_out_at=timezone.now(),
            next_poll_at=revisit_at, error_message=message, failure_streak=0, failure_kind="",
        )

    def mark_failed(self, message, *, payload=None, raw_status=""):
        fields = {"finished_at": timezone.now(), "next_poll_at": None, "error_message": message}
        if raw_status:
            fields["provider_status"] = raw_status
        return self.transition(
            JobState.FAILED,
            allowed_from=[JobState.QUEUED, JobState.SUBMITTING, JobState.SUBMIT_UNKNOWN, JobState.SUBMITTED,
                          JobState.RUNNING, JobState.DOWNLOADING, *([JobState.FAILED] if self.timed_out_at else [])],
            message=message, payload=payload, **fields,
        )

    def resubmit(self, message):
        """A person chose to send an ambiguous job again, knowing it may be charged twice."""
        return self.transition(
            JobState.QUEUED, allowed_from=[JobState.SUBMIT_UNKNOWN], message=message,
            submit_sent_at=None, error_message="", next_poll_at=timezone.now(), queued_at=timezone.now(),
            failure_streak=0, failure_kind="",
        )

    def mark_cancelled(self, message="Cancelled"):
        return self.transition(
            JobState.CANCELLED, allowed_from=[JobState.QUEUED, JobState.SUBMITTED, JobState.RUNNING],
            message=message, finished_at=timezone.now(), next_poll_at=None,
        )


def _bound_outside_text(fields):
    """Text that came from a provider, fit for its column and for people: redacted and bounded."""
    if "error_message" in fields:
        fields["error_message"] = public_text(fields["error_message"])
    if "provider_status" in fields:
        fields["provider_status"] = short_text(fields["provider_status"], 60)


def _stored(payload):
    """A payload as kept in a job's history: redacted and at most a few KB."""
    return None if payload is None else bounded_payload(payload, limit=PAYLOAD_LIMIT)


class JobImage(models.Model):
    class Role(models.TextChoices):
        FIRST_FRAME = "first_frame", "First frame"
        LAST_FRAME = "last_frame", "Last frame"
        REFERENCE = "reference", "Reference"

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="images")
    image = models.ForeignKey(ImageAsset, on_delete=models.PROTECT, related_name="job_uses")
    role = models.CharField(max_length=12, choices=Role.choices)
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["job", "role", "position"]


class JobEvent(models.Model):
    """One line of a job's history: a state change or a provider's raw answer (keys redacted)."""

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="events")
    created_at = models.DateTimeField(auto_now_add=True)
    from_state = models.CharField(max_length=20, blank=True)
    to_state = models.CharField(max_length=20, blank=True)
    message = models.TextField(blank=True)
    payload = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["job", "created_at", "pk"]


def result_upload_path(instance, filename):
    return f"projects/{instance.job.project_id}/videos/{uuid.uuid4().hex}.mp4"


def poster_upload_path(instance, filename):
    return f"projects/{instance.job.project_id}/posters/{uuid.uuid4().hex}.jpg"


class ReviewState(models.TextChoices):
    TO_REVIEW = "to_review", "To review"
    CHANGES_WANTED = "changes_wanted", "Changes wanted"
    APPROVED = "approved", "Approved"


class ResultQuerySet(models.QuerySet):
    def for_user(self, user):
        return self.filter(job__project__in=Project.objects.for_user(user))


class Result(models.Model):
    """A stored video: the studio's own copy, probed, with a poster and a thumbnail strip."""

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="results")
    index = models.PositiveSmallIntegerField(default=0)
    file = models.FileField(upload_to=result_upload_path)
    sha256 = models.CharField(max_length=64)
    bytes = models.PositiveBigIntegerField()
    duration = models.FloatField(null=True)
    width = models.PositiveIntegerField(null=True)
    height = models.PositiveIntegerField(null=True)
    fps = models.FloatField(null=True)
    video_codec = models.CharField(max_length=30, blank=True)
    has_audio = models.BooleanField(null=True)
    poster = models.ImageField(upload_to=poster_upload_path, blank=True)
    thumbnail_strip = models.ImageField(upload_to=poster_upload_path, blank=True)
    thumbnail_count = models.PositiveSmallIntegerField(default=0)
    # The probe, poster and strip are made by a task after the file is stored; until then these are empty.
    processed_at = models.DateTimeField(null=True, blank=True)
    processing_error = models.TextField(blank=True)
    mismatches = models.JSONField(default=list, blank=True, help_text="Where the delivered file differs from the request.")
    review_state = models.CharField(max_length=20, choices=ReviewState.choices, default=ReviewState.TO_REVIEW)
    review_state_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    review_state_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ResultQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "index"]
        constraints = [models.UniqueConstraint(fields=["job", "index"], name="one_result_per_job_index")]

    def __str__(self):
        return f"Result {self.pk} of job {self.job_id}"


class ClusterHeartbeat(models.Model):
    """A running `manage.py qcluster`, one row per process, written every STUDIO_HEARTBEAT_SECONDS by the process
    itself (studio.jobs.heartbeat) and removed when it stops. A row whose last beat is older than
    STUDIO_CLUSTER_STALE_SECONDS is a cluster that died without stopping (kill -9, a crash, its machine lost)."""

    host = models.CharField(max_length=255)
    pid = models.PositiveIntegerField()
    started_at = models.DateTimeField()
    beat_at = models.DateTimeField()
    runs_poller = models.BooleanField(default=True)
    # When the poller last went round its loop (it goes round several times a second, busy or idle).
    poller_loop_at = models.DateTimeField(null=True, blank=True)
    sentinel_alive = models.BooleanField(default=True, help_text="Whether django-q2's sentinel process was alive.")

    class Meta:
        ordering = ["host", "pid"]
        constraints = [models.UniqueConstraint(fields=["host", "pid"], name="one_heartbeat_per_process")]
        verbose_name = "cluster"

    def __str__(self):
        return f"{self.host}:{self.pid}"

    def status(self, *, now, stale_seconds):
        """alive; dead (no beat for stale_seconds); poller stuck (its loop has not turned for as long); or
        sentinel dead (django-q2's task processes are gone, and this cluster is about to stop)."""
        stale = timedelta(seconds=stale_seconds)
        if now - self.beat_at > stale:
            return "dead"
        if not self.sentinel_alive:
            return "sentinel dead"
        if self.runs_poller and (self.poller_loop_at or self.started_at) < self.beat_at - stale:
            return "poller stuck"
        return "alive"
