"""`manage.py health`: the web-side checks (as /healthz makes them, from this machine), every cluster's heartbeat,
and the jobs overdue.

Exit status: 0 all is well; 1 a warning (a cluster died without stopping, or its poller is stuck, while
another cluster is alive); 2 failing (a check failed, no cluster is alive, or jobs are overdue: no poller
is taking them).
"""

import json
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.core.management.base import BaseCommand
from django.utils import timezone

from studio.core.health import Check, web_checks
from studio.jobs.heartbeat import ago, clusters, overdue_jobs
from studio.jobs.models import ClusterHeartbeat

EXIT_STATUS = {"ok": 0, "warning": 1, "failing": 2}
OVERDUE_SHOWN = 10


@dataclass
class Report:
    now: datetime
    checks: list[Check]
    clusters: list[ClusterHeartbeat]
    overdue: list[tuple[int, datetime]]  # (id, due since) of the first OVERDUE_SHOWN
    overdue_count: int

    @property
    def failing(self):
        found = [f"{check.name} check failed" for check in self.checks if not check.ok]
        if not any(row.state == "alive" for row in self.clusters):
            found.append("no cluster alive")
        if self.overdue_count:
            found.append(f"{jobs(self.overdue_count)} overdue")
        return found

    @property
    def warnings(self):
        return [f"cluster {row} {row.state}" for row in self.clusters if row.state != "alive"]

    @property
    def status(self):
        return "failing" if self.failing else "warning" if self.warnings else "ok"


def health_report(now):
    overdue = overdue_jobs(now=now)
    shown = list(overdue.values_list("pk", "next_poll_at")[:OVERDUE_SHOWN])
    count = len(shown) if len(shown) < OVERDUE_SHOWN else overdue.count()
    return Report(now=now, checks=web_checks(), clusters=clusters(now=now), overdue=shown, overdue_count=count)


class Command(BaseCommand):
    help = "Check the database, media folder and task broker; list the clusters and the jobs overdue."

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="Print one JSON object.")

    def handle(self, *args, **options):
        report = health_report(timezone.now())
        self.stdout.write(json.dumps(as_json(report)) if options["json"] else as_text(report))
        raise SystemExit(EXIT_STATUS[report.status])


def as_text(report):
    lines = [f"{check.name:<10}{'ok' if check.ok else 'FAILING: ' + check.detail}" for check in report.checks]
    lines.append(f"{'clusters':<10}{sum(row.state == 'alive' for row in report.clusters)} alive")
    lines += [f"  {str(row):<32}{row.state:<15}{cluster_line(row, report.now)}" for row in report.clusters]
    if report.overdue_count:
        ids = ", ".join(str(pk) for pk, _ in report.overdue) + (", …" if report.overdue_count > OVERDUE_SHOWN else "")
        lines.append(f"{'overdue':<10}{jobs(report.overdue_count)} due more than "
                     f"{settings.STUDIO_OVERDUE_SECONDS:g} s ago and held by no worker (the first was due {ago(report.overdue[0][1], report.now)}): {ids}")
    else:
        lines.append(f"{'overdue':<10}no jobs")
    problems = report.failing + report.warnings
    lines.append(f"{'status':<10}{report.status}" + (f": {'; '.join(problems)}" if problems else ""))
    return "\n".join(lines)


def cluster_line(row, now):
    parts = [f"started {timezone.localtime(row.started_at):%Y-%m-%d %H:%M:%S}", f"last beat {ago(row.beat_at, now)}"]
    if not row.runs_poller:
        parts.append("no poller")
    else:
        parts.append(f"poller looped {ago(row.poller_loop_at, now)}" if row.poller_loop_at else "poller not looped yet")
    if not row.sentinel_alive:
        parts.append("django-q2's sentinel dead")
    return ", ".join(parts)


def as_json(report):
    return {
        "status": report.status,
        "problems": report.failing + report.warnings,
        "checks": {check.name: {"ok": check.ok, "detail": check.detail} for check in report.checks},
        "clusters": [{"host": row.host, "pid": row.pid, "state": row.state, "started_at": row.started_at.isoformat(),
                      "beat_at": row.beat_at.isoformat(), "runs_poller": row.runs_poller,
                      "poller_loop_at": row.poller_loop_at.isoformat() if row.poller_loop_at else None,
                      "sentinel_alive": row.sentinel_alive} for row in report.clusters],
        "overdue": {"count": report.overdue_count, "first_ids": [pk for pk, _ in report.overdue],
                    "after_seconds": settings.STUDIO_OVERDUE_SECONDS},
    }


def jobs(count):
    return f"{count} job" if count == 1 else f"{count} jobs"

