"""List jobs from the command line: their state, provider task id, error and stored videos.

`--json` prints, per job, exactly the object `generate --json` prints, so a script can treat both alike.
Exit status: 0 listed (possibly nothing); 2 the request was invalid (unknown id, state or project).
"""

import json

from django.core.management.base import BaseCommand, CommandError
from django.db.models import Prefetch

from studio.core import media_store
from studio.jobs.management.commands.generate import EXIT_INVALID
from studio.jobs.models import Job, JobState, Result
from studio.jobs.selectors import job_report
from studio.projects.models import Project

DEFAULT_LIMIT = 50
ERROR_WIDTH = 80


def invalid(message):
    return CommandError(message, returncode=EXIT_INVALID)


class Command(BaseCommand):
    help = "List jobs, newest first, or exactly the jobs whose ids are given, in that order."

    def add_arguments(self, parser):
        parser.add_argument("ids", nargs="*", type=int, metavar="ID",
                            help="Show exactly these jobs, in this order.")
        parser.add_argument("--state", help=f"Only jobs in this state: {', '.join(JobState.values)}.")
        parser.add_argument("--project", metavar="SLUG", help="Only this project's jobs.")
        parser.add_argument("--limit", type=int, help=f"At most this many jobs (default {DEFAULT_LIMIT}).")
        parser.add_argument("--json", action="store_true",
                            help="Print a JSON array holding, per job, the object generate --json prints.")

    def handle(self, *args, **options):
        jobs = self.jobs_by_id(options) if options["ids"] else self.jobs_filtered(options)
        if options["json"]:
            self.stdout.write(json.dumps([job_report(job) for job in jobs]))
        else:
            self.stdout.write(self.table(jobs))

    @staticmethod
    def queryset():
        return Job.objects.prefetch_related(Prefetch("results", queryset=Result.objects.order_by("index")))

    def jobs_by_id(self, options):
        # The ids name the jobs outright: a filter on top could only hide some, which reads as a mistake.
        if options["state"] or options["project"] or options["limit"] is not None:
            raise invalid("Give job ids or --state/--project/--limit, not both.")
        found = self.queryset().in_bulk(options["ids"])
        missing = [str(pk) for pk in options["ids"] if pk not in found]
        if missing:
            raise invalid(f"No job with the id {', '.join(missing)}.")
        return [found[pk] for pk in options["ids"]]

    def jobs_filtered(self, options):
        jobs = self.queryset().order_by("-created_at", "-pk")
        state, slug, limit = options["state"], options["project"], options["limit"]
        if state is not None:
            if state not in JobState.values:
                raise invalid(f"Unknown state “{state}”. The states are: {', '.join(JobState.values)}.")
            jobs = jobs.filter(state=state)
        if slug is not None:
            project = Project.objects.filter(slug=slug).first()
            if project is None:
                raise invalid(f"No project with the slug “{slug}”.")
            jobs = jobs.filter(project=project)
        limit = DEFAULT_LIMIT if limit is None else limit
        if limit < 1:
            raise invalid(f"--limit takes a positive number, not {limit}.")
        return list(jobs[:limit])

    def table(self, jobs):
        if not jobs:
            return "No jobs."
        header = ("ID", "STATE", "PROVIDER/MODEL", "TASK", "ERROR")
        rows = [(str(job.pk), job.state, f"{job.provider}/{job.model}", job.provider_task_id or "-",
                 short(job.error_message)) for job in jobs]
        widths = [max(len(row[column]) for row in [header, *rows]) for column in range(len(header) - 1)]
        lines = [aligned(header, widths)]
        for job, row in zip(jobs, rows):
            lines.append(aligned(row, widths))
            # .all() reads the prefetched results: one query for every job's videos, not one per job.
            for result in job.results.all():
                lines.append(f"    {media_store.where(result.file.name)}  sha256 {result.sha256[:12]}")
        return "\n".join(lines)


def aligned(row, widths):
    return "  ".join([cell.ljust(width) for cell, width in zip(row, widths)] + [row[-1]]).rstrip()


def short(error):
    """The error on one line, cut to fit: the full text is in the job's history and in --json."""
    text = " ".join(error.split())
    return text if len(text) <= ERROR_WIDTH else text[:ERROR_WIDTH - 1] + "…"
