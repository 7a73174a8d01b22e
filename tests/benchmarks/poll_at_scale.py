"""Polling at scale: N jobs in flight against the sandbox, SQLite and the ORM broker, on this machine.

    .venv/bin/python -m tests.benchmarks.poll_at_scale [--jobs 1000] [--interval 5] [--job-seconds 60]
    .venv/bin/python -m tests.benchmarks.poll_at_scale --find-max        # 250, 500, 1000, … until lag p95 > 1 s
    .venv/bin/python -m tests.benchmarks.poll_at_scale --webhooks        # callback to database latency (qingbo)

The world is built from nothing on every run: a temporary STUDIO_DATA_DIR (so a fresh SQLite file),
`migrate`, one project, one ProviderAccount per protocol (qingbo, apimp, uniall, veoquery) with
`poll_seconds = --interval`, and three separate processes, each in its own process group:

* the sandbox (tests/benchmarks/timed_sandbox.py: the studio's sandbox server, tiny clips, with a
  wall-clock time on every request-log entry and downloads logged; see that file for why);
* the studio's real `manage.py qcluster` (django-q2 with the ORM broker, plus the poller), on the same
  SQLite file, with production settings (DEBUG off) unless --debug;
* in --webhooks mode, `manage.py runserver --noreload` as the studio's web app (STUDIO_PUBLIC_URL).

How jobs are put in flight (polling mode). The benchmark measures polling, not submission, so it submits
every job itself, before the cluster starts, with the studio's own code: `services.job_create(...,
enqueue=False)` then `services.job_submit(job)` (8 threads), which POSTs to the sandbox through the real
provider adapters and leaves each job `submitted` with its provider task id and data. Jobs are then parked
(next_poll_at a day ahead), the cluster is started, and once its poller is up the jobs' `next_poll_at`
are set evenly over one interval starting a second later, in shuffled order: the steady load of jobs
that arrived at random times. Polling-mode jobs have no webhook token, so no callback can wake them.

Every sandbox task runs `--job-seconds` plus a random 0..`--completion-spread` seconds from its
creation, so with the defaults (60 + 0..60 s) all 1,000 jobs are in flight for roughly the first 45 s of
polling (the "steady" phase: every figure with that label comes from it), and then finish at about
N / spread per second (17/s for 1,000 jobs), each with a download, a probe and a poster (the "completion"
phase). That is the completion rate of a steady state in which jobs last about a minute. The run ends
when every job has ended.

What is measured, from outside the cluster (the sandbox's log and the database, never the cluster's code):

* schedule lag of a poll = time the sandbox received the status GET − the job's `next_poll_at` at that
  moment. The due time is recovered exactly: every poll writes a new `next_poll_at` together with
  `poll_attempts + 1` (services.schedule_poll), so each status GET of a job was due at the value the row
  held under the attempts count just before it. A thread of this script reads `(id, poll_attempts, next_poll_at)` of every job
  every 0.5 s (one SELECT on its own read-only connection; WAL readers never block the cluster); a value
  lives for a whole interval, so none is missed, and a poll whose due time was not seen is counted as
  unresolved, not guessed. (Precisely: the first poll is due at the time this script wrote; the k-th
  at the value held while poll_attempts was its value at that moment plus k − 1.) The arrival time is the sandbox's time.time() when it routed the request (same
  clock as the database's timestamps), so the error is well under a millisecond; lag includes the
  poller's HTTP round trip up to the sandbox's router.
* detection latency = the JobEvent time of the job's transition to `downloading` − the sandbox task's
  `completes_at` (created_at + job seconds).
* requests per job against the ideal = (1 submit + status GETs + downloads actually received by the
  sandbox) / (1 submit + ceil((completes_at − first due time) / interval) + 1 status GETs + 1 download),
  which is what a punctual poller with the same first poll would need.
* cluster CPU per poll = CPU seconds (utime + stime, /proc, summed over the qcluster process group)
  during the steady phase ÷ status GETs received in it. The cluster's idle rate (django-q2's own loops,
  measured for a few seconds before polling starts) is reported too.
"""

import argparse
import json
import logging
import math
import os
import random
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone as dt_timezone
from pathlib import Path

import httpx

from tests.benchmarks import harness
from tests.benchmarks.harness import percentile

PROTOCOL_MODELS = {
    "qingbo": ("veo-3.0", {"duration": 4}),
    "apimp": ("veo-3.0-fast-generate-001", {"duration": 4}),
    "uniall": ("viduq3t-540p", {"duration": 2}),
    "veoquery": ("veo3-fast", {}),
}
TARGET_LAG_P95 = 1.0
TARGET_REQUEST_RATIO = 1.1
TARGET_WEBHOOK_P95 = 1.0
SNAPSHOT_SECONDS = 0.5
SUBMIT_THREADS = 8
IDLE_BASELINE_SECONDS = 4.0
PROGRESS_EVERY_SECONDS = 10.0
FIND_MAX_START = 250


# The world ---------------------------------------------------------------------------------------------


def setup_django(env):
    os.environ.update(env)
    import django

    django.setup()
    from django.core.management import call_command

    # This process submits the jobs; its per-request INFO lines would only bury the report.
    logging.getLogger("studio").setLevel(logging.WARNING)

    call_command("migrate", verbosity=0)


def start_sandbox(world, job_seconds, completion_spread):
    process = world.start("sandbox", [sys.executable, "-m", "tests.benchmarks.timed_sandbox", "--port", "0",
                                      "--job-seconds", str(job_seconds), "--tiny-videos", "--shared-clip",
                                      "--completion-spread", str(completion_spread),
                                      "--media-dir", str(world.dir / "sandbox")], dict(os.environ))
    world.wait_for_log(process, "Sandbox listening on ", timeout=60)
    line = next(line for line in world.log_text(process).splitlines() if "Sandbox listening on " in line)
    return process, line.split("Sandbox listening on ", 1)[1].strip()


def start_cluster(world, env):
    process = world.start("cluster", [sys.executable, "manage.py", "qcluster"], env)
    world.wait_for_log(process, "started with", timeout=90)
    return process


def start_web(world, env, port):
    process = world.start("web", [sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"], env)
    harness.wait_for(lambda: _answers(f"http://127.0.0.1:{port}/login/"), timeout=60, what="the web server")
    return process


def _answers(url):
    try:
        httpx.get(url, timeout=1.0)
        return True
    except httpx.HTTPError:
        return False


def make_accounts(protocols, sandbox_url, poll_seconds):
    from studio.projects.models import Project
    from studio.providers.models import ProviderAccount

    project = Project.objects.create(name="Benchmark", slug="benchmark")
    accounts = {}
    for protocol in protocols:
        account = ProviderAccount(provider=protocol, name=f"bench-{protocol}", base_url=f"{sandbox_url}/{protocol}",
                                  poll_seconds=poll_seconds)
        account.set_api_key(f"sk-sandbox-bench-{protocol}")
        account.save()
        accounts[protocol] = account
    return project, accounts


def create_jobs(project, accounts, count, *, webhooks):
    from studio.jobs import services
    from studio.jobs.models import Job

    protocols = list(accounts)
    ids = []
    for n in range(count):
        protocol = protocols[n % len(protocols)]
        model, params = PROTOCOL_MODELS[protocol]
        job = services.job_create(project=project, user=None, account=accounts[protocol], model=model,
                                  params={"prompt": f"Benchmark clip of a lighthouse, {protocol}", **params},
                                  enqueue=False)
        ids.append(job.pk)
    if not webhooks:
        Job.objects.filter(pk__in=ids).update(webhook_token="")
    return ids


def submit_jobs(ids):
    """Send every job with the studio's own job_submit, from a few threads."""
    from django.db import connections

    from studio.jobs import services
    from studio.jobs.models import Job

    began = time.monotonic()

    def submit(pk):
        try:
            services.job_submit(Job.objects.select_related("account").get(pk=pk))
        finally:
            connections.close_all()

    with ThreadPoolExecutor(SUBMIT_THREADS) as pool:
        list(pool.map(submit, ids))
    return time.monotonic() - began


def job_states(ids):
    from studio.jobs.models import Job

    return Counter(Job.objects.filter(pk__in=ids).values_list("state", flat=True))


def set_due_times(due_by_id):
    """Write next_poll_at for many jobs in one transaction (the cluster waits a moment for the write lock)."""
    from django.db import connection, transaction

    from studio.jobs.models import Job

    rows = [(connection.ops.adapt_datetimefield_value(datetime.fromtimestamp(when, dt_timezone.utc)), pk)
            for pk, when in due_by_id.items()]
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.executemany(f"UPDATE {Job._meta.db_table} SET next_poll_at = %s WHERE id = %s", rows)


def db_time(value):
    """A datetime column as SQLite holds it (naive UTC text) to a Unix time."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.replace(tzinfo=value.tzinfo or dt_timezone.utc).timestamp()
    return datetime.fromisoformat(value).replace(tzinfo=dt_timezone.utc).timestamp()


# Watching from outside ------------------------------------------------------------------------------


class Monitor(threading.Thread):
    """Every SNAPSHOT_SECONDS: CPU of the cluster, sandbox and web process groups and of this process, and
    the (poll_attempts, next_poll_at) of every job, read on a read-only SQLite connection."""

    def __init__(self, db_path, groups):
        super().__init__(name="monitor", daemon=True)
        self.db_path = db_path
        self.groups = groups  # name -> pgid
        self.stopping = threading.Event()
        self.cpu = []  # (t, {group: seconds}, self seconds)
        self.per_pid = []  # (t, {pid: seconds}) of the cluster
        self.threads = []  # (t, {tid: seconds}) of the cluster's main process
        self.due = defaultdict(dict)  # job id -> {poll_attempts: next_poll_at as Unix time}
        self.snapshot_seconds = []

    def run(self):
        db = sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, timeout=30)
        try:
            while not self.stopping.is_set():
                self.sample(db)
                self.stopping.wait(SNAPSHOT_SECONDS)
            self.sample(db)
        finally:
            db.close()

    def sample(self, db):
        now = time.time()
        cpu = {}
        for name, pgid in self.groups.items():
            by_pid = harness.group_cpu(pgid)
            cpu[name] = sum(by_pid.values())
            if name == "cluster":
                self.per_pid.append((now, by_pid))
                self.threads.append((now, harness.thread_cpu(pgid)))
        self.cpu.append((now, cpu, harness.self_cpu()))
        began = time.perf_counter()
        rows = db.execute("SELECT id, poll_attempts, next_poll_at FROM jobs_job WHERE next_poll_at IS NOT NULL").fetchall()
        self.snapshot_seconds.append(time.perf_counter() - began)
        for pk, attempts, value in rows:
            seen = self.due[pk]
            if attempts not in seen:
                seen[attempts] = db_time(value)

    def stop(self):
        self.stopping.set()
        self.join(timeout=30)

    def cpu_at(self, when, name):
        """A group's CPU seconds at a moment, interpolated between samples."""
        series = [(t, cpu.get(name, 0.0)) for t, cpu, _ in self.cpu]
        return _interpolate(series, when)

    def self_cpu_at(self, when):
        return _interpolate([(t, own) for t, _, own in self.cpu], when)


def _interpolate(series, when):
    if not series:
        return 0.0
    if when <= series[0][0]:
        return series[0][1]
    for (t0, v0), (t1, v1) in zip(series, series[1:]):
        if t0 <= when <= t1:
            return v0 + (v1 - v0) * ((when - t0) / (t1 - t0) if t1 > t0 else 0)
    return series[-1][1]


def wait_until_settled(ids, *, deadline, monitor, began):
    from studio.jobs.models import TERMINAL_STATES

    last_report = time.monotonic()
    while True:
        states = job_states(ids)
        unfinished = sum(count for state, count in states.items() if state not in TERMINAL_STATES)
        if not unfinished:
            return True, states
        if time.time() > deadline:
            return False, states
        if time.monotonic() - last_report >= PROGRESS_EVERY_SECONDS:
            last_report = time.monotonic()
            recent = [s for s in monitor.cpu if s[0] > time.time() - PROGRESS_EVERY_SECONDS]
            busy = ""
            if len(recent) > 1:
                span = recent[-1][0] - recent[0][0]
                busy = "; CPU (cores): " + ", ".join(
                    f"{name} {(recent[-1][1][name] - recent[0][1][name]) / span:.2f}" for name in recent[-1][1])
            print(f"  +{time.time() - began:5.0f} s  {dict(states)}{busy}", flush=True)
        time.sleep(1.0)


def fetch_sandbox(url):
    with httpx.Client(timeout=120.0) as http:
        tasks = http.get(f"{url}/_sandbox/tasks").json()["tasks"]
        requests = http.get(f"{url}/_sandbox/requests").json()["requests"]
    return {task["id"]: task for task in tasks}, requests


def downloading_times(ids):
    """When each job moved to `downloading` (its first such transition), as Unix time."""
    from studio.jobs.models import JobEvent

    found = {}
    events = (JobEvent.objects.filter(job_id__in=ids, to_state="downloading").exclude(from_state="downloading")
              .order_by("created_at").values_list("job_id", "created_at"))
    for job_id, created_at in events:
        found.setdefault(job_id, created_at.timestamp())
    return found


def task_of(entry):
    if entry.get("kind") == "download":
        return entry["task"]
    return entry["query"].get("id") or entry["path"].rstrip("/").rsplit("/", 1)[-1]


# One run ------------------------------------------------------------------------------------------------


def run(options):
    """Build a world, run it, and return the figures as a dict."""
    began_wall = time.time()
    webhooks = options.webhooks
    protocols = ["qingbo"] if webhooks else options.protocols
    with harness.World(keep=options.keep) as world:
        web_port = harness.free_port() if webhooks else None
        env = harness.studio_env(world.dir, debug=options.debug,
                                 STUDIO_POLL_THREADS=options.poll_threads,
                                 STUDIO_PUBLIC_URL=f"http://127.0.0.1:{web_port}" if webhooks else "http://127.0.0.1:9")
        os.environ.update(env)
        sandbox, sandbox_url = start_sandbox(world, options.job_seconds, options.completion_spread)
        env["STUDIO_SANDBOX_URL"] = sandbox_url
        setup_django(env)
        from django.conf import settings

        from studio.jobs.models import Job

        db_path = settings.DATABASES["default"]["NAME"]
        project, accounts = make_accounts(protocols, sandbox_url, options.interval)
        print(f"world: {world.dir}; sandbox {sandbox_url}; {options.jobs} jobs on {', '.join(protocols)}; "
              f"interval {options.interval} s; job seconds {options.job_seconds}", flush=True)
        groups = {"sandbox": sandbox.pid}
        web = cluster = None
        if webhooks:
            web = start_web(world, env, web_port)
            cluster = start_cluster(world, env)
            groups.update(cluster=cluster.pid, web=web.pid)

        ids = create_jobs(project, accounts, options.jobs, webhooks=webhooks)
        created = time.time()
        monitor = Monitor(db_path, groups) if webhooks else None
        if monitor:
            monitor.start()
        submit_seconds = submit_jobs(ids)
        states = job_states(ids)
        print(f"submitted {len(ids)} jobs in {submit_seconds:.1f} s (created in {created - began_wall:.1f} s "
              f"from start): {dict(states)}", flush=True)
        tasks, _ = fetch_sandbox(sandbox_url)

        first_due, base_attempts = {}, {}
        idle_rate = None
        if not webhooks:
            park = time.time() + 86400
            set_due_times({pk: park for pk in ids})
            cluster = start_cluster(world, env)
            groups["cluster"] = cluster.pid
            monitor = Monitor(db_path, groups)
            monitor.start()
            time.sleep(IDLE_BASELINE_SECONDS)
            idle_began, idle_ended = monitor.cpu[0][0], time.time()
            idle_rate = (monitor.cpu_at(idle_ended, "cluster") - monitor.cpu_at(idle_began, "cluster")) / (
                idle_ended - idle_began)
            start_at = time.time() + 1.0
            order = list(ids)
            random.Random(options.seed).shuffle(order)
            first_due = {pk: start_at + options.interval * rank / len(order) for rank, pk in enumerate(order)}
            set_due_times(first_due)
            base_attempts = dict(Job.objects.filter(pk__in=ids).values_list("pk", "poll_attempts"))
            poll_start = start_at
        else:
            poll_start = created

        last_completion = max(task["completes_at"] for task in tasks.values())
        deadline = last_completion + max(90.0, 8 * options.interval)
        settled, states = wait_until_settled(ids, deadline=deadline, monitor=monitor, began=poll_start)
        ended = time.time()
        monitor.stop()
        tasks, log = fetch_sandbox(sandbox_url)
        jobs = list(Job.objects.filter(pk__in=ids).values("pk", "provider_task_id", "state", "finished_at",
                                                          "error_message"))
        downloading = downloading_times(ids)
        stopping = time.monotonic()
        for process in [cluster, web]:
            if process is not None:
                world.stop(process)
        cluster_log = world.log_text(cluster)
        world.stop(sandbox)
        print(f"polling began {poll_start - began_wall:.1f} s after start; all settled {ended - poll_start:.1f} s "
              f"later; processes stopped in {time.monotonic() - stopping:.1f} s", flush=True)

        figures = analyse(options, jobs=jobs, tasks=tasks, log=log, monitor=monitor, downloading=downloading,
                          first_due=first_due, base_attempts=base_attempts, poll_start=poll_start, ended=ended)
        figures.update(jobs=options.jobs, interval=options.interval, job_seconds=options.job_seconds,
                       completion_spread=options.completion_spread,
                       protocols=protocols, webhooks=webhooks, settled=settled, states=dict(states),
                       submit_seconds=round(submit_seconds, 1), idle_cluster_cores=idle_rate,
                       run_seconds=round(time.time() - began_wall, 1), debug=options.debug,
                       poll_threads=options.poll_threads,
                       cluster_errors=[line for line in cluster_log.splitlines()
                                       if " ERROR " in line or "Traceback" in line][:10],
                       failed_jobs=[j["error_message"] for j in jobs if j["state"] == "failed"][:5])
        return figures


def analyse(options, *, jobs, tasks, log, monitor, downloading, first_due, base_attempts, poll_start, ended):
    interval = options.interval
    job_by_task = {job["provider_task_id"]: job for job in jobs if job["provider_task_id"]}
    statuses, downloads, submits = defaultdict(list), Counter(), 0
    for entry in log:
        if entry["method"] == "POST":
            submits += 1
            continue
        task_id = task_of(entry)
        if task_id not in job_by_task:
            continue
        if entry.get("kind") == "download":
            downloads[task_id] += 1
        else:
            statuses[task_id].append(entry["at"])

    first_completion = min(task["completes_at"] for task in tasks.values())
    lags = {"steady": [], "completion": []}
    samples = []  # (arrival, lag) of every resolved poll, for --raw
    unresolved = 0
    actual = ideal = 0
    per_job_ratio = []
    detection, stored = [], []
    for task_id, job in job_by_task.items():
        pk = job["pk"]
        task = tasks[task_id]
        completes = task["completes_at"]
        gets = sorted(statuses[task_id])
        if not options.webhooks:
            due_by_attempt = monitor.due.get(pk, {})
            for k, arrived in enumerate(gets, start=1):
                due = first_due[pk] if k == 1 else due_by_attempt.get(base_attempts[pk] + k - 1)
                if due is None:
                    unresolved += 1
                    continue
                lags["steady" if arrived < first_completion else "completion"].append(arrived - due)
                samples.append((round(arrived - poll_start, 3), round(arrived - due, 4)))
        first = first_due.get(pk)
        needed_polls = 1 if first is None or completes <= first else math.ceil((completes - first) / interval) + 1
        job_actual = 1 + len(gets) + downloads[task_id]
        job_ideal = 1 + needed_polls + 1
        actual, ideal = actual + job_actual, ideal + job_ideal
        per_job_ratio.append(job_actual / job_ideal)
        if pk in downloading:
            detection.append(downloading[pk] - completes)
        if job["finished_at"] is not None and job["state"] == "succeeded":
            stored.append(job["finished_at"].timestamp() - completes)

    steady_end = min(first_completion, ended)
    steady_polls = sum(1 for gets in statuses.values() for at in gets if poll_start <= at < steady_end)
    all_polls = sum(len(gets) for gets in statuses.values())
    figures = {
        "polls": all_polls, "downloads": sum(downloads.values()), "submits": submits,
        "unresolved_lags": unresolved,
        "detection": summary(detection), "stored_after_completion": summary(stored),
        "requests_actual": actual, "requests_ideal": ideal,
        "request_ratio": actual / ideal if ideal else None,
        "request_ratio_worst_job": max(per_job_ratio) if per_job_ratio else None,
        "snapshot_ms_p95": 1000 * (percentile(monitor.snapshot_seconds, 95) or 0),
        "first_completion_after_start": first_completion - poll_start,
        "lag_timeline": lag_timeline(samples),
    }
    if options.raw:
        options.raw.write_text(json.dumps({"lags": sorted(samples), "cpu": monitor.cpu}))
    for phase, values in lags.items():
        figures[f"lag_{phase}"] = summary(values)
    figures["lag_all"] = summary(lags["steady"] + lags["completion"])

    window = steady_end - poll_start
    figures["steady_seconds"] = round(window, 1)
    figures["steady_polls"] = steady_polls
    figures["required_poll_rate"] = len(job_by_task) / interval
    if window > 0:
        cpu = {name: monitor.cpu_at(steady_end, name) - monitor.cpu_at(poll_start, name) for name in monitor.groups}
        figures["steady_poll_rate"] = steady_polls / window
        figures["steady_cores"] = {name: seconds / window for name, seconds in cpu.items()}
        figures["steady_cores"]["benchmark"] = (monitor.self_cpu_at(steady_end) - monitor.self_cpu_at(poll_start)) / window
        figures["cpu_ms_per_poll"] = 1000 * cpu["cluster"] / steady_polls if steady_polls else None
        figures["cluster_breakdown"] = cluster_breakdown(monitor, poll_start, steady_end, window)
    whole = ended - poll_start
    cluster_whole = monitor.cpu_at(ended, "cluster") - monitor.cpu_at(poll_start, "cluster")
    figures["whole_cluster_cpu_seconds"] = cluster_whole
    figures["whole_cluster_cores"] = cluster_whole / whole if whole > 0 else None
    figures["cpu_ms_per_request_whole"] = 1000 * cluster_whole / (all_polls + sum(downloads.values()) or 1)
    return figures


def lag_timeline(samples, bucket=5.0):
    """p95 lag of the polls made in each `bucket` seconds since polling began: shows a backlog building."""
    buckets = defaultdict(list)
    for arrived, lag in samples:
        buckets[int(arrived // bucket)].append(lag)
    return [(index * bucket, len(lags), percentile(lags, 95)) for index, lags in sorted(buckets.items())]


def cluster_breakdown(monitor, start, end, window):
    """Cores used in the window by the cluster's main process (split into its main thread, the poller's
    claiming loop, and its other threads, the poll steps) and by django-q2's child processes together."""

    def nearest(series, when):
        return min(series, key=lambda sample: abs(sample[0] - when))[1]

    leader = monitor.groups["cluster"]
    before, after = nearest(monitor.per_pid, start), nearest(monitor.per_pid, end)
    main = after.get(leader, 0) - before.get(leader, 0)
    children = sum(after.get(pid, 0) - before.get(pid, 0) for pid in after if pid != leader)
    threads_before, threads_after = nearest(monitor.threads, start), nearest(monitor.threads, end)
    loop = threads_after.get(leader, 0) - threads_before.get(leader, 0)
    return {"main_process": main / window, "poller_loop_thread": loop / window,
            "poll_step_threads": (main - loop) / window, "django_q_children": children / window,
            "django_q_child_count": len(after) - 1}


def summary(values):
    if not values:
        return {"n": 0}
    return {"n": len(values), "p50": percentile(values, 50), "p95": percentile(values, 95), "max": max(values),
            "mean": sum(values) / len(values)}


# Reporting ----------------------------------------------------------------------------------------------


def verdict(ok):
    return "PASS" if ok else "FAIL"


def fmt(value, unit="s", digits=3):
    return "—" if value is None else f"{value:.{digits}f} {unit}".strip()


def stats_line(stats, unit="s"):
    if not stats.get("n"):
        return "no samples"
    return (f"p50 {fmt(stats['p50'], unit)}   p95 {fmt(stats['p95'], unit)}   max {fmt(stats['max'], unit)}   "
            f"(n={stats['n']})")


def report(f, *, timeline=False):
    print()
    mode = "webhooks (qingbo callbacks)" if f["webhooks"] else "polling"
    print(f"== {mode}: {f['jobs']} jobs, interval {f['interval']} s, job {f['job_seconds']} s, "
          f"{f['poll_threads']} poll threads, DEBUG {'on' if f['debug'] else 'off'}, run took {f['run_seconds']} s ==")
    print(f"jobs at the end: {f['states']}" + ("" if f["settled"] else "   (NOT all finished before the deadline)"))
    if f["failed_jobs"]:
        print(f"failures: {f['failed_jobs']}")
    if f["cluster_errors"]:
        print("cluster log errors (first lines):\n  " + "\n  ".join(f["cluster_errors"]))
    rows = []
    if f["webhooks"]:
        p95 = f["detection"].get("p95")
        rows.append(("webhook completion → DB (→ downloading)", stats_line(f["detection"]),
                     f"p95 ≤ {TARGET_WEBHOOK_P95} s: {verdict(p95 is not None and p95 <= TARGET_WEBHOOK_P95)}"))
    else:
        steady = f["lag_steady"]
        p95 = steady.get("p95")
        rows.append(("schedule lag, steady (all in flight)", stats_line(steady),
                     f"p95 ≤ {TARGET_LAG_P95} s: {verdict(p95 is not None and p95 <= TARGET_LAG_P95)}"))
        rows.append(("schedule lag, completion phase", stats_line(f["lag_completion"]), ""))
        rows.append(("schedule lag, all polls", stats_line(f["lag_all"]), ""))
        rows.append(("detection latency (completion → DB)", stats_line(f["detection"]), "(no target)"))
    rows.append(("completion → video stored", stats_line(f["stored_after_completion"]), ""))
    ratio = f["request_ratio"]
    rows.append(("upstream requests / ideal",
                 f"{f['requests_actual']} / {f['requests_ideal']} = {fmt(ratio, '', 3)}  "
                 f"(worst job {fmt(f['request_ratio_worst_job'], '', 2)}; {f['submits']} submits, {f['polls']} status, "
                 f"{f['downloads']} downloads)",
                 f"≤ {TARGET_REQUEST_RATIO}: {verdict(ratio is not None and ratio <= TARGET_REQUEST_RATIO)}"))
    if not f["webhooks"]:
        rows.append(("cluster CPU per poll (steady)", fmt(f.get("cpu_ms_per_poll"), "ms", 2), ""))
        rows.append(("poll rate (steady): achieved / needed",
                     f"{fmt(f.get('steady_poll_rate'), '/s', 1)} / {fmt(f['required_poll_rate'], '/s', 1)} "
                     f"over {f['steady_seconds']} s ({f['steady_polls']} polls)", ""))
        cores = f.get("steady_cores", {})
        rows.append(("CPU cores used (steady)", ", ".join(f"{k} {v:.2f}" for k, v in cores.items()), ""))
        if "cluster_breakdown" in f:
            b = f["cluster_breakdown"]
            rows.append(("  of the cluster", f"poller loop thread {b['poller_loop_thread']:.2f}, poll step threads "
                         f"{b['poll_step_threads']:.2f}, django-q2 children ({b['django_q_child_count']}) "
                         f"{b['django_q_children']:.2f}", ""))
        rows.append(("cluster idle (before polling)", fmt(f["idle_cluster_cores"], "cores", 3), ""))
        rows.append(("cluster CPU whole run", f"{f['whole_cluster_cpu_seconds']:.1f} s "
                     f"({fmt(f['cpu_ms_per_request_whole'], 'ms', 2)} per status/download request)", ""))
        rows.append(("unresolved lag samples", str(f["unresolved_lags"]), ""))
    rows.append(("jobs submitted in", f"{f['submit_seconds']} s", ""))
    width = max(len(r[0]) for r in rows)
    for name, value, target in rows:
        print(f"{name:<{width}}  {value}   {target}".rstrip())
    if timeline and f.get("lag_timeline"):
        print(f"lag p95 per 5 s of polling (first completion at +{f['first_completion_after_start']:.0f} s):")
        print("  " + "  ".join(f"+{t:.0f}s:{p95:.2f}({n})" for t, n, p95 in f["lag_timeline"]))


# Finding the largest N ------------------------------------------------------------------------------------


def find_max(options):
    held, results = None, []
    jobs = FIND_MAX_START
    while jobs <= options.max_jobs:
        out = Path(f"/tmp/poll_at_scale-{os.getpid()}-{jobs}.json")
        argv = [sys.executable, "-m", "tests.benchmarks.poll_at_scale", "--jobs", str(jobs),
                "--interval", str(options.interval), "--job-seconds", str(options.job_seconds),
                "--completion-spread", str(options.completion_spread),
                "--poll-threads", str(options.poll_threads), "--json", str(out),
                "--protocols", ",".join(options.protocols)] + (["--debug"] if options.debug else [])
        print(f"\n--- N = {jobs} ---", flush=True)
        child = subprocess.Popen(argv, cwd=harness.ROOT)
        try:
            child.wait()
        except BaseException:
            child.terminate()
            child.wait(timeout=120)
            raise
        if child.returncode != 0 or not out.exists():
            print(f"the run with N = {jobs} did not complete (exit {child.returncode}); stopping")
            break
        figures = json.loads(out.read_text())
        out.unlink()
        results.append(figures)
        p95 = figures["lag_steady"].get("p95")
        if p95 is None or p95 > TARGET_LAG_P95 or not figures["settled"]:
            break
        held = jobs
        jobs *= 2
    print("\n== find-max summary ==")
    print(f"{'N':>6}  {'lag p50':>8}  {'lag p95':>8}  {'lag max':>8}  {'req/ideal':>9}  {'ms/poll':>7}  "
          f"{'cluster cores':>13}  {'detect p95':>10}")
    for f in results:
        lag = f["lag_steady"]
        print(f"{f['jobs']:>6}  {lag.get('p50', 0):8.3f}  {lag.get('p95', 0):8.3f}  {lag.get('max', 0):8.3f}  "
              f"{f['request_ratio']:9.3f}  {f.get('cpu_ms_per_poll') or 0:7.2f}  "
              f"{f.get('steady_cores', {}).get('cluster', 0):13.2f}  {f['detection'].get('p95', 0):10.3f}")
    print(f"largest N that held lag p95 ≤ {TARGET_LAG_P95} s (doubling from {FIND_MAX_START}): {held}")
    return held


# Command line ----------------------------------------------------------------------------------------------


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, help="jobs in flight (default 1000; 200 with --webhooks)")
    parser.add_argument("--interval", type=float, help="the accounts' poll_seconds (default 5; 60 with --webhooks)")
    parser.add_argument("--job-seconds", type=float, help="how long each sandbox task runs (default 60; 20 with --webhooks)")
    parser.add_argument("--find-max", action="store_true", help="double N from 250 until steady lag p95 > 1 s")
    parser.add_argument("--max-jobs", type=int, default=16000, help="stop --find-max here")
    parser.add_argument("--webhooks", action="store_true", help="measure callback → database latency (qingbo)")
    parser.add_argument("--protocols", type=lambda v: [p for p in v.split(",") if p],
                        default=list(PROTOCOL_MODELS), help="comma-separated, of " + ",".join(PROTOCOL_MODELS))
    parser.add_argument("--poll-threads", type=int, default=16, help="STUDIO_POLL_THREADS for the cluster")
    parser.add_argument("--completion-spread", type=float,
                        help="each task runs job-seconds plus a random 0..this many seconds, so completions arrive "
                             "at about jobs/spread per second (default 60; 20 with --webhooks)")
    parser.add_argument("--debug", action="store_true", help="run the studio with DEBUG on (off by default)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="keep the temporary data directory (and logs)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--raw", type=Path, help="write every lag sample and CPU sample here (JSON)")
    parser.add_argument("--timeline", action="store_true", help="print lag p95 per 5 s of polling")
    options = parser.parse_args(argv)
    defaults = (200, 60.0, 20.0, 20.0) if options.webhooks else (1000, 5.0, 60.0, 60.0)
    options.jobs = options.jobs or defaults[0]
    options.interval = options.interval or defaults[1]
    options.job_seconds = options.job_seconds or defaults[2]
    if options.completion_spread is None:
        options.completion_spread = defaults[3]
    unknown = set(options.protocols) - set(PROTOCOL_MODELS)
    if unknown:
        parser.error(f"unknown protocols: {', '.join(sorted(unknown))}")
    return options


def main(argv=None):
    options = parse_args(argv)
    if options.find_max:
        find_max(options)
        return
    figures = run(options)
    report(figures, timeline=options.timeline)
    if options.json:
        options.json.write_text(json.dumps(figures, default=str, indent=1))


if __name__ == "__main__":
    main()
