"""kill -9 the whole cluster at each step of submit and poll, restart it, and nothing is lost or sent twice.

A real `manage.py qcluster` runs in its own process group on the test database; a failpoint at the
chosen step SIGKILLs the group (every cluster process at once, as `kill -9` would). A second cluster,
without the failpoint, then has to finish the work.
"""

import hashlib
import signal
import subprocess
from pathlib import Path

import pytest

from studio.jobs import services
from studio.jobs.models import Job, JobEvent, JobState
from tests.jobs.cluster import (
    JOBS,
    callbacks_delivered,
    cluster_env,
    settled,
    start_cluster,
    stop,
    wait_until,
)


@pytest.mark.parametrize("failpoint", ["before_submit_post", "after_submit_answer", "after_status_answer",
                                       "during_download"])
def test_killing_the_cluster_at_any_step_loses_nothing_and_sends_nothing_twice(
        failpoint, sandbox_accounts, demo_project, sandbox, settings, tmp_path):
    sandbox.set_job_seconds(1.5)
    jobs = [services.job_create(project=demo_project, user=None, account=sandbox_accounts[provider], model=model,
                                params={"prompt": f"{failpoint} job {n}", **params})
            for n, (provider, model, params) in enumerate(JOBS)]

    first = start_cluster(cluster_env(settings, tmp_path, failpoint))
    try:
        first.wait(timeout=90)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the failpoint {failpoint} never fired:\n{stop(first)[-3000:]}")
    assert first.returncode == -signal.SIGKILL
    assert (tmp_path / f"studio-failpoint-{failpoint}").exists()

    second = start_cluster(cluster_env(settings, tmp_path))
    try:
        finished = wait_until(lambda: callbacks_delivered(sandbox)
                              and all(settled(Job.objects.get(pk=job.pk)) for job in jobs), timeout=120)
    finally:
        output = stop(second)
    states = {job.pk: Job.objects.get(pk=job.pk).state for job in jobs}
    assert finished, f"not all jobs ended: {states}\n{output[-3000:]}"

    for job in jobs:
        job.refresh_from_db()
        sent = [r for r in sandbox.submits(job.provider) if (r["json"] or {}).get("prompt") == job.params["prompt"]]
        assert len(sent) <= 1, f"job {job.pk} was submitted {len(sent)} times"
        if job.state == JobState.SUBMIT_UNKNOWN:
            # Ambiguous only when the kill caught this job's submission in flight, never resent on its own.
            assert job.submit_sent_at is not None
            assert "may have accepted" in job.error_message
            continue
        assert job.state == JobState.SUCCEEDED, (job.pk, job.state, job.error_message)
        assert len(sent) == 1
        for result in job.results.all():
            stored = Path(settings.MEDIA_ROOT) / result.file.name
            assert hashlib.sha256(stored.read_bytes()).hexdigest() == result.sha256
    if failpoint == "after_submit_answer":
        # The kill caught one answer in flight: that job became ambiguous (and, for qingbo, its callback may
        # have settled it since, without a second submission: checked above).
        assert JobEvent.objects.filter(job__in=[job.pk for job in jobs], to_state=JobState.SUBMIT_UNKNOWN).exists()
    names = [p.name for p in Path(settings.MEDIA_ROOT).rglob("*.mp4")]
    assert sorted(n for n in names if not n.startswith(".partial-")) == sorted(
        Path(r.file.name).name for job in jobs for r in Job.objects.get(pk=job.pk).results.all())
    modelmax_job = next(job for job in jobs if job.provider == "modelmax")
    if Job.objects.get(pk=modelmax_job.pk).state == JobState.SUCCEEDED:
        modelmax_task = next(t for t in sandbox.state.tasks.values() if t.provider == "modelmax")
        assert modelmax_task.result_fetches == 1, "ModelMax bills the result: it must be fetched once"
