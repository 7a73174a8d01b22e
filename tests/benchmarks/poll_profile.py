"""Where a poll's CPU time goes: the poller's own functions, run serially in this process under cProfile.

    .venv/bin/python -m tests.benchmarks.poll_profile [--jobs 400] [--top 25] [--finished]

The same world as poll_at_scale (fresh data directory and SQLite file, the benchmark sandbox in its own
process, the same four protocols), but instead of a cluster this process claims the jobs with
`leases.claim_due_jobs` (batches of 32, as the poller does with 16 threads) and runs `poller.run_step` on each,
one after another (after one unmeasured round, so every measured poll is a later poll of a running
job, the common case), under cProfile with a CPU-time clock (time.process_time), so waiting for the sandbox
costs nothing and every millisecond shown is this process's CPU. Each job is polled once; the sandbox's
CPU is in another process and not counted.

Serial and single-threaded, so there is no GIL hand-over between 16 threads: the cluster's figure (from
poll_at_scale) minus this one is roughly what threading costs. Self time is grouped by where the code
lives: the SQLite library (the C calls that run statements), Django's ORM, the HTTP client, logging, json,
the studio's own code, everything else.

With --finished every sandbox task has already finished, so each measured poll is the one that finds its
job done: status GET, → downloading, the guarded download, probe, poster and strip, → succeeded.
"""

import argparse
import cProfile
import logging
import os
import pstats
import sqlite3
import sys
import time
from collections import defaultdict

from tests.benchmarks import harness
from tests.benchmarks.poll_at_scale import (
    create_jobs,
    make_accounts,
    setup_django,
    start_sandbox,
    submit_jobs,
)

CLAIM_BATCH = 32


def category(filename, function):
    if "sqlite3" in function or filename.endswith("sqlite3/dbapi2.py"):
        return "SQLite (statements)"
    if "/django/db/" in filename:
        return "Django ORM"
    if "/django/" in filename:
        return "Django other"
    if any(part in filename for part in ("/httpx/", "/httpcore/", "/h11/", "/anyio/", "/ssl.py", "/socket.py")) or \
            any(name in function for name in ("socket", "'recv", "'send", "sendall", "recv_into")):
        return "HTTP client"
    if "/logging/" in filename:
        return "logging"
    if "/json/" in filename or "json" in function:
        return "json"
    if "/studio/" in filename:
        return "studio code"
    return "other (stdlib, builtins)"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=400)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--debug", action="store_true")
    parser.add_argument("--finished", action="store_true",
                        help="profile the poll that finds a job finished: download, probe, poster, store")
    options = parser.parse_args()
    with harness.World() as world:
        env = harness.studio_env(world.dir, debug=options.debug, STUDIO_PUBLIC_URL="http://127.0.0.1:9")
        os.environ.update(env)
        sandbox, sandbox_url = start_sandbox(world, FINISHED_JOB_SECONDS if options.finished else 3600, 0)
        setup_django(env)
        from django.conf import settings
        from django.utils import timezone

        from studio.jobs.leases import Lease, claim_due_jobs
        from studio.jobs.models import Job
        from studio.jobs.poller import run_step

        project, accounts = make_accounts(["qingbo", "apimp", "uniall", "veoquery"], sandbox_url, 5.0)
        ids = create_jobs(project, accounts, options.jobs, webhooks=False)
        submit_jobs(ids)
        submitted = time.time()
        # The cluster logs every request at INFO; so does this process, to a file.
        logging.getLogger("studio").setLevel(logging.NOTSET)
        log_file = open(world.dir / "profile.log", "w")
        for handler in logging.getLogger().handlers:
            if isinstance(handler, logging.StreamHandler):
                handler.setStream(log_file)

        # In the cluster other connections (django-q2's, the other threads') keep the database open; here the
        # step's own connection would be the last one, and closing the last connection checkpoints the WAL.
        keep_open = sqlite3.connect(settings.DATABASES["default"]["NAME"])
        keep_open.execute("SELECT 1 FROM jobs_job LIMIT 1").fetchall()

        def poll_each_once(count):
            polled = 0
            while polled < count:
                jobs, token = claim_due_jobs("profile", min(CLAIM_BATCH, count - polled))
                if not jobs:
                    break
                for job in jobs:
                    run_step(job, Lease(job.pk, token))
                    polled += 1
            return polled

        if options.finished:
            # Every task has finished upstream: each poll now finds it done, downloads, probes and stores.
            time.sleep(max(0.0, FINISHED_JOB_SECONDS + 1 - (time.time() - submitted)))
        else:
            # A job's first poll moves it to running (a transition with a history event); every later poll
            # is the cheap path. One unmeasured round takes every job past its first poll.
            Job.objects.filter(pk__in=ids).update(next_poll_at=timezone.now())
            poll_each_once(len(ids))
        Job.objects.filter(pk__in=ids).update(next_poll_at=timezone.now())

        # Half the jobs without the profiler, for the true cost; the other half under it, for the shares.
        began_cpu, began = time.process_time(), time.perf_counter()
        plain_polls = poll_each_once(len(ids) // 2)
        plain_cpu, plain_wall = time.process_time() - began_cpu, time.perf_counter() - began
        reconnect = reconnect_cost()
        profile = cProfile.Profile(time.process_time)
        profile.enable()
        polls = poll_each_once(len(ids) - plain_polls)
        profile.disable()
        keep_open.close()
        log_file.close()
        world.stop(sandbox)

    stats = pstats.Stats(profile)
    by_category = defaultdict(float)
    rows = []
    for (filename, line, function), (_, calls, self_time, cumulative, _) in stats.stats.items():
        by_category[category(filename, function)] += self_time
        where = os.path.relpath(filename) if filename.startswith("/") else filename
        rows.append((self_time, calls, f"{where}:{line} {function}"))
    print(f"\nwithout the profiler: {plain_polls} polls, {1000 * plain_cpu / plain_polls:.2f} ms CPU and "
          f"{1000 * plain_wall / plain_polls:.2f} ms wall per poll (serial, one thread)")
    print(f"opening and closing one Django SQLite connection (what every step does twice over): "
          f"{1000 * reconnect:.2f} ms CPU")
    print(f"under cProfile ({polls} polls; its clock inflates code made of many small calls, so read shares, "
          f"not absolute times):")
    total = sum(by_category.values())
    print("self CPU time by where the code lives (ms per poll, share):")
    for name, seconds in sorted(by_category.items(), key=lambda item: -item[1]):
        print(f"  {name:<26} {1000 * seconds / polls:6.2f} ms  {100 * seconds / total:5.1f} %")
    print(f"top {options.top} functions by self time (ms per poll, calls per poll):")
    for self_time, calls, name in sorted(rows, reverse=True)[:options.top]:
        print(f"  {1000 * self_time / polls:6.3f} ms  {calls / polls:6.1f}  {name}")
    print("inclusive CPU time of the steps of a poll (ms per poll, calls per poll):")
    for label, file_suffix, function in (DOWNLOAD_PARTS if options.finished else PARTS):
        calls, inclusive = inclusive_time(stats, file_suffix, function)
        print(f"  {label:<58} {1000 * inclusive / polls:6.2f} ms  {calls / polls:5.2f}")
    statements = sum(value[1] for key, value in stats.stats.items()
                     if key[2] in ("<method 'execute' of 'sqlite3.Cursor' objects>",
                                   "<method 'execute' of 'sqlite3.Connection' objects>"))
    print(f"SQLite statements per poll: {statements / polls:.1f}")


PARTS = [
    ("leases.claim_due_jobs (3 queries per batch of 32)", "studio/jobs/leases.py", "claim_due_jobs"),
    ("poller.run_step (everything below)", "studio/jobs/poller.py", "run_step"),
    ("  close_old_connections (closes the thread's connection)", "django/db/__init__.py", "close_old_connections"),
    ("  opening a new SQLite connection (connect + PRAGMAs)", "django/db/backends/base/base.py", "connect"),
    ("  services.job_poll", "studio/jobs/services.py", "job_poll"),
    ("    client_for (cached client)", "studio/providers/client.py", "client_for"),
    ("    ProviderClient.send (HTTP request, JSON, bounds)", "studio/providers/client.py", "send"),
    ("      JobCalls.before_call (lease, breaker, budget)", "studio/jobs/calls.py", "before_call"),
    ("      JobCalls.after_call (account health)", "studio/jobs/calls.py", "after_call"),
    ("    Job.poll_continues (news, next poll, lease: one write)", "studio/jobs/models.py", "poll_continues"),
    ("  QuerySet.update, all of them (incl. lease release)", "django/db/models/query.py", "update"),
]


def reconnect_cost(times=300):
    """CPU seconds to open a connection the way Django does (with the settings' init_command PRAGMAs), run
    one query, and close it: what close_old_connections() with CONN_MAX_AGE = 0 costs each poll step."""
    from django.db import connection

    connection.close()
    began = time.process_time()
    for _ in range(times):
        connection.ensure_connection()
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        connection.close()
    return (time.process_time() - began) / times


DOWNLOAD_PARTS = [
    ("poller.run_step (everything below)", "studio/jobs/poller.py", "run_step"),
    ("  ProviderClient.send (the status GET)", "studio/providers/client.py", "send"),
    ("  Job.transition (→ downloading, → succeeded)", "studio/jobs/models.py", "transition"),
    ("  services.job_download", "studio/jobs/services.py", "job_download"),
    ("    media.download_video", "studio/jobs/media.py", "download_video"),
    ("      an SSL context (one per process since the engine issue)", "httpx/_config.py", "create_ssl_context"),
    ("      media._write_stream (GET body, hash, write, fsync)", "studio/jobs/media.py", "_write_stream"),
    ("    services.result_store (the row; probe and poster are a task)", "studio/jobs/services.py", "result_store"),
    ("    Job.record (history lines)", "studio/jobs/models.py", "record"),
    ("  every fsync (CPU only; the wait is wall time)", "~", "<built-in method posix.fsync>"),
]
FINISHED_JOB_SECONDS = 5


def inclusive_time(stats, file_suffix, function):
    """(calls, inclusive seconds) of one function, matched by file name ending and function name (the
    outermost, when several functions match)."""
    found = [(inclusive, calls) for (filename, line, name), (_, calls, _, inclusive, _) in stats.stats.items()
             if name == function and filename.endswith(file_suffix)]
    if not found:
        return 0, 0.0
    inclusive, calls = max(found)
    return calls, inclusive


if __name__ == "__main__":
    sys.exit(main())
