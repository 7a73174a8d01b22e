"""Provider callbacks: qingbo POSTs a finished task to the job's callback URL, which only wakes the job for an
immediate poll. The body is never trusted, a replay does nothing, and an unknown token learns nothing.

The sandbox's qingbo POSTs the status object to `callback_url` once, when the task ends; the live server
fixture is the studio it reaches.
"""

import json
import re
from datetime import timedelta

from django.test import Client
from django.urls import reverse
from django.utils import timezone

from studio.jobs import services
from studio.jobs.models import Job, JobState
from studio.jobs.poller import step_once
from studio.providers.client import NO_HOOKS, ProviderClient
from tests.conftest import wait_for
from tests.helpers import poller_running

PROMPT = "A lighthouse at dusk, waves rolling in"
def make_job(project, account):
    return services.job_create(project=project, user=None, account=account, model="veo-3.0",
                               params={"prompt": PROMPT, "duration": 4})


def hook_path(job):
    return reverse("job_webhook", args=[job.webhook_token])


def callback(job_or_token, body=None, *, client=None):
    """POST a callback as a provider would: no session, no CSRF token."""
    token = job_or_token if isinstance(job_or_token, str) else job_or_token.webhook_token
    client = client or Client(raise_request_exception=False)
    return client.post(reverse("job_webhook", args=[token]), data=json.dumps(body or {"status": "completed"}),
                       content_type="application/json")


def set_running(job, *, next_poll_in=60, **fields):
    """A job in flight at the provider, not due for a poll for a while."""
    Job.objects.filter(pk=job.pk).update(state=JobState.RUNNING, provider_task_id="task-wave1", **fields,
                                         next_poll_at=timezone.now() + timedelta(seconds=next_poll_in))
    return Job.objects.get(pk=job.pk)


def wake_fields(job):
    return Job.objects.filter(pk=job.pk).values_list("state", "webhook_received_at", "next_poll_at").get()


def test_a_qingbo_submission_carries_its_own_unguessable_callback_url(sandbox_accounts, demo_project, sandbox,
                                                                      settings):
    sandbox.set_job_seconds(30)  # no callback arrives while the test runs
    jobs = [make_job(demo_project, sandbox_accounts["qingbo"]) for _ in range(3)]
    for job in jobs:
        step_once(job)
    sent = [request["json"]["callback_url"] for request in sandbox.submits("qingbo")]
    assert sent == [f"{settings.STUDIO_PUBLIC_URL}/hooks/jobs/{job.webhook_token}/" for job in jobs]
    tokens = [job.webhook_token for job in jobs]
    assert all(len(token) >= 32 and re.fullmatch(r"[A-Za-z0-9_-]+", token) for token in tokens)
    assert len(set(tokens)) == len(tokens)


def test_a_callback_shows_the_finished_job_within_a_second_or_two(sandbox_accounts, demo_project, sandbox):
    account = sandbox_accounts["qingbo"]
    account.poll_seconds = 30  # regular polling would not look again while the test runs
    account.save()
    job = make_job(demo_project, account)
    Job.objects.filter(pk=job.pk).update(next_poll_at=timezone.now())
    with poller_running(threads=4, owner="webhook-test:1"):
        wait_for(lambda: sandbox.state.tasks, timeout=5)
        task = next(iter(sandbox.state.tasks.values()))
        wait_for(lambda: "completed_at" in task.extra, timeout=10)
        wait_for(lambda: Job.objects.get(pk=job.pk).state == JobState.SUCCEEDED, timeout=4)
    job.refresh_from_db()
    assert job.webhook_received_at is not None
    assert job.finished_at.timestamp() - task.extra["completed_at"] < 3


def test_an_unknown_token_is_404_and_changes_nothing(sandbox_accounts, demo_project):
    job = set_running(make_job(demo_project, sandbox_accounts["qingbo"]))
    before = wake_fields(job)
    assert callback(job.webhook_token[:-1] + "x").status_code == 404
    assert callback("not-a-token").status_code == 404
    assert wake_fields(job) == before


def test_a_callback_must_be_a_post(sandbox_accounts, demo_project):
    job = set_running(make_job(demo_project, sandbox_accounts["qingbo"]))
    before = wake_fields(job)
    assert Client().get(hook_path(job)).status_code == 405
    assert wake_fields(job) == before


def test_a_replayed_callback_does_nothing(sandbox_accounts, demo_project):
    job = set_running(make_job(demo_project, sandbox_accounts["qingbo"]))
    assert callback(job).status_code == 200
    state, received, woken_at = wake_fields(job)
    assert received is not None
    assert abs((woken_at - timezone.now()).total_seconds()) < 2
    # The poll it asked for has happened and set the next one.
    later = timezone.now() + timedelta(seconds=30)
    Job.objects.filter(pk=job.pk).update(next_poll_at=later)
    assert callback(job).status_code == 200
    assert wake_fields(job) == (state, received, later)


def test_a_callback_replayed_much_later_does_nothing(sandbox_accounts, demo_project):
    first = timezone.now() - timedelta(hours=1)
    job = set_running(make_job(demo_project, sandbox_accounts["qingbo"]), next_poll_in=30,
                      webhook_received_at=first)
    before = wake_fields(job)
    assert callback(job).status_code == 200
    assert wake_fields(job) == before


def test_a_callback_for_a_finished_job_does_nothing(sandbox_accounts, demo_project):
    job = make_job(demo_project, sandbox_accounts["qingbo"])
    Job.objects.filter(pk=job.pk).update(state=JobState.SUCCEEDED, next_poll_at=None,
                                         finished_at=timezone.now())
    response = callback(job)
    assert response.status_code == 200
    assert wake_fields(job) == (JobState.SUCCEEDED, None, None)


def test_the_callback_body_is_never_trusted(sandbox_accounts, demo_project, sandbox):
    sandbox.set_job_seconds(30)  # still running at the provider for the whole test
    job = make_job(demo_project, sandbox_accounts["qingbo"])
    step_once(job)
    job.refresh_from_db()
    video = f"{sandbox.url}/_files/{job.provider_task_id}/1/0.mp4"
    forged = {"task_id": job.provider_task_id, "status": "completed", "progress": 100,
              "result": {"images": [], "videos": [{"url": video}]}}
    callback(job, forged)
    assert Job.objects.get(pk=job.pk).state == JobState.SUBMITTED
    # Only a poll decides, and the provider says it is still going.
    step_once(job)
    job.refresh_from_db()
    assert job.state == JobState.RUNNING
    assert job.results.count() == 0
    assert "video_urls" not in job.provider_data


def test_a_callback_during_submission_is_remembered_without_moving_the_poll(sandbox_accounts, demo_project):
    job = make_job(demo_project, sandbox_accounts["qingbo"])
    assert job.claim_for_submit()
    _, _, planned = wake_fields(job)
    assert callback(job).status_code == 200
    state, received, next_poll_at = wake_fields(job)
    assert state == JobState.SUBMITTING
    assert received is not None
    assert next_poll_at == planned


def early_callback_client(monkeypatch, job):
    """The provider calls back before its answer to the submission reaches us: no task id is stored yet."""
    real_submit = ProviderClient.submit

    def submit(self, request, hooks=NO_HOOKS):
        answer = real_submit(self, request, hooks)
        assert callback(job).status_code == 200
        return answer

    monkeypatch.setattr(ProviderClient, "submit", submit)


def test_a_callback_before_the_task_id_is_stored_makes_the_first_poll_immediate(sandbox_accounts,
                                                                              demo_project, sandbox,
                                                                              monkeypatch):
    sandbox.set_job_seconds(30)
    account = sandbox_accounts["qingbo"]
    account.poll_seconds = 30  # the first poll would otherwise wait 30 s
    account.save()
    job = make_job(demo_project, account)
    early_callback_client(monkeypatch, job)
    step_once(job)
    state, received, next_poll_at = wake_fields(job)
    assert state == JobState.SUBMITTED
    assert received is not None
    assert abs((next_poll_at - timezone.now()).total_seconds()) < 2


def test_a_callback_right_after_the_task_id_is_stored_is_not_lost(sandbox_accounts, demo_project, sandbox,
                                                                  monkeypatch):
    sandbox.set_job_seconds(30)
    account = sandbox_accounts["qingbo"]
    account.poll_seconds = 30
    account.save()
    job = make_job(demo_project, account)
    real_mark_submitted = Job.mark_submitted

    def callback_right_after_the_task_id_is_stored(self, **fields):
        moved = real_mark_submitted(self, **fields)
        callback(job)
        return moved

    monkeypatch.setattr(Job, "mark_submitted", callback_right_after_the_task_id_is_stored)
    step_once(job)
    state, received, next_poll_at = wake_fields(job)
    assert state == JobState.SUBMITTED
    assert received is not None
    assert abs((next_poll_at - timezone.now()).total_seconds()) < 2


def test_a_callback_needs_neither_a_csrf_token_nor_a_login(sandbox_accounts, demo_project):
    job = make_job(demo_project, sandbox_accounts["qingbo"])
    Job.objects.filter(pk=job.pk).update(state=JobState.SUCCEEDED, next_poll_at=None)
    strict = Client(enforce_csrf_checks=True, raise_request_exception=False)
    response = callback(job, client=strict)
    assert response.status_code == 200, "refused for lack of a CSRF token or a login"
    assert response.content == b"already finished"
    assert callback("unknown-token", client=strict).status_code == 404
