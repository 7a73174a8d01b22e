"""Providers that lie, stall, drip bytes, send NaN, echo keys and answer 20 MB: every call is bounded in time
and size, every failure is scheduled with growing backoff, and nothing from outside is stored unbounded or
unredacted. The poller runs for real on threads; the sandbox misbehaves on request.
"""

import base64
import io
import json
import time
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from studio.jobs import services
from studio.jobs.models import Job, JobEvent, JobState
from studio.jobs.poller import step_once
from studio.projects.images import image_ingest
from studio.providers.models import AccountHealth
from tests.conftest import wait_for
from tests.helpers import CHEAP_MODELS, png_bytes, poller_running

PROMPT = "A lighthouse at dusk, waves rolling in"
FINISHED = {JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED, JobState.SUBMIT_UNKNOWN}


@pytest.fixture
def hostile(settings, sandbox_accounts):
    """Tight limits so a hostile provider shows itself within seconds."""
    settings.STUDIO_PROVIDER_CALL_SECONDS = 1.5
    settings.STUDIO_PROVIDER_SUBMIT_SECONDS = 3.0
    settings.STUDIO_FAILURE_LIMIT = 5
    settings.STUDIO_BREAKER_FAILURES = 100  # the breaker has its own tests
    return sandbox_accounts


def make_job(project, account, prompt=PROMPT, **images):
    model, params = CHEAP_MODELS[account.provider]
    return services.job_create(project=project, user=None, account=account, model=model,
                               params={"prompt": prompt, **params}, **images)


def fresh(job):
    return Job.objects.get(pk=job.pk)


def events(job):
    return list(JobEvent.objects.filter(job=job).values_list("message", flat=True))


def status_times(sandbox, provider, job):
    """When the sandbox received each status call for this job (its task id is in the path or the query)."""
    task_id = fresh(job).provider_task_id
    return [r["at"] for r in sandbox.requests(provider)
            if r["method"] == "GET" and (task_id in r["path"] or task_id in json.dumps(r["query"]))]


def gaps(times):
    return [later - earlier for earlier, later in zip(times, times[1:])]


def assert_backs_off(times):
    """Each retry came no sooner than the doubling backoff allows (0.2 s base here, jitter down to 0.8×); a
    busy machine may make one late, never early."""
    for attempt, gap in enumerate(gaps(times), start=1):
        assert gap >= 0.8 * 0.2 * 2 ** (attempt - 1) - 0.01, (attempt, gaps(times))


# 3. A slow provider does not stall everyone ---------------------------------------------------------------


def test_a_status_answer_that_drips_is_cut_at_the_time_limit_and_healthy_jobs_finish_on_time(
        hostile, demo_project, sandbox):
    sandbox.fault("drip", provider="qingbo", on="status", seconds=1.0, times=1000)
    dripping = [make_job(demo_project, hostile["qingbo"], f"drip {n}") for n in range(4)]
    healthy = [make_job(demo_project, hostile["uniall"], f"healthy {n}") for n in range(3)]
    with poller_running(threads=2):
        # Two threads and four dripping jobs: unbounded calls would hold both threads for minutes.
        wait_for(lambda: all(fresh(job).state == JobState.SUCCEEDED for job in healthy), timeout=25)
        wait_for(lambda: all(any("within the time limit" in m for m in events(job)) for job in dripping), timeout=20)
    for job in dripping:
        job.refresh_from_db()
        assert job.state in (JobState.SUBMITTED, JobState.RUNNING, JobState.FAILED)
        cut = [m for m in events(job) if "within the time limit" in m]
        assert cut and "No complete answer" in cut[0], events(job)


def test_a_video_that_drips_is_abandoned_for_being_too_slow_and_the_job_carries_on(hostile, demo_project, sandbox,
                                                                                  settings):
    settings.STUDIO_DOWNLOAD_GRACE_SECONDS = 1.0
    settings.STUDIO_DOWNLOAD_MIN_RATE = 200_000
    sandbox.fault("drip", provider="uniall", on="download", seconds=0.5, times=1)
    job = make_job(demo_project, hostile["uniall"])
    other = make_job(demo_project, hostile["qingbo"])
    with poller_running(threads=2):
        wait_for(lambda: fresh(job).state == JobState.SUCCEEDED and fresh(other).state == JobState.SUCCEEDED,
                 timeout=30)
    slow = [m for m in events(job) if "too slow" in m]
    assert slow, events(job)
    assert fresh(job).results.count() == 1


# 4. Malformed answers do not make the poller hammer ----------------------------------------------------


def test_a_nan_progress_is_read_as_unknown_and_polled_at_the_accounts_pace(hostile, demo_project, sandbox):
    account = hostile["qingbo"]
    account.poll_seconds = 1.0
    account.save()
    sandbox.set_job_seconds(60)  # no callback wakes the job during the test
    job = make_job(demo_project, account)
    step_once(job)
    sandbox.fault("answer", provider="qingbo", on="status", body='{"status": "processing", "progress": "NaN"}',
                  times=1000)
    Job.objects.filter(pk=job.pk).update(next_poll_at=timezone.now())
    with poller_running(threads=2):
        time.sleep(4.0)
    polls = status_times(sandbox, "qingbo", job)
    assert 3 <= len(polls) <= 5, f"{len(polls)} polls in 4 s at a 1 s pace"
    job.refresh_from_db()
    assert job.state == JobState.RUNNING and job.progress is None


def test_a_malformed_finished_status_is_retried_with_growing_backoff_and_then_ends_the_job(hostile, demo_project,
                                                                                          sandbox):
    sandbox.set_job_seconds(60)  # no callback wakes the job during the test
    job = make_job(demo_project, hostile["qingbo"])
    step_once(job)  # submitted, with its task id
    sandbox.fault("answer", provider="qingbo", on="status", body='{"status": "completed", "result": "oops"}',
                  times=1000)
    Job.objects.filter(pk=job.pk).update(next_poll_at=timezone.now())
    with poller_running(threads=2):
        wait_for(lambda: fresh(job).state == JobState.FAILED, timeout=30)
    polls = status_times(sandbox, "qingbo", job)
    assert len(polls) == 5, f"{len(polls)} polls: the same failure 5 times ends the job"
    assert_backs_off(polls)
    job.refresh_from_db()
    assert "5 times in a row" in job.error_message
    assert "has no result object" in job.error_message
    assert job.timed_out_at is not None, "still looked at now and then in case the provider recovers"


def test_a_malformed_billed_result_is_fetched_at_most_twice(hostile, demo_project, sandbox):
    sandbox.fault("answer", provider="modelmax", on="result", body='{"status": "COMPLETED", "data": 5}', times=1000)
    job = make_job(demo_project, hostile["modelmax"])
    with poller_running(threads=2):
        wait_for(lambda: fresh(job).state == JobState.FAILED, timeout=40)
    task = next(iter(sandbox.state.tasks.values()))
    assert task.result_fetches <= 2
    job.refresh_from_db()
    assert "may bill the job again" in job.error_message


# 5. Persistent failures back off and end -----------------------------------------------------------------


@pytest.mark.parametrize("kind,options,words", [
    ("server_error", {"status": 500}, "Provider error 500"),
    ("answer", {"body": "{not json"}, "not JSON"),
    ("answer", {"body": ""}, "an empty body"),
    ("redirect_loop", {}, "redirect"),
])
def test_a_status_endpoint_that_keeps_failing_backs_off_and_ends_the_job(hostile, demo_project, sandbox, kind,
                                                                         options, words):
    job = make_job(demo_project, hostile["uniall"])
    step_once(job)
    sandbox.fault(kind, provider="uniall", on="status", times=1000, **options)
    Job.objects.filter(pk=job.pk).update(next_poll_at=timezone.now())
    with poller_running(threads=2):
        wait_for(lambda: fresh(job).state == JobState.FAILED, timeout=30)
    polls = status_times(sandbox, "uniall", job)
    assert len(polls) == 5
    assert_backs_off(polls)
    assert words in fresh(job).error_message


def test_a_video_link_that_is_always_dead_ends_the_job(hostile, demo_project, sandbox):
    sandbox.fault("server_error", provider="uniall", on="download", status=404, times=1000)
    job = make_job(demo_project, hostile["uniall"])
    with poller_running(threads=2):
        wait_for(lambda: fresh(job).state == JobState.FAILED, timeout=40)
    job.refresh_from_db()
    assert "expired or is gone (HTTP 404)" in job.error_message
    assert len(sandbox.state.downloads_for("uniall")) == 5


def test_the_deadline_holds_whatever_the_answers(hostile, demo_project, sandbox):
    job = make_job(demo_project, hostile["uniall"])
    step_once(job)
    sandbox.fault("server_error", provider="uniall", on="status", status=503, times=1000)
    Job.objects.filter(pk=job.pk).update(next_poll_at=timezone.now(), deadline_at=timezone.now() - timedelta(seconds=1))
    step_once(job)
    job.refresh_from_db()
    assert job.state == JobState.FAILED
    assert job.error_message.startswith("No result after 6 hours")
    assert "Provider error 503" in job.error_message


# 6. Keys that a provider echoes are never stored or shown -----------------------------------------------


def test_a_key_the_provider_echoes_is_never_stored_or_shown(hostile, demo_project, sandbox, django_user_model):
    account = hostile["apimp"]
    key = account.api_key
    job = make_job(demo_project, account)
    step_once(job)
    sandbox.fault("echo_key", provider="apimp", on="status", status=500, times=1000)
    Job.objects.filter(pk=job.pk).update(next_poll_at=timezone.now())
    step_once(job)
    job.refresh_from_db()
    disguises = [key, base64.b64encode(key.encode()).decode(), base64.b64encode(key.encode()).decode().rstrip("=")]
    stored = json.dumps([job.error_message, events(job), list(JobEvent.objects.filter(job=job).values_list(
        "payload", flat=True)), list(AccountHealth.objects.values_list("last_failure", flat=True))], default=str)
    assert "Provider error 500" in stored
    viewer = django_user_model.objects.create_user("viewer", password="x")
    demo_project.memberships.create(user=viewer, role="viewer")
    browser = Client()
    browser.force_login(viewer)
    page = browser.get(reverse("job_detail", args=[demo_project.slug, job.pk])).content.decode()
    card = browser.get(reverse("job_card", args=[demo_project.slug, job.pk])).content.decode()
    out = io.StringIO()
    call_command("jobs", "--json", str(job.pk), stdout=out)
    for text in (stored, page, card, out.getvalue()):
        for disguise in disguises:
            assert disguise not in text


# 7. Unbounded answers are refused, not parsed or stored ---------------------------------------------


def test_a_20_mb_answer_is_refused_and_nothing_large_is_stored(hostile, demo_project, sandbox):
    job = make_job(demo_project, hostile["qingbo"])
    step_once(job)
    sandbox.fault("huge", provider="qingbo", on="status", size=20_000_000, times=1)
    Job.objects.filter(pk=job.pk).update(next_poll_at=timezone.now())
    step_once(job)
    message = next(m for m in events(job) if "larger than" in m)
    assert "1,048,576 bytes" in message and "not read" in message
    largest = max(len(json.dumps(p)) for p in JobEvent.objects.filter(job=job).values_list("payload", flat=True))
    assert largest < 20_000
    assert fresh(job).state in (JobState.SUBMITTED, JobState.RUNNING), "a transient failure: it carries on"


def test_a_long_error_message_is_stored_cut_to_a_few_lines(hostile, demo_project, sandbox):
    sandbox.fault("answer", provider="uniall", on="submit", status=400,
                  body=json.dumps({"error": {"message": "Bad request. " + "x" * 900_000}}))
    job = make_job(demo_project, hostile["uniall"])
    step_once(job)
    job.refresh_from_db()
    assert job.state == JobState.FAILED
    assert job.error_message.startswith("Bad request.")
    assert len(job.error_message) < 1200


def test_a_refusal_too_large_to_read_still_fails_the_job_as_a_refusal(hostile, demo_project, sandbox):
    sandbox.fault("answer", provider="uniall", on="submit", status=400,
                  body=json.dumps({"error": {"message": "Bad request. " + "x" * 3_000_000}}))
    job = make_job(demo_project, hostile["uniall"])
    step_once(job)
    job.refresh_from_db()
    assert job.state == JobState.FAILED, "an HTTP 400 is a refusal whatever its body"
    assert "HTTP 400" in job.error_message and "too large to read" in job.error_message
    assert len(job.error_message) < 300


# 8. Provider ids stay inside the account's base path; messages show no server paths ----------------------


def test_a_task_id_with_path_characters_is_quoted_and_the_call_stays_under_the_base_url(hostile, demo_project,
                                                                                       sandbox):
    sandbox.fault("task_id", provider="qingbo", value="../../../v1/tasks/x?evil=1#frag")
    job = make_job(demo_project, hostile["qingbo"])
    with poller_running(threads=2):
        wait_for(lambda: fresh(job).state in FINISHED, timeout=30)
    assert fresh(job).state == JobState.SUCCEEDED
    gets = [r for r in sandbox.requests() if r["method"] == "GET"]
    assert gets and all(r["provider"] == "qingbo" and not r.get("unrouted") for r in gets), gets
    assert all(r["path"].startswith("/v1/tasks/..%2F..%2F..%2Fv1%2Ftasks%2Fx%3Fevil%3D1%23frag") for r in gets)


def test_a_failure_message_shows_no_server_path(hostile, demo_project, media_root):
    image = image_ingest(project=demo_project, data=png_bytes(), name="start.png")
    job = make_job(demo_project, hostile["uniall"], first_frame=image)
    (media_root / image.file.name).unlink()
    step_once(job)
    job.refresh_from_db()
    assert job.state == JobState.FAILED
    assert "could not be read" in job.error_message
    assert str(media_root) not in job.error_message and "/projects/" not in job.error_message
