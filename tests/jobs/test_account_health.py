"""Account health and the circuit breaker: an account that keeps failing is paused, costs one probe per cooling
period, shows as paused where people choose models, and resumes by itself when a probe succeeds. And the
account's request budget counts every call, whoever made the job."""

import time

import pytest
from django.urls import reverse
from django.utils import timezone

from studio.jobs import services
from studio.jobs.models import Job, JobState
from studio.jobs.poller import step_once
from studio.providers.models import AccountHealth, RequestWindow
from tests.conftest import wait_for
from tests.helpers import poller_running

PROMPT = "A heron lifts off a misty lake"


@pytest.fixture
def breaker(settings, sandbox_accounts):
    settings.STUDIO_BREAKER_FAILURES = 3
    settings.STUDIO_BREAKER_COOLING_SECONDS = 2.0
    settings.STUDIO_FAILURE_LIMIT = 100  # jobs keep trying: the breaker is what holds them back
    return sandbox_accounts


def make_uniall_job(project, account, n=0):
    return services.job_create(project=project, user=None, account=account, model="viduq3t-540p",
                               params={"prompt": f"{PROMPT} {n}", "duration": 2})


def health(account):
    return AccountHealth.objects.get(account=account)


def test_an_account_that_keeps_failing_is_paused_and_probed_once_per_cooling_period(breaker, demo_project, sandbox):
    account = breaker["uniall"]
    jobs = [make_uniall_job(demo_project, account, n) for n in range(6)]
    for job in jobs:
        step_once(job)
    sandbox.fault("server_error", provider="uniall", on="status", status=502, times=10_000)
    Job.objects.filter(pk__in=[j.pk for j in jobs]).update(next_poll_at=timezone.now())
    before = len(sandbox.requests("uniall"))
    with poller_running(threads=4):
        wait_for(lambda: health(account).is_paused(), timeout=10)
        paused_at = time.time()
        time.sleep(5.0)
        during = [r for r in sandbox.requests("uniall")[before:] if r["at"] >= paused_at]
    # 5 s of a 2 s cooling period: at most three probes, however many jobs are due.
    assert len(during) <= 3, [r["path"] for r in during]
    row = health(account)
    assert row.consecutive_failures >= 3
    assert "Provider error 502" in row.last_failure
    assert all(Job.objects.get(pk=j.pk).state in (JobState.SUBMITTED, JobState.RUNNING) for j in jobs)


def test_a_paused_account_sends_no_new_job_and_resumes_when_a_probe_succeeds(breaker, demo_project, sandbox):
    account = breaker["uniall"]
    sandbox.fault("server_error", provider="uniall", on="submit", status=503, times=3)
    # Three ambiguous submissions open the breaker (each is a job the studio cannot confirm).
    for n in range(3):
        step_once(make_uniall_job(demo_project, account, n))
    assert health(account).is_paused()
    waiting = make_uniall_job(demo_project, account, 99)
    step_once(waiting)
    assert Job.objects.get(pk=waiting.pk).state == JobState.QUEUED, "nothing is sent while paused"
    assert len(sandbox.submits("uniall")) == 3
    with poller_running(threads=2):
        wait_for(lambda: Job.objects.get(pk=waiting.pk).state == JobState.SUCCEEDED, timeout=20)
    assert not health(account).is_paused()
    assert health(account).consecutive_failures == 0


def test_the_composer_and_the_admin_show_a_paused_account(breaker, demo_project, sandbox, client, admin_user):
    account = breaker["uniall"]
    AccountHealth.objects.create(account=account, consecutive_failures=5, last_failure="Provider error 502: down",
                                 last_failure_at=timezone.now(), paused_at=timezone.now(),
                                 paused_until=timezone.now() + timezone.timedelta(seconds=60), calls=9, failures=5)
    demo_project.memberships.create(user=admin_user, role="owner")
    client.force_login(admin_user)
    page = client.get(reverse("project_detail", args=[demo_project.slug])).content.decode()
    assert "Paused: its last 5 calls failed (Provider error 502: down)" in page
    listing = client.get(reverse("admin:providers_provideraccount_changelist")).content.decode()
    assert "Paused until" in listing
    change = client.get(reverse("admin:providers_provideraccount_change", args=[account.pk])).content.decode()
    assert "Paused since" in change and "5 of 9 calls failed" in change


def early_in_a_minute(needed=12):
    """Budgets count per calendar minute: a test that must stay within one starts with `needed` seconds left."""
    left = 60 - time.time() % 60
    if left < needed:
        time.sleep(left + 0.1)


def test_the_request_budget_counts_every_call_of_jobs_made_anywhere(sandbox_accounts, demo_project, sandbox):
    early_in_a_minute()
    account = sandbox_accounts["qingbo"]
    account.max_requests_per_minute = 1
    account.save()
    jobs = [services.job_create(project=demo_project, user=None, account=account, model="veo-3.0",
                                params={"prompt": f"{PROMPT} {n}", "duration": 4}) for n in range(3)]
    with poller_running(threads=2):
        wait_for(lambda: sandbox.submits("qingbo"), timeout=5)
        time.sleep(2.0)
    assert len(sandbox.requests("qingbo")) == 1
    assert RequestWindow.objects.get(account=account).count == 1
    states = sorted(Job.objects.filter(pk__in=[j.pk for j in jobs]).values_list("state", flat=True))
    assert states == [JobState.QUEUED, JobState.QUEUED, JobState.SUBMITTED]
