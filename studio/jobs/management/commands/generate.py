"""Generate a video from the command line: for scripts, smoke tests against real keys, and automation.

Exit status: 0 the job succeeded (or, without --wait, was queued); 1 it failed or its submission is
ambiguous; 2 the request was invalid and nothing was sent.
"""

import json
from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand

from studio.core import media_store
from studio.jobs import services
from studio.jobs.models import JobState
from studio.jobs.poller import drive_job
from studio.jobs.selectors import job_report, stored_results
from studio.projects.images import image_ingest
from studio.projects.models import Project
from studio.providers.base import ValidationFailed
from studio.providers.models import ProviderAccount
from studio.providers.registry import UnknownModel

EXIT_OK, EXIT_FAILED, EXIT_INVALID = 0, 1, 2


class Invalid(Exception):
    pass


class Command(BaseCommand):
    help = ("Send one prompt to one model. Without --wait the cluster's poller sends it; with --wait this command "
            "drives the job to its end (beside a running cluster too: one of them works on it at a time).")

    def add_arguments(self, parser):
        parser.add_argument("--account", required=True, help="Provider account name.")
        parser.add_argument("--model", required=True, help="The provider's own model id, e.g. veo-3.1-fast.")
        parser.add_argument("--prompt", required=True)
        parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                            help="A unified parameter: negative_prompt, aspect_ratio, resolution, duration, audio, "
                                 "seed, samples, person_generation, enhance_prompt, upsample.")
        parser.add_argument("--first-frame", type=Path)
        parser.add_argument("--last-frame", type=Path)
        parser.add_argument("--reference", type=Path, action="append", default=[])
        parser.add_argument("--project", default="demo", help="Project slug (default: demo).")
        parser.add_argument("--wait", action="store_true", help="Follow the job to its end (no cluster needed).")
        parser.add_argument("--timeout", type=float, default=3600, help="With --wait: give up after this many seconds.")
        parser.add_argument("--json", action="store_true", help="Print one JSON object.")

    def handle(self, *args, **options):
        self.as_json = options["json"]
        try:
            job = self.create(options)
        except Invalid as error:
            self.report({"state": "invalid", "error": str(error)}, f"Invalid request, nothing sent: {error}")
            raise SystemExit(EXIT_INVALID)
        if options["wait"]:
            job = drive_job(job, timeout=options["timeout"])
        self.report(job_report(job), self.summary(job))
        if job.state == JobState.SUCCEEDED or (not options["wait"] and job.state == JobState.QUEUED):
            raise SystemExit(EXIT_OK)
        raise SystemExit(EXIT_FAILED)

    def create(self, options):
        account = ProviderAccount.objects.filter(name=options["account"]).first()
        if account is None:
            raise Invalid(f"No provider account is called “{options['account']}”.")
        if not account.enabled:
            raise Invalid(f"The provider account “{account.name}” is disabled.")
        project = Project.objects.filter(slug=options["project"]).first()
        if project is None:
            raise Invalid(f"No project with the slug “{options['project']}”.")
        params = {"prompt": options["prompt"], **self.parse_sets(options["set"])}
        try:
            images = {
                "first_frame": self.ingest(project, options["first_frame"]),
                "last_frame": self.ingest(project, options["last_frame"]),
                "references": [self.ingest(project, path) for path in options["reference"]],
            }
            return services.job_create(project=project, user=None, account=account, model=options["model"],
                                       params=params, **images)
        except ValidationFailed as error:
            raise Invalid("; ".join(v.message for v in error.violations)) from None
        except UnknownModel as error:
            raise Invalid(str(error)) from None

    @staticmethod
    def parse_sets(pairs):
        params = {}
        for pair in pairs:
            key, sep, value = pair.partition("=")
            if not sep or not key.strip():
                raise Invalid(f"--set takes KEY=VALUE, not “{pair}”.")
            params[key.strip()] = value
        return params

    @staticmethod
    def ingest(project, path):
        if path is None:
            return None
        try:
            return image_ingest(project=project, data=path.read_bytes(), name=path.name)
        except OSError as error:
            raise Invalid(f"Cannot read {path}: {error.strerror}.") from None
        except ValidationError as error:
            raise Invalid(f"{path.name}: {' '.join(error.messages)}") from None

    def summary(self, job):
        lines = [f"Job {job.pk} {job.provider}/{job.model}: {job.get_state_display()}"
                 + (f" (provider task {job.provider_task_id})" if job.provider_task_id else "")]
        if job.cost_estimate is not None:
            lines.append(f"Estimated cost: {job.cost_estimate} {job.currency}")
        if job.error_message:
            lines.append(f"Error: {job.error_message}")
        if job.state == JobState.SUBMIT_UNKNOWN:
            lines.append("The provider may have accepted this job: check its console before sending it again.")
        for result in stored_results(job):
            lines.append(f"Video: {media_store.where(result.file.name)} ({result.width}×{result.height}, "
                         f"{result.duration} s, {'with' if result.has_audio else 'no'} audio)")
        return "\n".join(lines)

    def report(self, data, text):
        self.stdout.write(json.dumps(data) if self.as_json else text)
