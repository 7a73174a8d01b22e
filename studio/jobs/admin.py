from django.contrib import admin

from studio.jobs.models import Batch, Job, JobEvent, Result


class JobEventInline(admin.TabularInline):
    model = JobEvent
    extra = 0
    can_delete = False
    readonly_fields = ["created_at", "from_state", "to_state", "message", "payload"]


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = ["pk", "project", "provider", "model", "state", "provider_task_id", "created_at"]
    list_filter = ["state", "provider", "project"]
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
