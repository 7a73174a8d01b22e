"""What happens to a job when providers misbehave: every outcome the studio promises, through the real services."""

import io
import json
import time

import pytest
from django.core.management import call_command
from django.db.models import F
from django.utils import timezone

from studio.jobs import services
from studio.jobs.models import Job, JobEvent, JobState
from studio.jobs.poller import drive_job, step_once
from studio.providers.models import ProviderAccount
from tests.backends import queued_tasks
from tests.conftest import sandbox_key, wait_for
from tests.helpers import poller_running

PROMPT = "A lighthouse at dusk, waves rolling in"


def make_job(project, account, model, **params):
    return services.job_create(project=project, user=None, account=account, model=model,
                               params={"prompt": PROMPT, **params})


def run(job, timeout=30):
    return drive_job(job, timeout=timeout)


def events(job):
    return list(JobEvent.objects.filter(job=job).values_list("message", flat=True))


def generate(*args):
    out = io.StringIO()
    with pytest.raises(SystemExit) as exit_info:
        call_command("generate", *args, stdout=out)
    return exit_info.value.code, out.getvalue()


def test_a_job_runs_to_success_and_keeps_its_history(sandbox_accounts, demo_project, sandbox):
    job = run(make_job(demo_project, sandbox_accounts["qingbo"], "veo-3.1", duration=4))
    assert job.state == JobState.SUCCEEDED
    assert job.results.count() == 1
    transitions = list(job.events.exclude(from_state=F("to_state")).values_list("to_state", flat=True))
    assert transitions == ["submitting", "submitted", "running", "downloading", "succeeded"]
    assert len(sandbox.submits("qingbo")) == 1


def test_a_read_timeout_after_sending_is_ambiguous_and_never_resent(sandbox_accounts, demo_project, sandbox, settings):
    settings.STUDIO_PROVIDER_READ_TIMEOUT = 0.5
    sandbox.fault("hang_after_accept", provider="apimp", on="submit", seconds=2)
    job = run(make_job(demo_project, sandbox_accounts["apimp"], "veo-3.1-fast-generate-preview", duration=4))
    assert job.state == JobState.SUBMIT_UNKNOWN
    assert "may have accepted the job" in job.error_message
    job = run(job)
    assert job.state == JobState.SUBMIT_UNKNOWN
    assert len(sandbox.submits("apimp")) == 1
    assert len(sandbox.state.tasks) == 1, "the provider did create the job: resending would pay twice"


def test_a_5xx_answer_to_a_submit_is_ambiguous(sandbox_accounts, demo_project, sandbox):
    sandbox.fault("server_error", provider="uniall", on="submit", status=502, message="upstream exploded")
    job = run(make_job(demo_project, sandbox_accounts["uniall"], "viduq3t-540p", duration=2))
    assert job.state == JobState.SUBMIT_UNKNOWN
    assert "upstream exploded" in job.error_message


def test_a_rate_limited_submit_waits_for_retry_after_then_succeeds(sandbox_accounts, demo_project, sandbox):
    sandbox.fault("rate_limit", provider="qingbo", on="submit", retry_after=1)
    job = make_job(demo_project, sandbox_accounts["qingbo"], "veo-3.0", duration=4)
    step_once(job)
    job.refresh_from_db()
    assert job.state == JobState.QUEUED
    assert 0.5 < (job.next_poll_at - timezone.now()).total_seconds() <= 1.1
    assert any(message.startswith("Not sent: Rate limited") for message in events(job))
    job = run(job)
    assert job.state == JobState.SUCCEEDED
    assert len(sandbox.submits("qingbo")) == 2
    assert len(sandbox.state.tasks) == 1


@pytest.mark.parametrize("key_suffix,expected", [("-empty", "Insufficient balance."), (None, "Invalid API key.")])
def test_refusals_fail_the_job_with_the_providers_words(sandbox_accounts, demo_project, sandbox, key_suffix,
                                                         expected):
    account = sandbox_accounts["modelmax"]
    account.set_api_key("sk-unknown-key-1234" if key_suffix is None else sandbox_key("modelmax") + key_suffix)
    account.save()
    job = run(make_job(demo_project, ProviderAccount.objects.get(pk=account.pk), "veo-3-fast", duration=4))
    assert job.state == JobState.FAILED
    assert job.error_message == expected
    assert len(sandbox.submits("modelmax")) == 1


def test_a_job_that_fails_upstream_shows_the_providers_message(sandbox_accounts, demo_project, sandbox):
    sandbox.fault("fail_job", provider="veoquery", message="Prompt rejected by the safety filter")
    job = run(make_job(demo_project, sandbox_accounts["veoquery"], "veo3-fast"))
    assert job.state == JobState.FAILED
    assert "Prompt rejected by the safety filter" in job.error_message
    assert job.results.count() == 0


def test_modelmax_result_is_fetched_once_even_when_the_download_must_be_retried(sandbox_accounts, demo_project,
                                                                                sandbox):
    sandbox.fault("server_error", provider="modelmax", on="download", status=503, times=2)
    job = run(make_job(demo_project, sandbox_accounts["modelmax"], "veo-3-fast", duration=4, samples=2), timeout=60)
    assert job.state == JobState.SUCCEEDED
    assert job.results.count() == 2
    task = next(iter(sandbox.state.tasks.values()))
    assert task.result_fetches == 1
    assert sum(message.startswith("The download failed") for message in events(job)) >= 1


def test_an_expired_link_is_refreshed_by_asking_for_the_status_again(sandbox_accounts, demo_project, sandbox):
    # UniAll: qingbo's callback would carry (and so use up) the dead link before the studio saw it.
    sandbox.fault("expire_link", provider="uniall", status=403)
    job = run(make_job(demo_project, sandbox_accounts["uniall"], "viduq3t-540p", duration=2))
    assert job.state == JobState.SUCCEEDED
    assert any("expired" in message and "fresh link" in message for message in events(job)), events(job)
    assert job.results.count() == 1


def test_transient_status_errors_keep_the_job_alive(sandbox_accounts, demo_project, sandbox):
    sandbox.fault("server_error", provider="uniall", on="status", times=2)
    sandbox.fault("malformed_json", provider="uniall", on="status", times=1)
    job = run(make_job(demo_project, sandbox_accounts["uniall"], "viduq3t-540p", duration=2), timeout=60)
    assert job.state == JobState.SUCCEEDED
    assert sum(message.startswith("The status check failed") for message in events(job)) == 3


def test_a_job_is_claimed_for_submission_only_once(sandbox_accounts, demo_project):
    job = make_job(demo_project, sandbox_accounts["qingbo"], "veo-3.0", duration=4)
    twin = Job.objects.get(pk=job.pk)
    assert job.claim_for_submit() is True
    assert twin.claim_for_submit() is False
    assert Job.objects.get(pk=job.pk).state == JobState.SUBMITTING


def test_the_api_key_never_reaches_the_job_history(sandbox_accounts, demo_project, sandbox):
    account = sandbox_accounts["apimp"]
    job = run(make_job(demo_project, account, "veo-3.0-fast-generate-001", duration=4))
    assert job.state == JobState.SUCCEEDED
    history = json.dumps(list(JobEvent.objects.filter(job=job).values("message", "payload")))
    assert account.api_key not in history
    assert "Bearer" not in history or "Bearer ***" in history


def test_generate_refuses_a_broken_rule_before_sending_anything(sandbox_accounts, demo_project, sandbox):
    code, output = generate("--account", "sandbox-qingbo", "--model", "veo-3.1", "--prompt", PROMPT,
                            "--set", "resolution=1080p", "--set", "duration=6", "--json")
    assert code == 2
    report = json.loads(output)
    assert report["state"] == "invalid"
    assert "1080p and 4k need an 8-second duration on Veo" in report["error"]
    assert sandbox.count() == 0
    assert Job.objects.count() == 0


@pytest.mark.parametrize("args,message", [
    (["--model", "veo-9"], "qingbo has no model “veo-9”"),
    (["--model", "veo-3.1", "--set", "colour=blue"], "has no parameter “colour”"),
    (["--model", "veo-3.1", "--set", "duration"], "--set takes KEY=VALUE"),
    (["--model", "veo-3.0", "--set", "resolution=4k"], "4k is only on Veo 3.1 and Veo 3.1 Fast"),
])
def test_generate_names_what_is_wrong_with_a_request(sandbox_accounts, demo_project, sandbox, args, message):
    code, output = generate("--account", "sandbox-qingbo", "--prompt", PROMPT, *args)
    assert code == 2
    assert message in output
    assert sandbox.count() == 0


def test_generate_exits_1_when_the_job_fails(sandbox_accounts, demo_project, sandbox):
    sandbox.fault("fail_job", provider="qingbo", message="No credits on the upstream project")
    code, output = generate("--account", "sandbox-qingbo", "--model", "veo-3.0", "--prompt", PROMPT, "--set",
                            "duration=4", "--wait", "--json")
    assert code == 1
    assert json.loads(output)["error"] == "No credits on the upstream project"


def test_generate_without_wait_leaves_the_job_due_for_the_poller_and_queues_no_task(sandbox_accounts, demo_project,
                                                                                   sandbox):
    code, output = generate("--account", "sandbox-qingbo", "--model", "veo-3.0", "--prompt", PROMPT, "--json")
    assert code == 0
    report = json.loads(output)
    assert report["state"] == "queued"
    assert sandbox.count() == 0
    assert Job.objects.get(pk=report["id"]).next_poll_at <= timezone.now()
    assert queued_tasks() == [], "only the poller sends jobs; nothing goes through the task queue"


def test_a_new_job_is_sent_within_the_pollers_idle_sleep(sandbox_accounts, demo_project, sandbox):
    with poller_running(threads=2):
        time.sleep(0.5)  # the poller is idle, sleeping between looks at the table
        created = time.monotonic()
        job = make_job(demo_project, sandbox_accounts["qingbo"], "veo-3.0", duration=4)
        wait_for(lambda: sandbox.submits("qingbo"), timeout=5)
        sent_after = time.monotonic() - created
    assert sent_after < 2.0, f"sent {sent_after:.2f} s after it was created (the idle sleep is a quarter second)"
    assert Job.objects.get(pk=job.pk).submit_sent_at is not None
