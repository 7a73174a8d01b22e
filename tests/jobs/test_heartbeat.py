"""Is the background work running? Each real `manage.py qcluster` writes its heartbeat; `manage.py health` reads
them (and the jobs nobody takes) and says so in its exit status: 0 all well, 1 a cluster died while another
runs, 2 no cluster alive or jobs overdue.

Real processes throughout: clusters on the test database, killed with SIGKILL as a crash or a lost machine
would; `manage.py health` in a process of its own, as an operator or a monitor runs it."""

import json
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.db import OperationalError
from django.utils import timezone

from studio.jobs import services
from studio.jobs.heartbeat import Heartbeat
from studio.jobs.models import ClusterHeartbeat, Job
from tests.backends import studio_env
from tests.helpers import CHEAP_MODELS
from tests.jobs.cluster import ROOT, cluster_env, start_cluster, stop, wait_until

BEAT_SECONDS = 0.5
STALE_SECONDS = 4.0
QUICK_HEARTBEAT = {"STUDIO_HEARTBEAT_SECONDS": BEAT_SECONDS, "STUDIO_CLUSTER_STALE_SECONDS": STALE_SECONDS}


def health(settings, *, text=False):
    """`manage.py health` run as an operator would: (exit status, its JSON report or its text)."""
    command = [sys.executable, "manage.py", "health", *([] if text else ["--json"])]
    result = subprocess.run(command, cwd=ROOT, env=studio_env(STUDIO_MEDIA_ROOT=settings.MEDIA_ROOT, **QUICK_HEARTBEAT),
                            capture_output=True, text=True, timeout=60)
    assert result.stdout, result.stderr
    return result.returncode, result.stdout if text else json.loads(result.stdout)


def states(report):
    return {row["pid"]: row["state"] for row in report["clusters"]}


@pytest.fixture
def clusters(settings, tmp_path):
    """start(name) runs a real cluster beating every half second; each is killed at the end whatever happened."""
    started = []

    def start(name):
        process = start_cluster({**cluster_env(settings, tmp_path), **{k: str(v) for k, v in QUICK_HEARTBEAT.items()}},
                                log=tmp_path / f"{name}.log")
        process.log = tmp_path / f"{name}.log"
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.mark.django_db(transaction=True)
def test_health_sees_clusters_alive_then_one_killed_then_none(settings, clusters):
    first, second = clusters("first"), clusters("second")

    def both_beating():
        rows = ClusterHeartbeat.objects.filter(pid__in=[first.pid, second.pid], poller_loop_at__isnull=False)
        return rows.count() == 2

    assert wait_until(both_beating, timeout=60), first.log.read_text()[-2000:] + second.log.read_text()[-2000:]
    status, report = health(settings)
    assert (status, report["status"], report["problems"]) == (0, "ok", [])
    assert states(report) == {first.pid: "alive", second.pid: "alive"}
    assert all(row["runs_poller"] and row["sentinel_alive"] for row in report["clusters"])
    status, text = health(settings, text=True)
    assert status == 0
    assert "clusters  2 alive" in text and "overdue   no jobs" in text and text.rstrip().endswith("status    ok")

    os.killpg(first.pid, signal.SIGKILL)  # the whole cluster, as when its machine is lost: nothing can tidy up
    first.wait()
    killed = time.monotonic()
    seen = {}
    assert wait_until(lambda: seen.update(zip(("status", "report"), health(settings))) or
                      states(seen["report"])[first.pid] == "dead", timeout=30)
    # Dead once its last beat (at most one beat before the kill) is STALE_SECONDS old, and not before.
    assert time.monotonic() - killed >= STALE_SECONDS - BEAT_SECONDS
    assert seen["status"] == 1 and seen["report"]["status"] == "warning"
    assert states(seen["report"]) == {first.pid: "dead", second.pid: "alive"}
    assert seen["report"]["problems"] == [f"cluster {ClusterHeartbeat.objects.get(pid=first.pid)} dead"]

    stop(second)  # stopped in order: its row goes, and no cluster is left alive
    assert second.returncode == 0
    assert not ClusterHeartbeat.objects.filter(pid=second.pid).exists()
    status, report = health(settings)
    assert (status, report["status"]) == (2, "failing")
    assert states(report) == {first.pid: "dead"}
    assert "no cluster alive" in report["problems"]


def make_job(project, account, *, due_ago):
    model, params = CHEAP_MODELS[account.provider]
    job = services.job_create(project=project, user=None, account=account, model=model,
                              params={"prompt": "A lighthouse at dusk", **params})
    Job.objects.filter(pk=job.pk).update(next_poll_at=timezone.now() - due_ago)
    return job


def test_jobs_due_long_ago_that_no_worker_holds_are_overdue_and_fail_the_check(settings, sandbox_accounts,
                                                                                demo_project):
    account = sandbox_accounts["qingbo"]
    forgotten = make_job(demo_project, account, due_ago=timedelta(minutes=5))
    make_job(demo_project, account, due_ago=timedelta(seconds=10))  # due, but not for long
    held = make_job(demo_project, account, due_ago=timedelta(minutes=5))
    Job.objects.filter(pk=held.pk).update(lease_owner="elsewhere:1", lease_expires_at=timezone.now() + timedelta(hours=1))

    status, report = health(settings)
    assert status == 2
    assert report["overdue"] == {"count": 1, "first_ids": [forgotten.pk], "after_seconds": 60.0}
    assert report["problems"] == ["no cluster alive", "1 job overdue"]
    status, text = health(settings, text=True)
    assert f"overdue   1 job due more than 60 s ago and held by no worker (the first was due 5 min ago): " \
           f"{forgotten.pk}" in text


@pytest.mark.django_db(transaction=True)
def test_a_beat_the_database_refuses_is_logged_and_the_next_one_writes_the_row(monkeypatch, caplog):
    real = ClusterHeartbeat.objects.update_or_create
    refusals = iter([OperationalError("database is locked")])

    def refusing_once(**fields):
        for error in refusals:
            raise error
        return real(**fields)

    monkeypatch.setattr(ClusterHeartbeat.objects, "update_or_create", refusing_once)
    heartbeat = Heartbeat(sentinel=SimpleNamespace(pid=os.getpid()), every=0.1).start()  # does not raise
    try:
        assert wait_until(heartbeat.mine().exists, timeout=10)
    finally:
        heartbeat.stop()
    assert "could not record this cluster's heartbeat: database is locked" in caplog.text
    assert not heartbeat.mine().exists()  # stopped in order: its row is gone
