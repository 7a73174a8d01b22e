"""Background tasks: thin. They take ids, load rows and call a service; the state lives in the job row."""

from studio.jobs import services
from studio.jobs.models import Job


def submit_job(job_id):
    job = Job.objects.select_related("account").filter(pk=job_id).first()
    if job is not None:
        services.job_submit(job)


def poll_job(job_id):
    job = Job.objects.select_related("account").filter(pk=job_id).first()
    if job is not None:
        services.job_poll(job)
