"""Open project pages keeping their cards current: requests per second and the web server's CPU.

    .venv/bin/python -m tests.benchmarks.live_pages [--pages 10] [--jobs 40] [--seconds 30]

Builds a fresh world (SQLite, `migrate`, `collectstatic`), one project with `--jobs` running jobs, and starts the studio under
gunicorn (gthread, 2 workers × 8 threads, DEBUG off) in its own process group. Then `--pages` simulated open
project pages, each a person of their own (a signed-in session, at most 6 connections, as a browser has per
host), each holding a grid of all the jobs' cards, do what htmx does on that page:

- the studio before issue 13 (a card asks for itself): every card GETs /p/<slug>/jobs/<id>/card/, waits the
  delay its answer's `hx-trigger="load delay:Ns"` names, and asks again;
- after (one updater per page): the page GETs /p/<slug>/jobs/updates/ with its cards' `v=<id>.<version>` and
  `after`, takes the versions of the cards it got back and the updater's next delay, waits, and asks again.

The script finds out which studio it runs against by looking for the updater form on the project page. While
the pages poll, a ticker moves the progress of a tenth of the jobs every 2 s (what the poller would write), so
cards do change. After `--warmup` seconds it measures for `--seconds`: requests answered per second (and their
status, latency and bytes), and the CPU seconds per second of gunicorn's whole process group, read from /proc.
The script's own CPU is printed too: it shares the machine's cores with the server. To measure the studio
before, copy this file and harness.py into a checkout of it and run it from there (README.md, "Live pages").
"""

import argparse
import asyncio
import os
import random
import re
import subprocess
import sys
import threading
import time
from decimal import Decimal

import httpx

from tests.benchmarks import harness

CARD_TRIGGER = re.compile(r'hx-get="([^"]+/card/)" hx-trigger="load delay:(\d+)s"')
UPDATER = re.compile(r'<form id="job-updater"[^>]*hx-trigger="(?:load delay:(\d+)s)?[^"]*"')
CARD_VERSION = re.compile(r'name="v" value="(\d+)(?:\.([0-9a-f]+))?" form="job-updater"')
AFTER = re.compile(r'name="after" value="(\d+)"')
CONNECTIONS_PER_PAGE = 6


class Tally:
    def __init__(self):
        self.lock = threading.Lock()
        self.measuring = False
        self.latencies, self.statuses, self.bytes, self.retried = [], {}, 0, 0

    def add(self, response, seconds):
        if not self.measuring:
            return
        with self.lock:
            self.latencies.append(seconds)
            self.statuses[response.status_code] = self.statuses.get(response.status_code, 0) + 1
            self.bytes += len(response.content)


async def timed_get(client, tally, url, params=None):
    began = time.perf_counter()
    try:
        response = await client.get(url, params=params, headers={"HX-Request": "true"})
    except httpx.TransportError:
        # A kept-alive connection the server closed as it was reused (gunicorn keeps them 2 s): a browser
        # sends the GET again on a new one, and so does this.
        tally.retried += tally.measuring
        response = await client.get(url, params=params, headers={"HX-Request": "true"})
    tally.add(response, time.perf_counter() - began)
    return response


async def card_asks_for_itself(client, tally, url):
    """Before: one card, following its own trigger."""
    while True:
        response = await timed_get(client, tally, url)
        found = CARD_TRIGGER.search(response.text)
        if not found:
            return
        await asyncio.sleep(int(found[2]))


async def page_updater(client, tally, base, slug, job_ids, after):
    """After: the page's one updater, holding every card's version."""
    versions = {job_id: "0" for job_id in job_ids}  # unknown: the first answer sends every card
    url = f"{base}/p/{slug}/jobs/updates/"
    while True:
        fields = [("v", f"{job_id}.{version}" if version else str(job_id)) for job_id, version in versions.items()]
        response = await timed_get(client, tally, url, params=fields + [("after", str(after))])
        for job_id, version in CARD_VERSION.findall(response.text):
            versions[int(job_id)] = version
        if found := AFTER.search(response.text):
            after = int(found[1])
        delay = UPDATER.search(response.text)
        if not delay or not delay[1]:
            return
        await asyncio.sleep(int(delay[1]))


async def open_page(base, cookie, slug, job_ids, tally, stop):
    limits = httpx.Limits(max_connections=CONNECTIONS_PER_PAGE)
    async with httpx.AsyncClient(cookies=cookie, limits=limits, timeout=60) as client:
        html = (await client.get(f"{base}/p/{slug}/")).text
        if "job-updater" in html:
            tasks = [page_updater(client, tally, base, slug, job_ids, int(AFTER.search(html)[1]))]
        else:
            tasks = [card_asks_for_itself(client, tally, f"{base}/p/{slug}/jobs/{job_id}/card/") for job_id in job_ids]
        await asyncio.sleep(random.random() * 2)  # pages opened at different moments
        running = [asyncio.create_task(task) for task in tasks]
        await stop.wait()
        for task in running:
            task.cancel()
        for outcome in await asyncio.gather(*running, return_exceptions=True):
            if isinstance(outcome, Exception):  # a page that stopped asking would make the figures wrong
                raise outcome
    return "updater" if "job-updater" in html else "cards"


def make_world(jobs):
    """One editor, one project, `jobs` running jobs; returns (slug, job ids, the editor's session cookie)."""
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.test import Client

    from studio.jobs.models import Job, JobState
    from studio.projects.models import Membership, Project, Prompt, PromptVersion, Role
    from studio.providers.models import ProviderAccount

    editor = get_user_model().objects.create_user("bench", "bench@studio.example", "live-pages-bench-1")
    project = Project.objects.create(name="Live pages", slug="live-pages")
    Membership.objects.create(project=project, user=editor, role=Role.EDITOR)
    account = ProviderAccount(provider="qingbo", name="QWave bench", base_url="http://127.0.0.1:9/qingbo")
    account.set_api_key("sk-bench")
    account.save()
    version = PromptVersion.objects.create(prompt=Prompt.objects.create(project=project, title="Heron"), number=1,
                                           text="A heron lifts off a misty canal at first light")
    made = [Job.objects.create(project=project, prompt_version=version, account=account, provider="qingbo",
                               model="veo-3.0", params={"prompt": version.text, "duration": 4},
                               cost_estimate=Decimal("0.40"), state=JobState.RUNNING, progress=10, created_by=editor)
            for _ in range(jobs)]
    client = Client()
    client.force_login(editor)
    name = settings.SESSION_COOKIE_NAME
    return project.slug, [job.pk for job in made], {name: client.cookies[name].value}


def tick_progress(job_ids, stop_event):
    """What the poller writes while jobs run: a tenth of them move on every 2 s."""
    from django.db import connection
    from django.db.models import F

    from studio.jobs.models import Job

    while not stop_event.wait(2):
        moved = random.sample(job_ids, max(1, len(job_ids) // 10))
        Job.objects.filter(pk__in=moved, progress__lt=99).update(progress=F("progress") + 1)
    connection.close()


async def drive(base, cookie, slug, job_ids, pages, tally, warmup, seconds, gunicorn_pgid):
    stop = asyncio.Event()
    clients = [asyncio.create_task(open_page(base, cookie, slug, job_ids, tally, stop)) for _ in range(pages)]
    await asyncio.sleep(warmup)
    cpu_before, own_before, began = sum(harness.group_cpu(gunicorn_pgid).values()), harness.self_cpu(), time.monotonic()
    tally.measuring = True
    await asyncio.sleep(seconds)
    tally.measuring = False
    elapsed = time.monotonic() - began
    server_cpu = sum(harness.group_cpu(gunicorn_pgid).values()) - cpu_before
    own_cpu = harness.self_cpu() - own_before
    stop.set()
    kinds = await asyncio.gather(*clients)
    return kinds[0], elapsed, server_cpu, own_cpu


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=10)
    parser.add_argument("--jobs", type=int, default=40, help="running jobs, all of them cards of every page")
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--warmup", type=float, default=6)
    parser.add_argument("--keep", action="store_true")
    options = parser.parse_args()

    with harness.World(keep=options.keep, prefix="studio-bench-live-") as world:
        (world.dir / "data").mkdir()
        env = harness.studio_env(world.dir / "data", STUDIO_STATIC_ROOT=world.dir / "static")
        os.environ.update(env)
        for command in (["migrate"], ["collectstatic", "--noinput"]):  # DEBUG off: pages link hashed files
            subprocess.run([sys.executable, "manage.py", *command, "-v0"], cwd=harness.ROOT, env=env, check=True)
        import django

        django.setup()
        slug, job_ids, cookie = make_world(options.jobs)
        from django.db import connection

        connection.close()

        port = harness.free_port()
        base = f"http://127.0.0.1:{port}"
        server = world.start("gunicorn", [sys.executable, "-m", "gunicorn", "studio.wsgi:application",
                                          "--bind", f"127.0.0.1:{port}", "--worker-class", "gthread",
                                          "--workers", "2", "--threads", "8"], env)
        world.wait_for_log(server, "Booting worker", timeout=60)
        harness.wait_for(lambda: _answers(base), timeout=60, what="gunicorn to answer")

        tally, ticking = Tally(), threading.Event()
        ticker = threading.Thread(target=tick_progress, args=(job_ids, ticking), daemon=True)
        ticker.start()
        try:
            kind, elapsed, server_cpu, own_cpu = asyncio.run(
                drive(base, cookie, slug, job_ids, options.pages, tally, options.warmup, options.seconds, server.pid))
        finally:
            ticking.set()
            ticker.join()

    answered = len(tally.latencies)
    latencies = sorted(tally.latencies)
    ideal = options.pages * (1 if kind == "updater" else options.jobs) / 2  # running cards ask every 2 s
    print(f"studio: {'one updater per page (after)' if kind == 'updater' else 'each card asks for itself (before)'}")
    print(f"{options.pages} pages × {options.jobs} running jobs, measured {elapsed:.1f} s after {options.warmup:.0f} s")
    print(f"requests answered: {answered} = {answered / elapsed:.1f}/s (the pages ask for {ideal:.0f}/s at "
          f"the server's pace of 2 s); statuses {tally.statuses}, sent again on a new connection "
          f"{tally.retried}")
    print(f"latency p50 {1000 * harness.percentile(latencies, 50):.0f} ms, p95 "
          f"{1000 * harness.percentile(latencies, 95):.0f} ms, max {1000 * latencies[-1]:.0f} ms")
    print(f"bytes answered: {tally.bytes / elapsed / 1024:.0f} KiB/s ({tally.bytes / max(answered, 1) / 1024:.1f} "
          f"KiB per answer)")
    print(f"web server CPU (gunicorn's process group): {server_cpu:.1f} s in {elapsed:.1f} s = "
          f"{100 * server_cpu / elapsed:.0f}% of one core; {1000 * server_cpu / max(answered, 1):.1f} ms per answer")
    print(f"this script's CPU (the simulated pages and the ticker): {100 * own_cpu / elapsed:.0f}% of one core")
    return 0


def _answers(base):
    try:
        return httpx.get(f"{base}/login/", timeout=5).status_code == 200
    except httpx.TransportError:
        return False


if __name__ == "__main__":
    sys.exit(main())
