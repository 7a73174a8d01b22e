"""A submission is marked "sent" at the last moment before its first byte leaves, so only a job whose request
may really have reached the provider can end "Outcome unknown"; and a qingbo callback for such a job lets
the studio look the task up and settle it on its own."""

import socket

from django.utils import timezone

from studio.jobs import services
from studio.jobs.models import Job, JobEvent, JobState
from studio.jobs.poller import step_once
from studio.providers.client import ProviderClient
from tests.conftest import wait_for
from tests.helpers import poller_running

PROMPT = "Fog rolling over a harbour at dawn"


def make_job(project, account, model="veo-3.0", **params):
    return services.job_create(project=project, user=None, account=account, model=model,
                               params={"prompt": PROMPT, "duration": 4, **params})


def closed_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_submission_that_never_connects_goes_back_to_the_queue_unsent(sandbox_accounts, demo_project, settings):
    account = sandbox_accounts["qingbo"]
    account.base_url = f"http://127.0.0.1:{closed_port()}/qingbo"
    account.save()
    job = make_job(demo_project, account)
    step_once(job)
    job.refresh_from_db()
    assert job.state == JobState.QUEUED
    assert job.submit_sent_at is None
    assert job.failure_streak == 1 and job.failure_kind == "connect"
    assert "Could not connect" in job.error_message


def test_the_sent_mark_is_committed_only_once_the_request_is_built_and_connected(sandbox_accounts, demo_project,
                                                                                sandbox, monkeypatch):
    seen = {}
    real = ProviderClient._exchange

    def watching(self, call, request, hooks):
        seen["mark_before_exchange"] = Job.objects.get(pk=job.pk).submit_sent_at
        return real(self, call, request, hooks)

    monkeypatch.setattr(ProviderClient, "_exchange", watching)
    job = make_job(demo_project, sandbox_accounts["modelmax"], model="veo-3-fast")
    step_once(job)
    job.refresh_from_db()
    assert seen["mark_before_exchange"] is None, "not marked while the request was still being built"
    assert job.state == JobState.SUBMITTED
    received = sandbox.submits("modelmax")[0]["at"]
    assert job.submit_sent_at.timestamp() <= received


def test_a_callback_settles_a_job_whose_submission_was_ambiguous(sandbox_accounts, demo_project, sandbox, settings):
    settings.STUDIO_PROVIDER_SUBMIT_SECONDS = 1.0
    sandbox.set_job_seconds(2.0)
    sandbox.fault("hang_after_accept", provider="qingbo", on="submit", seconds=3)
    job = make_job(demo_project, sandbox_accounts["qingbo"])
    step_once(job)
    job.refresh_from_db()
    assert job.state == JobState.SUBMIT_UNKNOWN
    assert job.provider_task_id == ""
    task_id = next(iter(sandbox.state.tasks))
    with poller_running(threads=2):
        # The sandbox calls back when its task ends; the studio looks the task up and follows it.
        wait_for(lambda: Job.objects.get(pk=job.pk).state == JobState.SUCCEEDED, timeout=30)
    job.refresh_from_db()
    assert job.provider_task_id == task_id
    assert len(sandbox.submits("qingbo")) == 1
    settled = JobEvent.objects.get(job=job, from_state=JobState.SUBMIT_UNKNOWN, to_state=JobState.SUBMITTED)
    assert "called back" in settled.message and task_id in settled.message
    assert job.results.count() == 1


def test_a_callback_naming_a_task_the_provider_does_not_know_leaves_the_job_unknown(sandbox_accounts, demo_project,
                                                                                   sandbox, client):
    job = make_job(demo_project, sandbox_accounts["qingbo"])
    Job.objects.filter(pk=job.pk).update(state=JobState.SUBMIT_UNKNOWN, submit_sent_at=timezone.now())
    response = client.post(f"/hooks/jobs/{job.webhook_token}/", data='{"task_id": "task-wave-forged"}',
                           content_type="application/json")
    assert response.status_code == 200
    step_once(job)
    job.refresh_from_db()
    assert job.state == JobState.SUBMIT_UNKNOWN
    assert job.next_poll_at is None
    assert any("Could not confirm" in m for m in JobEvent.objects.filter(job=job).values_list("message", flat=True))


def test_a_callback_that_comes_while_the_answer_is_awaited_settles_the_job_once_it_turns_ambiguous(
        sandbox_accounts, demo_project, sandbox, settings):
    settings.STUDIO_PROVIDER_SUBMIT_SECONDS = 2.5
    sandbox.set_job_seconds(0.5)  # the task ends, and calls back, long before its submission's answer comes
    sandbox.fault("hang_after_accept", provider="qingbo", on="submit", seconds=4)
    job = make_job(demo_project, sandbox_accounts["qingbo"])
    with poller_running(threads=2):
        wait_for(lambda: Job.objects.get(pk=job.pk).state == JobState.SUCCEEDED, timeout=30)
    job.refresh_from_db()
    assert job.provider_task_id == next(iter(sandbox.state.tasks))
    assert JobEvent.objects.filter(job=job, from_state=JobState.SUBMITTING, to_state=JobState.SUBMIT_UNKNOWN).exists()
    assert JobEvent.objects.filter(job=job, from_state=JobState.SUBMIT_UNKNOWN, to_state=JobState.SUBMITTED).exists()
    assert len(sandbox.submits("qingbo")) == 1
