"""Stopping the cluster: whatever a terminal or a supervisor sends, it stops in order (the poller, then
django-q2's cluster) and exits 0 within 10 s, idle or busy; and no process it started outlives it, even
when only its main process is killed with SIGKILL.

Real processes throughout: `manage.py qcluster` on the test database, `manage.py runstudio` on its own.
"""

import os
import re
import signal
import subprocess
import sys
import time

import pytest

from studio.jobs import services
from studio.jobs.models import Job, JobState
from tests.backends import studio_env
from tests.jobs.cluster import (
    JOBS,
    ROOT,
    alive,
    cluster_env,
    descendants,
    group_members,
    start_cluster,
    wait_until,
)
from tests.web.test_run_command import answer, free_port, processes_started_with

STOP_WITHIN = 10.0
POLLER_STARTED = re.compile(r"poller \S+ started")


@pytest.fixture
def clusters(settings, tmp_path):
    """start(name) runs a real cluster, its output in tmp_path/<name>.log, and returns once it works;
    whatever is left of every cluster started is killed at the end, however the test went."""
    started = []

    def start(name="cluster"):
        log = tmp_path / f"{name}.log"
        process = start_cluster(cluster_env(settings, tmp_path), log=log)
        process.log, process.tree = log, []
        started.append(process)
        assert wait_until(lambda: working(process), timeout=60), f"it did not start:\n{output(process)}"
        process.tree = descendants(process.pid)
        return process

    try:
        yield start
    finally:
        for process in started:
            for pid, _ in filter(alive, process.tree):
                os.kill(pid, signal.SIGKILL)
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def output(process):
    return process.log.read_text()


def working(process):
    """django-q2's processes run, and so does the poller."""
    text = output(process)
    return process.poll() is None and "running." in text and POLLER_STARTED.search(text) is not None


def stopped_within(process, seconds):
    """The process's exit status and how long it took; a failure if it still runs after `seconds`."""
    sent = time.monotonic()
    try:
        returncode = process.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        pytest.fail(f"still running {seconds} s after the signal:\n{output(process)[-3000:]}")
    return returncode, time.monotonic() - sent


def nothing_left(process):
    return not group_members(process.pid) and not any(alive(child) for child in process.tree)


@pytest.mark.parametrize(("signum", "to"), [(signal.SIGTERM, "group"), (signal.SIGINT, "group"),
                                            (signal.SIGTERM, "main")],
                         ids=["sigterm-to-group", "sigint-to-group", "sigterm-to-main"])
def test_a_stop_signal_ends_an_idle_cluster_in_order_within_10_seconds(
        clusters, transactional_db, signum, to):
    cluster = clusters()
    assert len(cluster.tree) >= 5, "the sentinel, 2 workers, the monitor and the pusher"
    if to == "group":
        os.killpg(cluster.pid, signum)  # a terminal's Ctrl-C, honcho, systemd: every process at once
    else:
        os.kill(cluster.pid, signum)  # a supervisor that tells only the process it started
    returncode, seconds = stopped_within(cluster, STOP_WITHIN)
    log = output(cluster)
    assert returncode == 0, log
    assert wait_until(lambda: nothing_left(cluster), timeout=max(1.0, STOP_WITHIN - seconds)), log
    assert log.index("the poller has stopped") < log.index("stopping.") < log.index("has stopped."), log
    assert "did not stop" not in log


def test_sigterm_with_jobs_in_flight_ends_within_10_seconds_and_a_second_cluster_finishes_them(
        clusters, sandbox_accounts, demo_project, sandbox):
    sandbox.set_job_seconds(4)
    jobs = [services.job_create(project=demo_project, user=None, account=sandbox_accounts[provider],
                                model=model, params={"prompt": f"in flight {n}", **params})
            for n, (provider, model, params) in enumerate(JOBS)]
    ids = [job.pk for job in jobs]
    first = clusters("first")
    task_ids = Job.objects.filter(pk__in=ids).values_list("provider_task_id", flat=True)
    submitted = wait_until(lambda: all(task_ids.all()), timeout=60)
    assert submitted, output(first)
    sandbox.fault("latency", on="status", seconds=2, times=3)
    status_call_in_flight = wait_until(
        lambda: any(r["method"] == "GET" and r["status"] is None for r in sandbox.requests()), timeout=30)
    assert status_call_in_flight

    os.killpg(first.pid, signal.SIGTERM)
    returncode, seconds = stopped_within(first, STOP_WITHIN)
    assert returncode == 0, output(first)
    assert wait_until(lambda: nothing_left(first), timeout=max(1.0, STOP_WITHIN - seconds)), output(first)
    leased = Job.objects.filter(pk__in=ids).exclude(lease_owner="")
    assert list(leased.exclude(lease_expires_at=None).values_list("pk", "lease_owner")) == []

    second = clusters("second")
    finished = wait_until(lambda: set(Job.objects.filter(pk__in=ids).values_list("state", flat=True))
                          == {JobState.SUCCEEDED}, timeout=90)
    states = list(Job.objects.filter(pk__in=ids).values_list("pk", "state", "error_message"))
    assert finished, f"{states}\n{output(second)[-3000:]}"


def test_killing_only_the_main_process_with_sigkill_leaves_no_process_behind(clusters, transactional_db):
    cluster = clusters()
    assert len(cluster.tree) >= 5, "the sentinel, 2 workers, the monitor and the pusher"
    os.kill(cluster.pid, signal.SIGKILL)  # not the group: its children get no signal from us
    assert cluster.wait(timeout=5) == -signal.SIGKILL
    assert wait_until(lambda: not any(alive(child) for child in cluster.tree), timeout=5), \
        f"still running: {[child for child in cluster.tree if alive(child)]}"


def test_ctrl_c_on_runstudio_returns_within_10_seconds_and_nothing_is_killed(tmp_path, transactional_db):
    marker = f"STUDIO_DATA_DIR={tmp_path}"
    sandbox_port, port = free_port(), free_port()
    env = studio_env(STUDIO_DATA_DIR=tmp_path, STUDIO_SANDBOX_URL=f"http://127.0.0.1:{sandbox_port}")
    log = tmp_path / "runstudio.log"
    with open(log, "w") as out:
        process = subprocess.Popen([sys.executable, "manage.py", "runstudio", "--port", str(port)], cwd=ROOT,
                                   env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    process.log = log
    try:
        assert answer(f"http://127.0.0.1:{port}/").status_code == 302
        assert answer(f"http://127.0.0.1:{sandbox_port}/_sandbox/requests").status_code == 200
        assert wait_until(lambda: POLLER_STARTED.search(output(process)), timeout=60), output(process)
        os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in a terminal does: the whole foreground group
        returncode, seconds = stopped_within(process, STOP_WITHIN)
        gone = wait_until(lambda: not processes_started_with(marker), timeout=max(1.0, STOP_WITHIN - seconds))
    finally:
        # honcho starts each process in its own session: whatever is left is found by its environment.
        for pid in processes_started_with(marker):
            os.kill(pid, signal.SIGKILL)
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    text = output(process)
    assert gone, text
    assert returncode == 130, text  # honcho's status after Ctrl-C, as a shell reports it
    assert "SIGKILL" not in text
    assert re.search(r"cluster stopped \(rc=0\)", text), text
