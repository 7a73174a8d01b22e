"""The poller loop, run in-process on threads: it submits and polls every job itself, one worker at a time
per job, several providers at once, within each account's request budget, and it survives crashes and bugs.

Pollers run on threads that share the test database, so every test here uses the transactional database
(the fixtures ask for it) and every thread closes its own connections.
"""

import threading
import time
from collections import defaultdict
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
from pathlib import Path

from django.conf import settings
from django.db import connections
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from studio.jobs import services
from studio.jobs.leases import claim_due_jobs
from studio.jobs.models import Job, JobEvent, JobState, Result
from studio.jobs.poller import step_once
from studio.providers.models import RequestWindow
from tests.backends import queued_tasks
from tests.conftest import wait_for
from tests.helpers import CHEAP_MODELS, poller_running

PROMPT = "A lighthouse at dusk, waves rolling in"


def make_job(project, account):
    model, params = CHEAP_MODELS[account.provider]
    return services.job_create(project=project, user=None, account=account, model=model,
                               params={"prompt": PROMPT, **params})


def make_due(*jobs):
    """job_create leaves a queued job to its submit task for 10 s; these tests have no task, so due now."""
    Job.objects.filter(pk__in=[job.pk for job in jobs]).update(next_poll_at=timezone.now())


def rows(jobs):
    return Job.objects.filter(pk__in=[job.pk for job in jobs])


def states(jobs):
    return dict(rows(jobs).values_list("pk", "state"))


def all_in(jobs, wanted):
    return all(state in wanted for state in states(jobs).values())


class WorkLog:
    """Records every submit and poll, as (job id, call, thread, start, end), and calls through."""

    def __init__(self, monkeypatch):
        self.lock = threading.Lock()
        self.spans = []
        for name in ("job_submit", "job_poll"):
            monkeypatch.setattr(services, name, self.recording(name, getattr(services, name)))

    def recording(self, name, real):
        def call(job, calls):
            start = time.monotonic()
            try:
                return real(job, calls)
            finally:
                with self.lock:
                    span = (job.pk, name, threading.current_thread().name, start, time.monotonic())
                    self.spans.append(span)
        return call

    def overlaps(self):
        """Pairs of spans on the same job that ran at the same time."""
        by_job = defaultdict(list)
        for job_id, name, thread, start, end in self.spans:
            by_job[job_id].append((start, end, name, thread))
        clashes = []
        for job_id, spans in by_job.items():
            spans.sort()
            latest = spans[0]
            for span in spans[1:]:
                if span[0] < latest[1]:
                    clashes.append((job_id, latest, span))
                if span[1] > latest[1]:
                    latest = span
        return clashes

    def submits(self):
        return [span[0] for span in self.spans if span[1] == "job_submit"]


def test_the_poller_alone_takes_jobs_on_every_provider_to_success(sandbox_accounts, demo_project, sandbox):
    jobs = [make_job(demo_project, account) for account in sandbox_accounts.values()]
    make_due(*jobs)
    with poller_running():
        wait_for(lambda: all_in(jobs, {JobState.SUCCEEDED, JobState.FAILED}), timeout=30)
    assert set(states(jobs).values()) == {JobState.SUCCEEDED}
    assert all(Job.objects.get(pk=job.pk).results.count() == 1 for job in jobs)
    for provider in sandbox_accounts:
        assert len(sandbox.submits(provider)) == 1, provider
    # django-q2 carries only the CPU work on the stored videos, one task per video; it sends nothing.
    queued = sorted(queued_tasks())
    stored = Result.objects.filter(job__in=[job.pk for job in jobs]).values_list("pk", flat=True)
    assert queued == sorted(("studio.jobs.tasks.process_result", (pk,)) for pk in stored)


def test_jobs_on_different_providers_are_submitted_at_the_same_time(sandbox_accounts, demo_project, sandbox):
    providers = ["qingbo", "uniall", "modelmax", "apimp"]
    for provider in providers:
        sandbox.fault("latency", provider=provider, on="submit", seconds=2)
    jobs = [make_job(demo_project, sandbox_accounts[provider]) for provider in providers]
    make_due(*jobs)
    started = timezone.now()
    with poller_running():
        wait_for(lambda: not rows(jobs).filter(submitted_at=None).exists(), timeout=12)
    slowest = max(rows(jobs).values_list("submitted_at", flat=True))
    # One after the other would take 4 × 2 s; at once it is one 2 s wait plus overhead.
    assert (slowest - started).total_seconds() < 3.5


def test_two_pollers_never_poll_one_job_at_the_same_time(sandbox_accounts, demo_project, sandbox,
                                                         monkeypatch):
    providers = ["uniall"] * 10 + ["modelmax", "apimp"]
    jobs = [make_job(demo_project, sandbox_accounts[provider]) for provider in providers]
    for job in jobs:
        step_once(job)
    work = WorkLog(monkeypatch)
    make_due(*jobs)
    with poller_running(owner="host-a:1"), poller_running(owner="host-b:2"):
        wait_for(lambda: all_in(jobs, {JobState.SUCCEEDED, JobState.FAILED}), timeout=40)
    assert set(states(jobs).values()) == {JobState.SUCCEEDED}
    assert work.overlaps() == []
    assert work.submits() == []
    assert len(sandbox.submits()) == len(jobs)


def test_two_pollers_never_work_on_one_job_at_the_same_time_even_while_it_is_submitted(
        sandbox_accounts, demo_project, sandbox, monkeypatch):
    work = WorkLog(monkeypatch)
    real_mark_submitted = Job.mark_submitted

    def slow_after_commit(self, **fields):
        # Stands in for a busy database between the "submitted" commit and the next write.
        moved = real_mark_submitted(self, **fields)
        time.sleep(1.0)
        return moved

    monkeypatch.setattr(Job, "mark_submitted", slow_after_commit)
    jobs = [make_job(demo_project, sandbox_accounts["uniall"]) for _ in range(4)]
    make_due(*jobs)
    with poller_running(owner="host-a:1"), poller_running(owner="host-b:2"):
        wait_for(lambda: all_in(jobs, {JobState.SUCCEEDED, JobState.FAILED}), timeout=20)
    assert sorted(work.submits()) == sorted(job.pk for job in jobs), "each job submitted exactly once"
    assert len(sandbox.submits("uniall")) == len(jobs)
    assert work.overlaps() == []


def claim_all(owner, barrier, claimed, errors):
    try:
        barrier.wait()
        while batch := claim_due_jobs(owner, 10)[0]:
            claimed.extend(job.pk for job in batch)
    except Exception as error:  # reported by the test in the main thread
        errors.append(repr(error))
    finally:
        connections.close_all()


def test_claiming_from_two_threads_gives_each_due_job_to_exactly_one(sandbox_accounts, demo_project):
    jobs = [make_job(demo_project, sandbox_accounts["uniall"]) for _ in range(50)]
    make_due(*jobs)
    barrier, errors = threading.Barrier(2), []
    claims = {"a": [], "b": []}
    threads = [threading.Thread(target=claim_all, args=(owner, barrier, claims[owner], errors))
               for owner in claims]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    assert not set(claims["a"]) & set(claims["b"])
    assert len(claims["a"]) + len(claims["b"]) == 50
    assert set(claims["a"]) | set(claims["b"]) == {job.pk for job in jobs}
    for owner, ids in claims.items():
        leases = set(Job.objects.filter(pk__in=ids).values_list("lease_owner", flat=True))
        assert all(lease.startswith(f"{owner}/") for lease in leases)


def test_a_poll_that_finds_the_job_still_running_is_one_write(sandbox_accounts, demo_project, sandbox):
    """The common poll (no news but progress) writes its news, its next poll time and the end of its lease in
    one UPDATE, adds no event, and leaves the job free for the next poll."""
    sandbox.set_job_seconds(120)
    account = sandbox_accounts["qingbo"]
    job = make_job(demo_project, account)
    make_due(job)
    step_once(job)  # submitted
    make_due(job)
    step_once(job)  # running
    assert job.state == JobState.RUNNING
    events = JobEvent.objects.filter(job=job).count()
    make_due(job)
    with CaptureQueriesContext(connections["default"]) as captured:
        step_once(job)
    writes = [query["sql"] for query in captured.captured_queries
              if query["sql"].startswith(("UPDATE", "INSERT")) and "jobs_job" in query["sql"].split(" SET ")[0]]
    claim, poll = writes[0], writes[1:]
    assert "lease_owner" in claim
    assert len(poll) == 1, poll
    assert job.state == JobState.RUNNING and job.poll_attempts >= 1
    assert job.lease_owner == "" and job.lease_expires_at is None
    assert job.next_poll_at > timezone.now()
    assert JobEvent.objects.filter(job=job).count() == events


def test_a_steady_poll_does_not_overwrite_a_job_another_worker_moved_on(sandbox_accounts, demo_project, sandbox,
                                                                        monkeypatch):
    """If the job is no longer this worker's (its lease lost and the job taken) when the poll writes, the write
    matches nothing: the other worker's state stands."""
    sandbox.set_job_seconds(120)
    job = make_job(demo_project, sandbox_accounts["qingbo"])
    make_due(job)
    step_once(job)
    make_due(job)
    step_once(job)
    real = services.job_poll

    def poll_then_lose_the_job(job, calls):
        Job.objects.filter(pk=job.pk).update(lease_owner="someone-else", progress=77)
        return real(job, calls)

    monkeypatch.setattr(services, "job_poll", poll_then_lose_the_job)
    make_due(job)
    step_once(job)
    assert job.lease_owner == "someone-else" and job.progress == 77


def test_a_job_leased_by_another_poller_waits_until_the_lease_expires(sandbox_accounts, demo_project,
                                                                      sandbox):
    job = make_job(demo_project, sandbox_accounts["uniall"])
    make_due(job)
    expires = timezone.now() + timedelta(seconds=1.5)
    Job.objects.filter(pk=job.pk).update(lease_owner="elsewhere:99/abc", lease_expires_at=expires)
    assert claim_due_jobs("here:1", 10) == ([], "")
    with poller_running(owner="here:1"):
        time.sleep(1.0)
        assert Job.objects.get(pk=job.pk).state == JobState.QUEUED
        assert sandbox.submits("uniall") == []
        wait_for(lambda: Job.objects.get(pk=job.pk).submitted_at, timeout=10)
    job.refresh_from_db()
    assert job.submitted_at >= expires
    assert len(sandbox.submits("uniall")) == 1


def test_a_crashed_submission_is_requeued_if_unsent_and_left_alone_if_sent(sandbox_accounts, demo_project,
                                                                           sandbox):
    unsent = make_job(demo_project, sandbox_accounts["uniall"])
    sent = make_job(demo_project, sandbox_accounts["veoquery"])
    long_ago = timezone.now() - timedelta(minutes=5)
    for job in (unsent, sent):
        job.claim_for_submit()
    # As a sender killed mid-way leaves them: "submitting" with the lease run out; one had written its
    # "sent" marker before it died.
    Job.objects.filter(pk__in=[unsent.pk, sent.pk]).update(lease_expires_at=long_ago)
    Job.objects.filter(pk=sent.pk).update(submit_sent_at=long_ago)
    with poller_running():
        wait_for(lambda: all_in([unsent], {JobState.SUCCEEDED, JobState.FAILED}), timeout=20)
    unsent.refresh_from_db()
    sent.refresh_from_db()
    assert unsent.state == JobState.SUCCEEDED
    assert len(sandbox.submits("uniall")) == 1
    transitions = list(unsent.events.values_list("from_state", "to_state"))
    assert ("submitting", "queued") in transitions
    assert sent.state == JobState.SUBMIT_UNKNOWN
    assert "the provider may have accepted it" in sent.error_message
    assert sent.next_poll_at is None
    assert sandbox.submits("veoquery") == [], "an ambiguous job is never sent again by itself"


def wait_clear_of_minute_boundary(margin=4.0):
    """The request budget is per clock minute: a run straddling a boundary would get two budgets."""
    left = 60 - time.time() % 60
    if left < margin + 3:
        time.sleep(left + 0.1)


def test_the_request_budget_holds_and_the_rest_waits_for_the_next_minute(sandbox_accounts, demo_project,
                                                                         sandbox):
    account = sandbox_accounts["uniall"]
    account.max_requests_per_minute = 3
    account.save()
    jobs = [make_job(demo_project, account) for _ in range(6)]
    wait_clear_of_minute_boundary()
    minute = int(time.time() // 60)
    make_due(*jobs)
    with poller_running():
        time.sleep(3)
    assert int(time.time() // 60) == minute, "the run crossed a minute boundary"
    next_minute = datetime.fromtimestamp((minute + 1) * 60, tz=dt_timezone.utc)
    assert len(sandbox.requests("uniall")) <= 3
    assert RequestWindow.objects.get(account=account, minute=minute).count == 3
    assert not rows(jobs).filter(state=JobState.FAILED).exists()
    assert rows(jobs).filter(state=JobState.QUEUED).count() == 3
    assert all(when >= next_minute for when in rows(jobs).values_list("next_poll_at", flat=True))


def test_a_rate_limited_job_is_put_off_not_failed(sandbox_accounts, demo_project, sandbox):
    account = sandbox_accounts["modelmax"]
    account.max_requests_per_minute = 2
    account.save()
    minute = int(time.time() // 60)
    # This minute and the next are spent already, so the test holds even across a boundary.
    for spent in (minute, minute + 1):
        RequestWindow.objects.create(account=account, minute=spent, count=2)
    job = make_job(demo_project, account)
    make_due(job)
    with poller_running():
        wait_for(lambda: rows([job]).get().next_poll_at > timezone.now() + timedelta(seconds=1), timeout=5)
    job.refresh_from_db()
    assert job.state == JobState.QUEUED
    assert job.error_message == ""
    assert job.next_poll_at >= datetime.fromtimestamp((minute + 1) * 60, tz=dt_timezone.utc)
    assert sandbox.requests("modelmax") == []


def test_a_job_past_its_deadline_fails_and_revives_when_the_provider_finishes(sandbox_accounts, demo_project,
                                                                             sandbox, media_root):
    sandbox.set_job_seconds(2)
    job = make_job(demo_project, sandbox_accounts["uniall"])
    make_due(job)
    with poller_running():
        wait_for(lambda: Job.objects.get(pk=job.pk).provider_task_id, timeout=10)
        Job.objects.filter(pk=job.pk).update(deadline_at=timezone.now() - timedelta(seconds=1))
        wait_for(lambda: Job.objects.get(pk=job.pk).state == JobState.FAILED, timeout=5)
        job.refresh_from_db()
        assert job.error_message.startswith("No result after")
        assert job.timed_out_at is not None
        ahead = (job.next_poll_at - timezone.now()).total_seconds()
        assert 29 * 60 < ahead <= 30 * 60

        task = next(iter(sandbox.state.tasks.values()))
        wait_for(lambda: task.state == "succeeded", timeout=10)
        assert Job.objects.get(pk=job.pk).state == JobState.FAILED, "nobody looks before the revisit is due"
        Job.objects.filter(pk=job.pk).update(next_poll_at=timezone.now())
        wait_for(lambda: Job.objects.get(pk=job.pk).state == JobState.SUCCEEDED, timeout=10)
    job.refresh_from_db()
    assert job.timed_out_at is None
    assert job.error_message == ""
    result = job.results.get()
    assert (Path(media_root) / result.file.name).stat().st_size == result.bytes
    messages = list(JobEvent.objects.filter(job=job).values_list("message", flat=True))
    assert "The provider finished after all: reviving the job." in messages
    assert ("failed", "downloading") in list(job.events.values_list("from_state", "to_state"))
    assert len(sandbox.submits("uniall")) == 1


def test_the_task_cluster_retries_only_after_a_timeout_and_never_forever():
    cluster = settings.Q_CLUSTER
    assert cluster["retry"] > cluster["timeout"]
    assert isinstance(cluster["max_attempts"], int) and cluster["max_attempts"] > 0
    assert cluster["catch_up"] is False


def test_a_poll_that_raises_does_not_stop_the_loop(sandbox_accounts, demo_project, sandbox, monkeypatch,
                                                   caplog, settings):
    settings.STUDIO_LEASE_SECONDS = 60
    jobs = [make_job(demo_project, sandbox_accounts[name]) for name in ("uniall", "uniall", "modelmax")]
    victim = jobs[0]
    real_poll, lock, raised = services.job_poll, threading.Lock(), []

    def poll_with_a_bug(job, calls):
        with lock:
            first = job.pk == victim.pk and not raised
            if first:
                raised.append(job.pk)
        if first:
            raise RuntimeError("a bug that shows up for one job")
        return real_poll(job, calls)

    monkeypatch.setattr(services, "job_poll", poll_with_a_bug)
    make_due(*jobs)
    with poller_running():
        wait_for(lambda: all_in(jobs, {JobState.SUCCEEDED, JobState.FAILED}), timeout=20)
    assert raised == [victim.pk]
    assert f"job {victim.pk}: step failed unexpectedly" in caplog.text
    assert JobEvent.objects.filter(job=victim, message__contains="a bug that shows up for one job").exists()
    # Finished long before its 60 s lease would have run out: the step let go of it after the error.
    assert set(states(jobs).values()) == {JobState.SUCCEEDED}
    assert set(rows(jobs).values_list("lease_owner", "lease_expires_at")) == {("", None)}


def test_a_call_longer_than_the_lease_keeps_the_lease_and_no_other_poller_takes_the_job(
        sandbox_accounts, demo_project, sandbox, monkeypatch, settings):
    settings.STUDIO_LEASE_SECONDS = 1.0  # renewed every third of a second by the holder's lease keeper
    job = make_job(demo_project, sandbox_accounts["uniall"])
    step_once(job)
    sandbox.fault("latency", provider="uniall", on="status", seconds=3.0)
    work = WorkLog(monkeypatch)
    make_due(job)
    with poller_running(owner="host-a:1"), poller_running(owner="host-b:2"):
        wait_for(lambda: all_in([job], {JobState.SUCCEEDED, JobState.FAILED}), timeout=20)
    assert Job.objects.get(pk=job.pk).state == JobState.SUCCEEDED
    assert work.overlaps() == []
    slow = [span for span in work.spans if span[4] - span[3] > 2.5]
    assert len(slow) == 1, "the slow status call ran once, under one lease"
