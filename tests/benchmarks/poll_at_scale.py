"""Polling at scale: N jobs in flight against the sandbox, SQLite and the ORM broker, on this machine.

    .venv/bin/python -m tests.benchmarks.poll_at_scale [--jobs 1000] [--interval 5] [--job-seconds 60]
    .venv/bin/python -m tests.benchmarks.poll_at_scale --find-max        # 250, 500, 1000, … until lag p95 > 1 s
    .venv/bin/python -m tests.benchmarks.poll_at_scale --webhooks        # callback to database latency (qingbo)
    .venv/bin/python -m tests.benchmarks.poll_at_scale --probe-load 20   # lag while 20 full-size videos are probed
    .venv/bin/python -m tests.benchmarks.poll_at_scale --postgres --redis --clusters 2   # the production stack

The world is built from nothing on every run: a temporary STUDIO_DATA_DIR (so a fresh SQLite file),
`migrate`, one project, one ProviderAccount per protocol (qingbo, apimp, uniall, veoquery) with
`poll_seconds = --interval`, and three separate processes, each in its own process group:

* the sandbox (tests/benchmarks/timed_sandbox.py: the studio's sandbox server, tiny clips, with a
  wall-clock time on every request-log entry and downloads logged; see that file for why);
* the studio's real `manage.py qcluster` (django-q2 with the ORM broker, plus the poller), on the same
  SQLite file, with production settings (DEBUG off) unless --debug;
* in --webhooks mode, `manage.py runserver --noreload` as the studio's web app (STUDIO_PUBLIC_URL).

How jobs are put in flight (polling mode). The benchmark measures polling, not submission, so it submits
every job itself, before the cluster starts, with the studio's own code: `services.job_create(...)` then
`poller.step_once(job)` (8 threads; in the engine before the poller made every call, `job_create(...,
enqueue=False)` and `services.job_submit(job)`), which POSTs to the sandbox through the real provider
adapters and leaves each job `submitted` with its provider task id and data. Jobs are then parked
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
  moment. The due time is recovered exactly, not guessed: every poll writes its job's next
  `next_poll_at` together with `poll_attempts + 1` (Job.schedule_next), and a thread of this script
  reads `(id, poll_attempts, next_poll_at)` of every job every 0.5 s (one SELECT on its own read-only
  connection; a WAL reader never blocks the cluster). The first poll of a job is due at the time this
  script wrote; its k-th at the value the row held under poll_attempts = (its count then) + k − 1. A value
  lives for a whole interval, so none is missed; a poll whose due time was not seen would be counted as
  unresolved. The arrival time is the sandbox's time.time() when it routed the request, on the same clock
  as the database's timestamps, so the error is well under a millisecond; lag includes the poller's own
  HTTP round trip up to the sandbox's router.
* detection latency = the JobEvent time of the job's transition to `downloading` − the sandbox task's
  `completes_at` (created_at + job seconds).
* requests per job against the ideal = (1 submit + status GETs + downloads actually received by the
  sandbox) / (1 submit + ceil((completes_at − first due time) / interval) + 1 status GETs + 1 download),
  which is what a punctual poller with the same first poll would need.
* cluster CPU per poll = CPU seconds (utime + stime, /proc, summed over the qcluster process group)
  during the steady phase ÷ status GETs received in it. The cluster's idle rate (django-q2's own loops,
  measured for a few seconds before polling starts) is reported too, and so are the CPU of the sandbox
  and of this script, the split of the cluster's CPU between the poller's claiming loop (see
  `claiming_thread`), its step threads and django-q2's processes, and what the cluster's threads were
  doing (running, or the kernel's wait channel: lock/GIL, SQLite's busy-retry sleep, network, disk) on
  average.

--probe-load N adds a ModelMax account and N Veo 3 Fast jobs on it (1080p, 8 s, with sound), submitted
with the others and polled like them, whose sandbox tasks deliver one full-size clip (rendered once, before
polling starts) and are held "running" until this script sends the sandbox SIGUSR1 at --probe-at seconds
into polling. Their next polls find them finished, so N full-size videos are downloaded, probed and
postered within about one interval while the regular jobs are all in flight. Figures:

* lag_probe_window: the lag of the regular jobs' polls due in [release, release + --probe-window], against
  lag_steady_before_probe, those due in the same length of time before the release (with the defaults,
  from the start of polling); their p95 difference, probe_p95_growth, is the figure (target ≤ 0.2 s,
  judged only when the baseline itself meets the steady target); also lag_probe_period, the polls due from
  the release until every heavy video was processed, if that took longer than the window;
* how long after the release each heavy job was found finished, its download requested, its Result row
  written and its video processed (`processed_at`; in the engine before it, probe and poster came before
  the Result row, so its `created_at`);
* the cluster's CPU in the window, against the CPU before the release.

The heavy jobs are left out of every other figure except the poll rate and the CPU per poll (their status
polls are polls like any other), and the steady-phase figures leave out the probe period: from the release
until the window has passed and every heavy video is processed.

In --webhooks mode the jobs are qingbo jobs that keep their webhook token, the studio's web app runs,
the accounts poll only every 60 s (the first poll is due 60 s after submission, after every task has
finished), and the figure is the same detection latency: completion to `downloading` in the database.
"""

import argparse
import contextlib
import inspect
import json
import logging
import math
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from datetime import timezone as dt_timezone
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
# --probe-load: full-size clips from a provider whose tasks the sandbox holds until released. Veo 3 Fast at
# 1080p, 8 s with sound: the largest clip this model makes (1080p needs 8 s), ~0.9 MB from the sandbox's
# renderer, ~0.45 CPU-seconds of probe, poster and thumbnail strip each on this machine.
HEAVY_PROVIDER = "modelmax"
HEAVY_MODEL = ("veo-3-fast", {"resolution": "1080p", "duration": 8, "audio": True, "aspect_ratio": "16:9"})
TARGET_PROBE_GROWTH = 0.2
SNAPSHOT_SECONDS = 0.5
SUBMIT_THREADS = 8
IDLE_BASELINE_SECONDS = 4.0
PROGRESS_EVERY_SECONDS = 10.0
FIND_MAX_START = 250


# The world ---------------------------------------------------------------------------------------------


def connect_read_only(database):
    """The monitor's own connection: the SQLite file read-only, or the PostgreSQL URL (autocommit)."""
    if "://" in str(database):
        import psycopg

        return psycopg.connect(str(database), autocommit=True)
    return sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=30)


@contextlib.contextmanager
def database_servers(world, options):
    """With --postgres and --redis, a PostgreSQL and a Redis of the benchmark's own (Debian's packages, as the
    test suite starts them: tests/stack.py), on throwaway directories in the world; {} otherwise."""
    from tests import stack

    with contextlib.ExitStack() as servers:
        env = {}
        if options.postgres:
            # Its own folder: the world's is private to this user, and PostgreSQL may run as another.
            folder = Path(tempfile.mkdtemp(prefix="studio-bench-pg-"))
            servers.callback(shutil.rmtree, folder, ignore_errors=True)
            url = servers.enter_context(stack.postgresql(folder))
            import psycopg

            with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as admin:
                admin.execute("CREATE DATABASE studio")
            env["DATABASE_URL"] = url
        if options.redis:
            folder = world.dir / "redis"
            folder.mkdir()
            env["REDIS_URL"] = servers.enter_context(stack.redis(folder))
        yield env


def setup_django(env):
    os.environ.update(env)
    import django

    django.setup()
    from django.core.management import call_command

    # This process submits the jobs; its per-request INFO lines would only bury the report.
    logging.getLogger("studio").setLevel(logging.WARNING)

    call_command("migrate", verbosity=0)


def start_sandbox(world, job_seconds, completion_spread, *, nagle=False, heavy=False):
    process = world.start("sandbox", [sys.executable, "-m", "tests.benchmarks.timed_sandbox", "--port", "0",
                                      "--job-seconds", str(job_seconds), "--tiny-videos", "--shared-clip",
                                      "--completion-spread", str(completion_spread),
                                      "--media-dir", str(world.dir / "sandbox")]
                          + (["--nagle"] if nagle else []) + (["--heavy-provider", HEAVY_PROVIDER] if heavy else []),
                          dict(os.environ))
    world.wait_for_log(process, "Sandbox listening on ", timeout=60)
    line = next(line for line in world.log_text(process).splitlines() if "Sandbox listening on " in line)
    return process, line.split("Sandbox listening on ", 1)[1].strip()


def start_cluster(world, env, number=1):
    process = world.start(f"cluster{number}", [sys.executable, "manage.py", "qcluster"], env)
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


def create_jobs(project, accounts, count, *, webhooks, models=PROTOCOL_MODELS):
    from studio.jobs import services
    from studio.jobs.models import Job

    # The engine before the poller sent every job queued a submit task unless told not to; this script sends.
    extra = {"enqueue": False} if "enqueue" in inspect.signature(services.job_create).parameters else {}
    protocols = list(accounts)
    ids = []
    for n in range(count):
        protocol = protocols[n % len(protocols)]
        model, params = models[protocol]
        job = services.job_create(project=project, user=None, account=accounts[protocol], model=model,
                                  params={"prompt": f"Benchmark clip of a lighthouse, {protocol}", **params}, **extra)
        ids.append(job.pk)
    if not webhooks:
        Job.objects.filter(pk__in=ids).update(webhook_token="")
    return ids


def submitter():
    """The studio's own way to send one job from a script: the poller's step (which the poller now makes for
    every provider call), or, in the engine before it, services.job_submit."""
    try:
        from studio.jobs.poller import step_once
    except ImportError:
        from studio.jobs.services import job_submit

        return job_submit
    return step_once


def submit_jobs(ids):
    """Send every job with the studio's own code, from a few threads."""
    from django.db import connections

    from studio.jobs.models import Job

    send = submitter()
    began = time.monotonic()

    def submit(pk):
        try:
            send(Job.objects.select_related("account").get(pk=pk))
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
        self.groups = groups  # name -> [pgid, …] ("cluster" may be several qcluster processes)
        self.stopping = threading.Event()
        self.cpu = []  # (t, {group: seconds}, self seconds)
        self.per_pid = []  # (t, {pid: seconds}) of the cluster
        self.threads = []  # (t, {pid: {tid: seconds}}) of each cluster's main process
        self.waits = []  # (t, Counter of what the main process's poll threads are doing)
        self.due = defaultdict(dict)  # job id -> {poll_attempts: next_poll_at as Unix time}
        self.snapshot_seconds = []
        self.connections_peak = None  # PostgreSQL: the most sessions on the studio's database at once

    def run(self):
        db = connect_read_only(self.db_path)
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
        for name, pgids in self.groups.items():
            by_pid = {pid: seconds for pgid in pgids for pid, seconds in harness.group_cpu(pgid).items()}
            cpu[name] = sum(by_pid.values())
            if name == "cluster":
                self.per_pid.append((now, by_pid))
                self.threads.append((now, {pgid: harness.thread_cpu(pgid) for pgid in pgids}))
                self.waits.append((now, Counter(label for pgid in pgids
                                                for tid, label in harness.thread_states(pgid).items()
                                                if tid != pgid)))
        self.cpu.append((now, cpu, harness.self_cpu()))
        if not isinstance(db, sqlite3.Connection):
            (sessions,) = db.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                                     "AND pid <> pg_backend_pid()").fetchone()
            self.connections_peak = max(self.connections_peak or 0, sessions)
        began = time.perf_counter()
        rows = db.execute(
            "SELECT id, poll_attempts, next_poll_at FROM jobs_job WHERE next_poll_at IS NOT NULL").fetchall()
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
    """The sandbox's tasks by id, and its log: every API call, and every video download as
    {"kind": "download", "task": id, "at": …} (from the stock download log where the sandbox has one)."""
    with httpx.Client(timeout=120.0) as http:
        tasks = http.get(f"{url}/_sandbox/tasks").json()["tasks"]
        requests = http.get(f"{url}/_sandbox/requests").json()["requests"]
        answer = http.get(f"{url}/_sandbox/downloads")
    if answer.status_code == 200:
        requests += [{"kind": "download", "task": entry["task_id"], "at": entry["at"], "method": "GET",
                      "provider": entry["provider"], "path": entry["path"]} for entry in answer.json()["downloads"]]
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


def classify(entry):
    """(what, task id) of a logged request: what is "submit", "status", "result" (ModelMax's billed fetch of a
    finished result), "download" or "other" (ModelMax's content route, logged as a download too; unrouted)."""
    if entry.get("kind") == "download":
        return "download", entry["task"]
    if entry.get("unrouted"):
        return "other", None
    if entry["method"] == "POST":
        return "submit", None
    parts = entry["path"].rstrip("/").split("/")
    if entry["provider"] == "modelmax":
        if parts[-1] == "status":
            return "status", parts[-2]
        return ("other", None) if "content" in parts else ("result", parts[-1])
    return "status", entry["query"].get("id") or parts[-1]


# One run ------------------------------------------------------------------------------------------------


def run(options):
    """Build a world, run it, and return the figures as a dict."""
    began_wall = time.time()
    webhooks = options.webhooks
    protocols = ["qingbo"] if webhooks else options.protocols
    heavy = options.probe_load > 0
    with harness.World(keep=options.keep) as world, database_servers(world, options) as servers:
        web_port = harness.free_port() if webhooks else None
        env = harness.studio_env(world.dir, debug=options.debug,
                                 STUDIO_POLL_THREADS=options.poll_threads,
                                 # Polling-mode jobs have no webhook token; port 9 (discard) answers nothing anyway.
                                 STUDIO_PUBLIC_URL=f"http://127.0.0.1:{web_port or 9}", **servers)
        os.environ.update(env)
        sandbox, sandbox_url = start_sandbox(world, options.job_seconds, options.completion_spread,
                                             nagle=options.sandbox_nagle, heavy=heavy)
        env["STUDIO_SANDBOX_URL"] = sandbox_url
        setup_django(env)
        from django.conf import settings

        from studio.jobs.models import Job

        db_path = servers.get("DATABASE_URL") or settings.DATABASES["default"]["NAME"]
        project, accounts = make_accounts(protocols + ([HEAVY_PROVIDER] if heavy else []), sandbox_url,
                                          options.interval)
        heavy_account = accounts.pop(HEAVY_PROVIDER, None)
        print(f"world: {world.dir}; sandbox {sandbox_url}; {options.jobs} jobs on {', '.join(protocols)}"
              + (f" + {options.probe_load} heavy on {HEAVY_PROVIDER} (released at +{options.probe_at:g} s)"
                 if heavy else "")
              + f"; {options.clusters} cluster(s); interval {options.interval} s; job seconds {options.job_seconds}",
              flush=True)
        groups = {"sandbox": [sandbox.pid]}
        web, clusters = None, []
        if webhooks:
            web = start_web(world, env, web_port)
            clusters = [start_cluster(world, env, n + 1) for n in range(options.clusters)]
            groups.update(cluster=[c.pid for c in clusters], web=[web.pid])

        heavy_ids = create_jobs(project, {HEAVY_PROVIDER: heavy_account}, options.probe_load, webhooks=False,
                                models={HEAVY_PROVIDER: HEAVY_MODEL}) if heavy else []
        ids = create_jobs(project, accounts, options.jobs, webhooks=webhooks)
        created = time.time()
        monitor = Monitor(db_path, groups) if webhooks else None
        if monitor:
            monitor.start()
        # The heavy jobs go first, so that their clip renders while the others are being sent.
        submit_seconds = submit_jobs(heavy_ids + ids)
        states = job_states(ids)
        print(f"submitted {len(ids)} jobs in {submit_seconds:.1f} s (created in {created - began_wall:.1f} s "
              f"from start): {dict(states)}" + (f"; heavy: {dict(job_states(heavy_ids))}" if heavy else ""),
              flush=True)
        if heavy:
            world.wait_for_log(sandbox, "heavy clip rendered", timeout=120)
        tasks, _ = fetch_sandbox(sandbox_url)

        first_due, base_attempts = {}, {}
        idle_rate = None
        release = {}
        if not webhooks:
            polled = ids + heavy_ids
            park = time.time() + 86400
            set_due_times({pk: park for pk in polled})
            clusters = [start_cluster(world, env, n + 1) for n in range(options.clusters)]
            groups["cluster"] = [c.pid for c in clusters]
            monitor = Monitor(db_path, groups)
            monitor.start()
            time.sleep(IDLE_BASELINE_SECONDS)
            idle_began, idle_ended = monitor.cpu[0][0], time.time()
            idle_rate = (monitor.cpu_at(idle_ended, "cluster") - monitor.cpu_at(idle_began, "cluster")) / (
                idle_ended - idle_began)
            start_at = time.time() + 1.0
            order = list(polled)
            random.Random(options.seed).shuffle(order)
            first_due = {pk: start_at + options.interval * rank / len(order) for rank, pk in enumerate(order)}
            set_due_times(first_due)
            base_attempts = dict(Job.objects.filter(pk__in=polled).values_list("pk", "poll_attempts"))
            poll_start = start_at
            if heavy:
                release = release_later(sandbox.pid, poll_start + options.probe_at)
                warn_unless_steady(options, tasks, poll_start)
        else:
            # Jobs keep the first poll job_submit gave them (poll_seconds later); a job still running then is
            # polled on schedule, so a punctual studio needs those polls too (see `needed_polls`).
            first_due = {pk: when.timestamp() for pk, when in
                         Job.objects.filter(pk__in=ids, next_poll_at__isnull=False).values_list("pk", "next_poll_at")}
            poll_start = created

        last_completion = max(task["completes_at"] for task in tasks.values() if task["completes_at"] is not None)
        deadline = max(last_completion, poll_start + options.probe_at) + max(90.0, 8 * options.interval)
        settled, _ = wait_until_settled(ids + heavy_ids, deadline=deadline, monitor=monitor, began=poll_start)
        ended = time.time()
        unprocessed = unprocessed_results(ids)
        if heavy:
            release["timer"].cancel()
            processed = wait_until_processed(heavy_ids, deadline=deadline)
        monitor.stop()
        tasks, log = fetch_sandbox(sandbox_url)
        jobs = list(Job.objects.filter(pk__in=ids + heavy_ids).values(
            "pk", "provider_task_id", "state", "finished_at", "error_message", "webhook_received_at"))
        downloading = downloading_times(ids + heavy_ids)
        results = result_times(ids + heavy_ids)
        stopping = time.monotonic()
        cluster_killed = any([world.stop(cluster) for cluster in clusters])
        stop_seconds = time.monotonic() - stopping
        if web is not None:
            world.stop(web)
        cluster_log = "\n".join(world.log_text(cluster) for cluster in clusters)
        world.stop(sandbox)
        print(f"polling began {poll_start - began_wall:.1f} s after start; all settled {ended - poll_start:.1f} s "
              f"later; the cluster stopped {stop_seconds:.1f} s after SIGTERM"
              + (" (it did not stop by itself: SIGKILLed)" if cluster_killed else ""), flush=True)

        heavy_tasks = {job["provider_task_id"] for job in jobs if job["pk"] in set(heavy_ids)}
        figures = analyse(options, jobs=jobs, tasks=tasks, log=log, monitor=monitor, downloading=downloading,
                          first_due=first_due, base_attempts=base_attempts, poll_start=poll_start, ended=ended,
                          results=results, heavy_tasks=heavy_tasks, release_sent=release.get("sent"))
        cluster_errors = [line for line in cluster_log.splitlines() if " ERROR " in line or "Traceback" in line]
        figures.update(jobs=options.jobs, interval=options.interval, job_seconds=options.job_seconds,
                       completion_spread=options.completion_spread,
                       protocols=protocols, webhooks=webhooks, settled=settled, states=dict(job_states(ids)),
                       submit_seconds=round(submit_seconds, 1), idle_cluster_cores=idle_rate,
                       run_seconds=round(time.time() - began_wall, 1), debug=options.debug,
                       sandbox_nagle=options.sandbox_nagle, cluster_stop_seconds=round(stop_seconds, 1),
                       cluster_killed=cluster_killed,
                       poll_threads=options.poll_threads, clusters=options.clusters,
                       cluster_errors=cluster_errors[:10], cluster_error_lines=len(cluster_errors),
                       unprocessed_at_end=unprocessed,
                       failed_jobs=[j["error_message"] for j in jobs if j["state"] == "failed"][:5])
        if heavy:
            figures.update(probe_load=options.probe_load, probe_at=options.probe_at,
                           probe_window_seconds=options.probe_window, heavy_states=dict(job_states(heavy_ids)),
                           heavy_processed=processed,
                           heavy_model=heavy_model_text())
        return figures


def heavy_model_text():
    model, params = HEAVY_MODEL
    return (f"{HEAVY_PROVIDER} {model}, {params['resolution']}, {params['duration']} s"
            + (", with sound" if params["audio"] else ""))


def release_later(sandbox_pid, when):
    """At `when`, SIGUSR1 the sandbox: every held heavy task completes at that moment. Returns a dict that then
    holds the time the signal was sent ("sent"), and the timer ("timer")."""
    release = {}

    def send():
        release["sent"] = time.time()
        try:
            os.kill(sandbox_pid, signal.SIGUSR1)
        except ProcessLookupError:  # the run ended early and stopped the sandbox
            pass

    release["timer"] = threading.Timer(max(0.0, when - time.time()), send)
    release["timer"].daemon = True
    release["timer"].start()
    return release


def warn_unless_steady(options, tasks, poll_start):
    """The probe window must fall in the steady phase, before the first regular task completes."""
    first = min(task["completes_at"] for task in tasks.values()
                if task["provider"] != HEAVY_PROVIDER and task["completes_at"] is not None)
    window_end = poll_start + options.probe_at + options.probe_window
    if window_end > first:
        print(f"WARNING: the probe window ends at +{window_end - poll_start:.1f} s, after the first regular task "
              f"completes (+{first - poll_start:.1f} s): it is not in the steady phase. Lower --probe-at or "
              f"--probe-window, or raise --job-seconds.", flush=True)


def wait_until_processed(ids, *, deadline):
    """After the jobs have ended: until every stored video of theirs has been probed and postered (when the
    Result row has `processed_at`; in the engine before it, a Result row is written only once processed)."""
    from studio.jobs.models import Result

    while has_processed_at() and Result.objects.filter(job_id__in=ids, processed_at__isnull=True).exists():
        if time.time() > deadline:
            return False
        time.sleep(0.5)
    return True


def unprocessed_results(ids):
    """Stored videos of these jobs still waiting for their probe and poster; None in the engine before
    `processed_at`, which wrote a Result row only once both were made."""
    from studio.jobs.models import Result

    if not has_processed_at():
        return None
    return Result.objects.filter(job_id__in=ids, processed_at__isnull=True).count()


def has_processed_at():
    from studio.jobs.models import Result

    return any(field.name == "processed_at" for field in Result._meta.get_fields())


def result_times(ids):
    """Job id -> (when its first Result row was written, when it was processed or None), as Unix times."""
    from studio.jobs.models import Result

    fields = ["job_id", "created_at"] + (["processed_at"] if has_processed_at() else [])
    found = {}
    for row in Result.objects.filter(job_id__in=ids).order_by("created_at").values(*fields):
        processed = row.get("processed_at", row["created_at"])
        found.setdefault(row["job_id"], (row["created_at"].timestamp(), processed and processed.timestamp()))
    return found


def analyse(options, *, jobs, tasks, log, monitor, downloading, first_due, base_attempts, poll_start, ended,
            results=None, heavy_tasks=(), release_sent=None):
    """The figures. The heavy jobs of --probe-load (`heavy_tasks`) are polled like the others, so their status
    GETs count in the poll rate and the CPU per poll; everything else about them is reported apart."""
    interval = options.interval
    job_by_task = {job["provider_task_id"]: job for job in jobs if job["provider_task_id"]}
    regular = {task_id: job for task_id, job in job_by_task.items() if task_id not in heavy_tasks}
    statuses, downloads, result_fetches = defaultdict(list), defaultdict(list), Counter()
    submits = heavy_submits = 0
    for entry in log:
        what, task_id = classify(entry)
        if what == "submit":
            if heavy_tasks and entry["provider"] == HEAVY_PROVIDER:
                heavy_submits += 1
            else:
                submits += 1
        elif task_id in job_by_task:
            if what == "download":
                downloads[task_id].append(entry["at"])
            elif what == "status":
                statuses[task_id].append(entry["at"])
            elif what == "result":
                result_fetches[task_id] += 1

    first_completion = min(tasks[task_id]["completes_at"] for task_id in regular)
    steady_end = min(first_completion, ended)
    probe = probe_period(options, tasks, heavy_tasks, results or {}, job_by_task)
    segments = steady_segments(poll_start, steady_end, probe)
    lags = {"steady": [], "completion": []}
    samples = []  # (arrival, lag) of every resolved poll, for --raw and --timeline
    polls = []  # (due, lag) of every resolved poll, for the probe figures
    unresolved = 0
    actual = ideal = 0
    per_job_ratio = []
    detection, stored, keeping = [], [], []
    callbacks, woken = [], []  # completion → callback recorded; callback recorded → downloading
    for task_id, job in regular.items():
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
                if arrived >= first_completion:
                    lags["completion"].append(arrived - due)
                elif not (probe and probe["start"] <= due < probe["end"]):
                    lags["steady"].append(arrived - due)
                samples.append((round(arrived - poll_start, 3), round(arrived - due, 4)))
                polls.append((due, arrived - due))
        first = first_due.get(pk)
        needed_polls = 1 if first is None or completes <= first else math.ceil((completes - first) / interval) + 1
        job_actual = 1 + len(gets) + len(downloads[task_id])
        job_ideal = 1 + needed_polls + 1
        actual, ideal = actual + job_actual, ideal + job_ideal
        per_job_ratio.append(job_actual / job_ideal)
        if pk in downloading:
            detection.append(downloading[pk] - completes)
        if job["webhook_received_at"] is not None:
            callback_at = job["webhook_received_at"].timestamp()
            callbacks.append(callback_at - completes)
            if pk in downloading:
                woken.append(downloading[pk] - callback_at)
        if job["finished_at"] is not None and job["state"] == "succeeded":
            stored.append(job["finished_at"].timestamp() - completes)
            if pk in downloading:
                keeping.append(job["finished_at"].timestamp() - downloading[pk])

    # Two status GETs of one job far closer together than the backoff allows (≥ 0.85 × interval): the job
    # was claimed again right after a poll, which only a claim that does not re-check the due time allows.
    repeats = sum(1 for gets in statuses.values() for a, b in zip(sorted(gets), sorted(gets)[1:])
                  if b - a < 0.5 * interval)
    all_gets = [at for gets in statuses.values() for at in gets]  # every job's: the cluster made them all
    steady_polls = sum(1 for at in all_gets if any(a <= at < b for a, b in segments))
    all_polls = sum(len(statuses[task_id]) for task_id in regular)
    all_downloads = sum(len(downloads[task_id]) for task_id in regular)
    figures = {
        "polls": all_polls, "downloads": all_downloads, "submits": submits,
        "unresolved_lags": unresolved, "repeat_polls": repeats, "connections_peak": monitor.connections_peak,
        "detection": summary(detection), "stored_after_completion": summary(stored),
        "download_step": summary(keeping),
        "callback_arrival": summary(callbacks), "callback_to_downloading": summary(woken),
        "requests_actual": actual, "requests_ideal": ideal,
        "request_ratio": actual / ideal if ideal else None,
        "request_ratio_worst_job": max(per_job_ratio) if per_job_ratio else None,
        "snapshot_ms_p95": 1000 * (percentile(monitor.snapshot_seconds, 95) or 0),
        "first_completion_after_start": first_completion - poll_start,
        "lag_timeline": lag_timeline(samples, [at - poll_start for at in downloading.values()]),
    }
    if options.raw:
        options.raw.write_text(json.dumps({"lags": sorted(samples), "cpu": monitor.cpu}))
    for phase, values in lags.items():
        figures[f"lag_{phase}"] = summary(values)
    figures["lag_all"] = summary([lag for _, lag in polls])

    window = sum(b - a for a, b in segments)
    figures["steady_seconds"] = round(window, 1)
    figures["steady_polls"] = steady_polls
    figures["required_poll_rate"] = len(job_by_task) / interval
    if window > 0:
        cpu = {name: cpu_in(monitor, name, segments) for name in monitor.groups}
        figures["steady_poll_rate"] = steady_polls / window
        figures["steady_cores"] = {name: seconds / window for name, seconds in cpu.items()}
        own = sum(monitor.self_cpu_at(b) - monitor.self_cpu_at(a) for a, b in segments)
        figures["steady_cores"]["benchmark"] = own / window
        figures["cpu_ms_per_poll"] = 1000 * cpu["cluster"] / steady_polls if steady_polls else None
        figures["cluster_breakdown"] = cluster_breakdown(monitor, segments)
    figures["thread_waits"] = {
        "steady": thread_waits(monitor, segments),
        "completion": thread_waits(monitor, [(steady_end, ended)]),
    }
    completion_polls = sum(1 for at in all_gets if at >= steady_end)
    completion_downloads = sum(1 for times in downloads.values() for at in times if at >= steady_end)
    if window > 0 and steady_polls and completion_downloads and ended > steady_end:
        completion_cpu = monitor.cpu_at(ended, "cluster") - monitor.cpu_at(steady_end, "cluster")
        figures["cpu_ms_per_download_estimate"] = 1000 * max(
            0.0, completion_cpu - completion_polls * figures["cpu_ms_per_poll"] / 1000) / completion_downloads
        figures["completion_cores"] = completion_cpu / (ended - steady_end)
    whole = ended - poll_start
    cluster_whole = monitor.cpu_at(ended, "cluster") - monitor.cpu_at(poll_start, "cluster")
    if whole > 0:
        figures["whole_cores"] = {name: (monitor.cpu_at(ended, name) - monitor.cpu_at(poll_start, name)) / whole
                                  for name in monitor.groups}
    figures["whole_cluster_cpu_seconds"] = cluster_whole
    figures["whole_cluster_cores"] = cluster_whole / whole if whole > 0 else None
    requests_whole = len(all_gets) + sum(len(times) for times in downloads.values())
    figures["cpu_ms_per_request_whole"] = 1000 * cluster_whole / (requests_whole or 1)
    if heavy_tasks:
        figures.update(probe_figures(options, probe=probe, polls=polls, poll_start=poll_start,
                                     first_completion=first_completion, monitor=monitor, release_sent=release_sent,
                                     heavy={task_id: job_by_task[task_id] for task_id in heavy_tasks
                                            if task_id in job_by_task},
                                     statuses=statuses, downloads=downloads, result_fetches=result_fetches,
                                     submits=heavy_submits, downloading=downloading, results=results or {}))
    return figures


def probe_period(options, tasks, heavy_tasks, results, job_by_task):
    """When the heavy jobs disturb the steady phase: from their release until the probe window has passed and
    every one of them is processed (or the steady phase ends). None without heavy jobs, or if never released."""
    released = [tasks[task_id]["completes_at"] for task_id in heavy_tasks if task_id in tasks]
    if not released or None in released:
        return None
    start = max(released)
    processed = [results.get(job_by_task[task_id]["pk"], (None, None))[1] for task_id in heavy_tasks]
    end = max([start + options.probe_window] + [at for at in processed if at is not None])
    return {"start": start, "end": end, "released": released}


def steady_segments(poll_start, steady_end, probe):
    """The steady phase, less the probe period: one or two [start, end) spans."""
    if probe is None:
        return [(poll_start, steady_end)]
    spans = [(poll_start, min(probe["start"], steady_end)), (probe["end"], steady_end)]
    return [(a, b) for a, b in spans if b > a]


def cpu_in(monitor, name, segments):
    return sum(monitor.cpu_at(b, name) - monitor.cpu_at(a, name) for a, b in segments)


def probe_figures(options, *, probe, polls, poll_start, first_completion, monitor, release_sent, heavy, statuses,
                  downloads, result_fetches, submits, downloading, results):
    """Lag in the probe window against the steady lag before the release, how long after it the heavy videos
    were stored and processed, and the cluster's CPU in the window."""
    figures = {"heavy_requests": {"submits": submits, "status": sum(len(statuses[t]) for t in heavy),
                                  "result_fetches": sum(result_fetches[t] for t in heavy),
                                  "downloads": sum(len(downloads[t]) for t in heavy)}}
    if probe is None:
        figures["probe_released"] = False
        return figures
    release = probe["start"]
    window_end = release + options.probe_window
    # The same length of time before the release as after it; with the defaults, all polling before it.
    baseline_start = max(poll_start, release - options.probe_window)
    before = [lag for due, lag in polls if baseline_start <= due < release]
    during = [lag for due, lag in polls if release <= due <= window_end]
    figures.update(
        probe_released=True, release_after_start=release - poll_start,
        release_spread=release - min(probe["released"]),
        release_signal_delay=None if release_sent is None else release - release_sent,
        probe_window_in_steady=window_end <= first_completion, probe_period_end_after_release=probe["end"] - release,
        baseline_after_start=baseline_start - poll_start,
        lag_steady_before_probe=summary(before), lag_probe_window=summary(during),
        lag_probe_period=summary([lag for due, lag in polls if release <= due < probe["end"]]))
    if before and during:
        figures["probe_p95_growth"] = figures["lag_probe_window"]["p95"] - figures["lag_steady_before_probe"]["p95"]
    pks = [job["pk"] for job in heavy.values()]
    first_download = {job["pk"]: min(downloads[t]) for t, job in heavy.items() if downloads[t]}
    figures.update(
        heavy_detected_after_release=summary([downloading[pk] - release for pk in pks if pk in downloading]),
        heavy_download_requested_after_release=summary([at - release for at in first_download.values()]),
        heavy_stored_after_release=summary([results[pk][0] - release for pk in pks if pk in results]),
        heavy_processed_after_release=summary([results[pk][1] - release for pk in pks
                                               if pk in results and results[pk][1] is not None]),
        heavy_processed_at_column=has_processed_at())
    for name, (a, b) in {"probe_window": (release, window_end), "before_probe": (baseline_start, release)}.items():
        if b > a:
            figures[f"{name}_cores"] = {group: cpu_in(monitor, group, [(a, b)]) / (b - a) for group in monitor.groups}
            figures[f"{name}_cluster_breakdown"] = cluster_breakdown(monitor, [(a, b)])
    return figures


def lag_timeline(samples, detected, bucket=5.0):
    """Per `bucket` seconds since polling began: polls, their p95 lag, and jobs found finished (each of which
    then downloads, probes and makes a poster on one of the poller's threads)."""
    buckets, found = defaultdict(list), Counter(int(at // bucket) for at in detected)
    for arrived, lag in samples:
        buckets[int(arrived // bucket)].append(lag)
    return [(index * bucket, len(lags), percentile(lags, 95), found[index])
            for index, lags in sorted(buckets.items())]


def thread_waits(monitor, segments):
    """On average over the samples in the [start, end) segments, how many of the cluster's non-main threads
    (the poller's 16, plus a few of django-q2's and httpx's) were in each state."""
    samples = [counts for t, counts in monitor.waits if any(start <= t < end for start, end in segments)]
    total = Counter()
    for counts in samples:
        total.update(counts)
    return {label: round(count / len(samples), 2) for label, count in total.most_common()} if samples else {}


def cluster_breakdown(monitor, segments):
    """Cores used in the [start, end) segments by the cluster's main process (split into its main thread, the
    poller's claiming loop, and its other threads, the poll steps) and by django-q2's child processes together."""

    def nearest(series, when):
        return min(series, key=lambda sample: abs(sample[0] - when))[1]

    leaders = set(monitor.groups["cluster"])
    main = children = loop = window = 0.0
    for start, end in segments:
        before, after = nearest(monitor.per_pid, start), nearest(monitor.per_pid, end)
        main += sum(after.get(pid, 0) - before.get(pid, 0) for pid in leaders)
        children += sum(after.get(pid, 0) - before.get(pid, 0) for pid in after if pid not in leaders)
        threads_before, threads_after = nearest(monitor.threads, start), nearest(monitor.threads, end)
        for pid in leaders:
            tid = claiming_thread(pid, threads_after.get(pid, {}))
            loop += threads_after.get(pid, {}).get(tid, 0) - threads_before.get(pid, {}).get(tid, 0)
        window += end - start
    return {"main_process": main / window, "poller_loop_thread": loop / window,
            "poll_step_threads": (main - loop) / window, "django_q_children": children / window,
            "django_q_child_count": len(after) - len(leaders)}


def claiming_thread(pid, threads):
    """The thread of a cluster's main process that runs the poller's claiming loop: the main thread itself in
    the qcluster command of old; the current one runs the poller on a thread of its own, started before any
    other in that process (the lease keeper and the pool's threads come later), so the lowest other id."""
    from studio.jobs.management.commands import qcluster

    if not hasattr(qcluster, "start_poller"):
        return pid
    return min((tid for tid in threads if tid != pid), default=pid)


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
          f"{f['clusters']} cluster(s) × {f['poll_threads']} poll threads, DEBUG {'on' if f['debug'] else 'off'}"
          f"{', sandbox with Nagle stalls' if f.get('sandbox_nagle') else ''}, run took {f['run_seconds']} s ==")
    print(f"jobs at the end: {f['states']}" + ("" if f["settled"] else "   (NOT all finished before the deadline)"))
    if f["failed_jobs"]:
        print(f"failures: {f['failed_jobs']}")
    if f["cluster_errors"]:
        print(f"cluster log errors ({f.get('cluster_error_lines', '?')} lines; the first):\n  "
              + "\n  ".join(f["cluster_errors"]))
    rows = []
    if f["webhooks"]:
        p95 = f["detection"].get("p95")
        rows.append(("webhook completion → DB (→ downloading)", stats_line(f["detection"]),
                     f"p95 ≤ {TARGET_WEBHOOK_P95} s: {verdict(p95 is not None and p95 <= TARGET_WEBHOOK_P95)}"))
        rows.append(("  completion → callback recorded (web app)", stats_line(f["callback_arrival"]), ""))
        rows.append(("  callback recorded → downloading (poller)", stats_line(f["callback_to_downloading"]), ""))
        cores = f.get("whole_cores", {})
        rows.append(("CPU cores used (whole run)", ", ".join(f"{k} {v:.2f}" for k, v in cores.items()), ""))
    else:
        steady = f["lag_steady"]
        p95 = steady.get("p95")
        label = "schedule lag, steady (all in flight" + ("; probe period left out)" if f.get("probe_load") else ")")
        rows.append((label, stats_line(steady),
                     f"p95 ≤ {TARGET_LAG_P95} s: {verdict(p95 is not None and p95 <= TARGET_LAG_P95)}"))
        rows.append(("schedule lag, completion phase", stats_line(f["lag_completion"]), ""))
        rows.append(("schedule lag, all polls", stats_line(f["lag_all"]), ""))
        rows.append(("detection latency (completion → DB)", stats_line(f["detection"]), "(no target)"))
    rows.append(("completion → video stored", stats_line(f["stored_after_completion"]), ""))
    rows.append(("download step (→ downloading to stored)", stats_line(f["download_step"]), ""))
    ratio = f["request_ratio"]
    rows.append(("upstream requests / ideal",
                 f"{f['requests_actual']} / {f['requests_ideal']} = {fmt(ratio, '', 3)}  "
                 f"(worst job {fmt(f['request_ratio_worst_job'], '', 2)}; {f['submits']} submits, "
                 f"{f['polls']} status, {f['downloads']} downloads)",
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
        for phase, waits in f.get("thread_waits", {}).items():
            rows.append((f"  its other threads, {phase} (avg)", ", ".join(f"{k} {v}" for k, v in waits.items()), ""))
        rows.append(("cluster idle (before polling)", fmt(f["idle_cluster_cores"], "cores", 3), ""))
        if "cpu_ms_per_download_estimate" in f:
            rows.append(("cluster CPU per download (estimate)",
                         f"{f['cpu_ms_per_download_estimate']:.0f} ms (completion-phase CPU less its polls at the "
                         f"steady cost; the cluster used {f['completion_cores']:.2f} cores then)", ""))
        rows.append(("cluster CPU whole run", f"{f['whole_cluster_cpu_seconds']:.1f} s "
                     f"({fmt(f['cpu_ms_per_request_whole'], 'ms', 2)} per status/download request)", ""))
        if f.get("unprocessed_at_end") is not None:
            rows.append(("videos not yet probed when all jobs had ended", str(f["unprocessed_at_end"]), ""))
        rows.append(("unresolved lag samples", str(f["unresolved_lags"]), ""))
        rows.append(("repeat polls (< interval/2 after the last)", str(f["repeat_polls"]), ""))
        if f.get("connections_peak") is not None:
            rows.append(("database sessions, peak (all clusters)", str(f["connections_peak"]), ""))
    rows.append(("jobs submitted in", f"{f['submit_seconds']} s", ""))
    if f.get("probe_load"):
        rows += probe_rows(f)
    width = max(len(r[0]) for r in rows)
    for name, value, target in rows:
        print(f"{name:<{width}}  {value}   {target}".rstrip())
    if timeline and f.get("lag_timeline"):
        print(f"per 5 s of polling (first completion at +{f['first_completion_after_start']:.0f} s): "
              f"+start: lag p95 (polls, jobs found finished)")
        line = ""
        for t, n, p95, found in f["lag_timeline"]:
            line += f"  +{t:.0f}:{p95:.2f}s({n},{found})"
            if len(line) > 100:
                print(line)
                line = ""
        if line:
            print(line)


def probe_rows(f):
    """The --probe-load figures, as report rows."""
    rows = [(f"probe load: {f['probe_load']} × {f['heavy_model']}",
             f"jobs at the end: {f['heavy_states']}" + ("" if f.get("heavy_processed", True) else
                                                         " (NOT all processed before the deadline)"), "")]
    if not f.get("probe_released"):
        return rows + [("  released", "never (no status GET saw them complete)", "")]
    delay = f.get("release_signal_delay")
    rows.append(("  released at", f"+{f['release_after_start']:.1f} s of polling"
                 + (f" ({1000 * delay:.0f} ms after the signal)" if delay is not None else "")
                 + ("" if f["probe_window_in_steady"] else
                    f"; WARNING: the window reaches past the first regular completion "
                    f"(+{f['first_completion_after_start']:.1f} s), not the steady phase"), ""))
    before, during = f["lag_steady_before_probe"], f["lag_probe_window"]
    growth = f.get("probe_p95_growth")
    rows.append((f"  schedule lag, due in [+{f['baseline_after_start']:.1f} s, release)", stats_line(before), ""))
    rows.append((f"  schedule lag, due in [release, +{f['probe_window_seconds']:g} s]", stats_line(during), ""))
    if before.get("n") and before["p95"] > TARGET_LAG_P95:
        # Against a baseline that already misses the steady target, a small or negative growth proves nothing.
        judged = (f"no verdict: lag p95 before release > {TARGET_LAG_P95} s, not steady yet (see --timeline; "
                  f"release later with --probe-at, and raise --job-seconds to keep the window steady)")
    else:
        judged = f"≤ {TARGET_PROBE_GROWTH} s: {verdict(growth is not None and growth <= TARGET_PROBE_GROWTH)}"
    rows.append(("  growth of lag p95", fmt(growth, "s"), judged))
    if f["probe_period_end_after_release"] > f["probe_window_seconds"]:
        rows.append((f"  schedule lag, due until all were processed (+{f['probe_period_end_after_release']:.1f} s)",
                     stats_line(f["lag_probe_period"]), ""))
    rows.append(("  heavy jobs found finished (→ downloading)", stats_line(f["heavy_detected_after_release"]),
                 "after release"))
    rows.append(("  heavy download requested", stats_line(f["heavy_download_requested_after_release"]),
                 "after release"))
    rows.append(("  heavy stored (Result row written)", stats_line(f["heavy_stored_after_release"]), "after release"))
    processed = "processed_at" if f["heavy_processed_at_column"] else "Result row: old code writes it after both"
    rows.append((f"  heavy probed and postered ({processed})", stats_line(f["heavy_processed_after_release"]),
                 "after release"))
    for name, label in (("before_probe", "in the baseline"), ("probe_window", "in the probe window")):
        if f"{name}_cores" in f:
            cores, b = f[f"{name}_cores"], f[f"{name}_cluster_breakdown"]
            text = (f"{cores['cluster']:.2f} cores (main process {b['main_process']:.2f}, of which claiming loop "
                    f"{b['poller_loop_thread']:.2f}; django-q2 children {b['django_q_children']:.2f}); "
                    f"sandbox {cores['sandbox']:.2f}")
            rows.append((f"  cluster CPU {label}", text, ""))
    r = f["heavy_requests"]
    text = (f"{r['submits']} submits, {r['status']} status, {r['result_fetches']} result fetches, "
            f"{r['downloads']} downloads (left out of the ratio above)")
    rows.append(("  heavy jobs' requests", text, ""))
    return rows


# Finding the largest N ------------------------------------------------------------------------------------


def holds(figures):
    p95 = figures["lag_steady"].get("p95")
    return p95 is not None and p95 <= TARGET_LAG_P95 and figures["settled"]


def run_child(options, jobs):
    """One run in a fresh process (a fresh world and a fresh Django); its figures, or None if it broke."""
    out = Path(tempfile.gettempdir()) / f"poll_at_scale-{os.getpid()}-{jobs}.json"
    argv = [sys.executable, "-m", "tests.benchmarks.poll_at_scale", "--jobs", str(jobs),
            "--interval", str(options.interval), "--job-seconds", str(options.job_seconds),
            "--completion-spread", str(options.completion_spread), "--timeline",
            "--poll-threads", str(options.poll_threads), "--clusters", str(options.clusters), "--json", str(out),
            "--protocols", ",".join(options.protocols)] + (["--debug"] if options.debug else []) + (
                ["--sandbox-nagle"] if options.sandbox_nagle else [])
    print(f"\n--- N = {jobs} ---", flush=True)
    child = subprocess.Popen(argv, cwd=harness.ROOT)
    try:
        child.wait()
    except BaseException:
        child.terminate()  # it stops its own processes on SIGTERM
        child.wait(timeout=120)
        raise
    if child.returncode != 0 or not out.exists():
        print(f"the run with N = {jobs} did not complete (exit {child.returncode})")
        return None
    figures = json.loads(out.read_text())
    out.unlink()
    return figures


def find_max(options):
    held, results = None, []
    jobs = FIND_MAX_START
    while jobs <= options.max_jobs:
        figures = run_child(options, jobs)
        if figures is None:
            break
        results.append(figures)
        if not holds(figures):
            break
        held = jobs
        jobs *= 2
    failed = next((f["jobs"] for f in results if not holds(f)), None)
    for _ in range(options.refine):
        if held is None or failed is None or failed - held <= 100:
            break
        jobs = (held + failed) // 2 // 50 * 50
        figures = run_child(options, jobs)
        if figures is None:
            break
        results.append(figures)
        if holds(figures):
            held = jobs
        else:
            failed = jobs
    print("\n== find-max summary ==")
    print(f"{'N':>6}  {'lag p50':>8}  {'lag p95':>8}  {'lag max':>8}  {'req/ideal':>9}  {'ms/poll':>7}  "
          f"{'cluster cores':>13}  {'detect p95':>10}")
    for f in sorted(results, key=lambda f: f["jobs"]):
        lag = f["lag_steady"]
        print(f"{f['jobs']:>6}  {lag.get('p50', 0):8.3f}  {lag.get('p95', 0):8.3f}  {lag.get('max', 0):8.3f}  "
              f"{f['request_ratio']:9.3f}  {f.get('cpu_ms_per_poll') or 0:7.2f}  "
              f"{f.get('steady_cores', {}).get('cluster', 0):13.2f}  {f['detection'].get('p95', 0):10.3f}")
    print(f"largest N that held steady lag p95 ≤ {TARGET_LAG_P95} s (doubling from {FIND_MAX_START}"
          f"{f', then {options.refine} bisection steps' if options.refine else ''}): {held}")
    return held


# Command line ----------------------------------------------------------------------------------------------


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, help="jobs in flight (default 1000; 200 with --webhooks)")
    parser.add_argument("--interval", type=float, help="the accounts' poll_seconds (default 5; 60 with --webhooks)")
    parser.add_argument("--job-seconds", type=float,
                        help="how long each sandbox task runs at least (default 60; 20 with --webhooks)")
    parser.add_argument("--find-max", action="store_true", help="double N from 250 until steady lag p95 > 1 s")
    parser.add_argument("--max-jobs", type=int, default=16000, help="stop --find-max here")
    parser.add_argument("--refine", type=int, default=0,
                        help="after doubling, bisect this many times between the last N that held and the first "
                             "that did not (to the nearest 50)")
    parser.add_argument("--webhooks", action="store_true", help="measure callback → database latency (qingbo)")
    parser.add_argument("--protocols", type=lambda v: [p for p in v.split(",") if p],
                        default=list(PROTOCOL_MODELS), help="comma-separated, of " + ",".join(PROTOCOL_MODELS))
    parser.add_argument("--poll-threads", type=int, default=16, help="STUDIO_POLL_THREADS for the cluster")
    parser.add_argument("--postgres", action="store_true",
                        help="on a PostgreSQL of its own (Debian's package, started on a throwaway directory)")
    parser.add_argument("--redis", action="store_true", help="with a Redis of its own as django-q2's broker")
    parser.add_argument("--clusters", type=int, default=1,
                        help="run this many `manage.py qcluster` processes (the poller shares work by leases)")
    parser.add_argument("--completion-spread", type=float,
                        help="each task runs job-seconds plus a random 0..this many seconds, so completions arrive "
                             "at about jobs/spread per second (default 60; 20 with --webhooks)")
    parser.add_argument("--debug", action="store_true", help="run the studio with DEBUG on (off by default)")
    parser.add_argument("--sandbox-nagle", action="store_true",
                        help="let the sandbox stall ~40 ms per answer as the stock one does (see timed_sandbox.py)")
    parser.add_argument("--probe-load", type=int, default=0,
                        help=f"also submit this many full-size {HEAVY_PROVIDER} {HEAVY_MODEL[0]} jobs, held by the "
                             f"sandbox until --probe-at, then released at once (lag while they are probed)")
    parser.add_argument("--probe-at", type=float, default=15.0,
                        help="release the heavy jobs this many seconds into polling (must be in the steady phase)")
    parser.add_argument("--probe-window", type=float, default=15.0,
                        help="the lag figure covers polls due in [release, release + this]")
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
    if options.probe_load and (options.webhooks or options.find_max):
        parser.error("--probe-load measures polling lag: not with --webhooks or --find-max")
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
