"""A real `manage.py qcluster` for tests: started on the test database and the test queue in its own process
group, and the processes it starts, looked up in /proc."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from studio.jobs.models import TERMINAL_STATES, JobState
from tests.backends import studio_env

ROOT = Path(__file__).resolve().parents[2]
# A few sandbox jobs, one per protocol family: (provider, model, params).
JOBS = [("qingbo", "veo-3.0", {"duration": 4}), ("uniall", "viduq3t-540p", {"duration": 2}),
        ("modelmax", "veo-3-fast", {"duration": 4})]


def cluster_env(settings, tmp_path, failpoint=None):
    env = studio_env(
        STUDIO_MEDIA_ROOT=settings.MEDIA_ROOT,
        STUDIO_PUBLIC_URL=settings.STUDIO_PUBLIC_URL,
        STUDIO_DOWNLOAD_ALLOW_HOSTS=",".join(settings.STUDIO_DOWNLOAD_ALLOW_HOSTS),
        STUDIO_LEASE_SECONDS=2,
        STUDIO_SUBMIT_LEASE_SECONDS=2,
        STUDIO_Q_WORKERS=2,
        STUDIO_FAILPOINT_DIR=tmp_path,
    )
    env.pop("STUDIO_FAILPOINTS", None)
    if failpoint:
        env["STUDIO_FAILPOINTS"] = failpoint
    return env


def start_cluster(env, log=None):
    """The cluster's output goes to a pipe (stop() returns it), or to the file `log` to read as it runs."""
    command = [sys.executable, "manage.py", "qcluster"]
    if log is None:
        return subprocess.Popen(command, cwd=ROOT, env=env, start_new_session=True, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
    with open(log, "w") as output:
        return subprocess.Popen(command, cwd=ROOT, env=env, start_new_session=True, stdout=output,
                                stderr=subprocess.STDOUT)


def stop(process):
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            return process.communicate(timeout=30)[0]
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
    return process.communicate()[0]


def settled(job):
    """Nothing more will happen to the job by itself. An ambiguous qingbo job may still be settled by its
    callback (the poller then looks its task up): it is settled once nothing is due."""
    return job.state in TERMINAL_STATES or (job.state == JobState.SUBMIT_UNKNOWN and job.next_poll_at is None)


def callbacks_delivered(sandbox):
    """Every sandbox task has ended and had a second to call back (qingbo's callback can settle a job)."""
    with sandbox.state.lock:
        tasks = list(sandbox.state.tasks.values())
    return all(time.monotonic() - task.created > task.job_seconds + 1.0 for task in tasks)


def wait_until(predicate, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.25)
    return False


# Processes, from /proc ---------------------------------------------------------------------------------


def process_stat(pid):
    """(state, process group, start time) of a process, or None once it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2:].split()  # the name, in parentheses, may hold spaces
    return fields[0], int(fields[2]), int(fields[19])


def descendants(pid):
    """Every process started from `pid`, its children's children too, as (pid, start time) so that a
    reused pid is not taken for the same process."""
    found = []
    for children in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            child_pids = [int(child) for child in children.read_text().split()]
        except OSError:
            continue
        for child in child_pids:
            stat = process_stat(child)
            if stat:
                found += [(child, stat[2]), *descendants(child)]
    return found


def alive(process):
    """Whether (pid, start time) still runs: a zombie has ended."""
    pid, started = process
    stat = process_stat(pid)
    return stat is not None and stat[0] != "Z" and stat[2] == started


def group_members(pgid):
    """The live processes of a process group."""
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            stat = process_stat(entry.name)
            if stat and stat[1] == pgid and stat[0] != "Z":
                members.append(int(entry.name))
    return members
