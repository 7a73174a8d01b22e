from django.conf import settings
from django.contrib import admin
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format

from studio.jobs.heartbeat import ago, overdue_jobs
from studio.jobs.models import Batch, ClusterHeartbeat, Job, JobEvent, Result


class JobEventInline(admin.TabularInline):
    model = JobEvent
    extra = 0
    can_delete = False
    readonly_fields = ["created_at", "from_state", "to_state", "message", "payload"]


class OverdueFilter(admin.SimpleListFilter):
    title = "due time"
    parameter_name = "overdue"

    def lookups(self, request, model_admin):
        return [("yes", "Overdue: held by no worker")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(pk__in=overdue_jobs().values("pk"))
        return queryset


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = ["pk", "project", "provider", "model", "state", "provider_task_id", "created_at"]
    list_filter = ["state", "provider", "project", OverdueFilter]
    search_fields = ["provider_task_id", "model"]
    readonly_fields = ["provider_task_id", "provider_status", "provider_data", "lease_owner", "lease_expires_at"]
    inlines = [JobEventInline]


@admin.register(Batch)
class BatchAdmin(admin.ModelAdmin):
    list_display = ["name", "project", "created_at"]


@admin.register(Result)
class ResultAdmin(admin.ModelAdmin):
    list_display = ["pk", "job", "duration", "width", "height", "has_audio", "review_state"]
    readonly_fields = ["sha256", "bytes", "duration", "width", "height", "fps", "video_codec", "has_audio"]


@admin.register(ClusterHeartbeat)
class ClusterHeartbeatAdmin(admin.ModelAdmin):
    """The running clusters, as their heartbeats tell (the page also counts the overdue jobs). Read-only: each
    cluster writes its own row; a dead one's row can be deleted once looked into."""

    STATES = {"alive": "Alive", "dead": "Dead", "poller stuck": "Poller stuck", "sentinel dead": "Task workers gone"}

    list_display = ["cluster", "state", "started", "last_beat", "poller"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description="cluster", ordering="host")
    def cluster(self, row):
        return f"{row.host}, process {row.pid}"

    @admin.display(description="state")
    def state(self, row):
        return self.STATES[row.status(now=timezone.now(), stale_seconds=settings.STUDIO_CLUSTER_STALE_SECONDS)]

    @admin.display(description="started", ordering="started_at")
    def started(self, row):
        return date_format(timezone.localtime(row.started_at), "DATETIME_FORMAT")

    @admin.display(description="last heartbeat", ordering="beat_at")
    def last_beat(self, row):
        return ago(row.beat_at, timezone.now())

    @admin.display(description="job poller")
    def poller(self, row):
        if not row.runs_poller:
            return "None in this cluster"
        if row.poller_loop_at is None:
            return "Starting"
        return f"Last loop {ago(row.poller_loop_at, timezone.now())}"

    def changelist_view(self, request, extra_context=None):
        extra = {"title": "Clusters", "overdue_count": overdue_jobs().count(), "overdue_seconds": settings.STUDIO_OVERDUE_SECONDS,
                 "stale_seconds": settings.STUDIO_CLUSTER_STALE_SECONDS,
                 "overdue_url": reverse("admin:jobs_job_changelist") + f"?{OverdueFilter.parameter_name}=yes"}
        return super().changelist_view(request, {**(extra_context or {}), **extra})
