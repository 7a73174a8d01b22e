"""django-q2 tasks: the CPU work on stored videos and the periodic sweeps. Thin: they take ids, call a
service, and are safe to run twice. None of them calls a provider (that is the poller's alone)."""

from django.utils import timezone

from studio.jobs import services
from studio.jobs.logcontext import result_context
from studio.jobs.media import sweep_abandoned_partials
from studio.jobs.models import Job

# The periodic work, created (or updated) when a cluster starts: (task, minutes between runs).
SCHEDULES = {
    "studio.jobs.tasks.process_pending_results": 2,
    "studio.jobs.tasks.sweep_partial_downloads": 10,
    "studio.jobs.tasks.clear_expired_leases": 5,
}
# A result stored this long ago without its probe and poster lost its task (a crash, the broker down).
PENDING_RESULT_SECONDS = 120


def process_result(result_id):
    with result_context(result_id):
        services.result_process(result_id=result_id)


def process_pending_results():
    return services.results_process_pending(older_than=PENDING_RESULT_SECONDS)


def sweep_partial_downloads():
    return sweep_abandoned_partials()


def clear_expired_leases():
    """Leases left by workers that died: already free to take, cleared so the admin shows no ghost owners."""
    return Job.objects.filter(lease_expires_at__lt=timezone.now()).update(lease_owner="", lease_expires_at=None)


def ensure_schedules():
    from django_q.models import Schedule

    for func, minutes in SCHEDULES.items():
        Schedule.objects.update_or_create(
            name=func.rsplit(".", 1)[1].replace("_", " ").capitalize(),
            defaults={"func": func, "schedule_type": Schedule.MINUTES, "minutes": minutes, "repeats": -1},
        )
