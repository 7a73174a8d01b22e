"""Log lines about jobs: one JSON object per line (with STUDIO_LOG_FORMAT=json), each naming its job, account and
provider; provider calls at DEBUG with their duration; a job's bad end at WARNING; a bug at ERROR with its
traceback; and never a key. Real jobs against the sandbox, logged through the studio's own formatter and filter."""

import io
import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from studio.core.logs import ContextFilter, JsonFormatter, PlainFormatter
from studio.jobs import services, tasks
from studio.jobs.models import Job, JobState
from studio.jobs.poller import drive_job
from tests.helpers import CHEAP_MODELS
from tests.jobs.cluster import cluster_env, stop, wait_until

ROOT = Path(__file__).resolve().parents[2]
LINE_KEYS = {"time", "level", "logger", "message"}


class Captured:
    """What the studio's console handler would write, as the lines it would write."""

    def __init__(self, formatter):
        self.stream = io.StringIO()
        self.handler = logging.StreamHandler(self.stream)
        self.handler.setFormatter(formatter)
        self.handler.addFilter(ContextFilter())

    @property
    def text(self):
        return self.stream.getvalue()

    def lines(self):
        """Every line as JSON, the sandbox's own (another service, in this test's process) left out."""
        entries = [json.loads(line) for line in self.text.splitlines()]
        return [entry for entry in entries if not entry["logger"].startswith("studio.sandbox")]


@pytest.fixture
def captured_logs():
    def capture(formatter):
        captured = Captured(formatter)
        root.addHandler(captured.handler)
        started.append(captured)
        return captured

    root, started, level = logging.getLogger(), [], logging.getLogger().level
    root.setLevel(logging.DEBUG)
    yield capture
    for captured in started:
        root.removeHandler(captured.handler)
    root.setLevel(level)


def run_job(project, account, timeout=30):
    model, params = CHEAP_MODELS[account.provider]
    job = services.job_create(project=project, user=None, account=account, model=model,
                              params={"prompt": "A lighthouse at dusk", **params})
    return drive_job(job, timeout=timeout)


def about(entries, job):
    return [entry for entry in entries if entry.get("job") == job.pk]


def test_a_job_run_logs_json_lines_that_name_the_job_and_its_provider_calls(sandbox_accounts, demo_project,
                                                                             captured_logs):
    logs = captured_logs(JsonFormatter())
    account = sandbox_accounts["qingbo"]
    job = run_job(demo_project, account)
    assert job.state == JobState.SUCCEEDED
    entries = logs.lines()
    assert entries and all(LINE_KEYS <= set(entry) for entry in entries)
    calls = [entry for entry in entries if entry["logger"] == "studio.providers.client"]
    assert calls, "no provider call was logged"
    for entry in calls:
        assert entry["level"] == "DEBUG"
        assert (entry["job"], entry["account"], entry["provider"]) == (job.pk, account.name, "qingbo")
        assert entry["message"].startswith(f"{account.name} ")
        assert " -> 200 in " in entry["message"] and entry["message"].endswith(" ms")
    assert any(" POST " in entry["message"] and "/v1/tasks" in entry["message"] for entry in calls)
    assert not [entry for entry in entries if entry["level"] in {"WARNING", "ERROR"}]


def test_a_job_the_provider_fails_is_logged_at_warning_with_its_reason(sandbox_accounts, demo_project, sandbox,
                                                                       captured_logs):
    logs = captured_logs(JsonFormatter())
    sandbox.fault("fail_job", provider="veoquery", message="Prompt rejected by the safety filter")
    job = run_job(demo_project, sandbox_accounts["veoquery"])
    assert job.state == JobState.FAILED
    warnings = [entry for entry in about(logs.lines(), job) if entry["level"] == "WARNING"]
    assert len(warnings) == 1
    assert warnings[0]["logger"] == "studio.jobs"
    assert warnings[0]["message"].startswith(f"job {job.pk} failed: ")
    assert "Prompt rejected by the safety filter" in warnings[0]["message"]
    assert warnings[0]["account"] == sandbox_accounts["veoquery"].name


def test_an_ambiguous_submission_is_logged_at_warning(sandbox_accounts, demo_project, sandbox, settings,
                                                      captured_logs):
    logs = captured_logs(JsonFormatter())
    settings.STUDIO_PROVIDER_READ_TIMEOUT = 0.5
    sandbox.fault("hang_after_accept", provider="apimp", on="submit", seconds=2)
    job = run_job(demo_project, sandbox_accounts["apimp"])
    assert job.state == JobState.SUBMIT_UNKNOWN
    warnings = [entry for entry in about(logs.lines(), job) if entry["level"] == "WARNING"]
    assert [entry["message"].split(":")[0] for entry in warnings] == [
        f"job {job.pk} may or may not have reached its provider"]
    assert "may have accepted the job" in warnings[0]["message"]


def test_a_bug_in_a_step_is_logged_at_error_with_its_traceback_and_the_job(sandbox_accounts, demo_project,
                                                                           monkeypatch, captured_logs):
    logs = captured_logs(JsonFormatter())
    real_poll = services.job_poll

    def poll_with_a_bug(job, calls):
        if not getattr(poll_with_a_bug, "raised", False):
            poll_with_a_bug.raised = True
            raise RuntimeError("a bug that shows up once")
        return real_poll(job, calls)

    monkeypatch.setattr(services, "job_poll", poll_with_a_bug)
    job = run_job(demo_project, sandbox_accounts["uniall"])
    assert job.state == JobState.SUCCEEDED
    errors = [entry for entry in logs.lines() if entry["level"] == "ERROR"]
    assert len(errors) == 1
    assert errors[0]["message"] == f"job {job.pk}: step failed unexpectedly"
    assert (errors[0]["job"], errors[0]["provider"]) == (job.pk, "uniall")
    assert errors[0]["traceback"].startswith("Traceback (most recent call last):")
    assert "RuntimeError: a bug that shows up once" in errors[0]["traceback"]


def test_a_key_the_provider_echoes_reaches_no_log_line(sandbox_accounts, demo_project, sandbox, captured_logs):
    logs = captured_logs(JsonFormatter())
    plain = captured_logs(PlainFormatter("%(levelname)s %(name)s: %(message)s"))
    account = sandbox_accounts["apimp"]
    sandbox.fault("echo_key", provider="apimp", status=401)
    job = run_job(demo_project, account)
    assert job.state == JobState.FAILED
    key = account.api_key
    assert about(logs.lines(), job)
    assert key not in logs.text and key not in plain.text
    assert key[len("sk-sandbox-"):] not in logs.text


def test_the_task_on_a_stored_video_names_the_video_and_its_job(sandbox_accounts, demo_project, captured_logs,
                                                                monkeypatch):
    logs = captured_logs(JsonFormatter())
    account = sandbox_accounts["modelmax"]
    job = run_job(demo_project, account)
    result = job.results.get()
    monkeypatch.setattr(services, "result_process", lambda result_id: logging.getLogger("studio.test").info("probing"))
    tasks.process_result(result.pk)
    [entry] = [entry for entry in logs.lines() if entry["message"] == "probing"]
    assert (entry["job"], entry["result"], entry["account"], entry["provider"]) == (
        job.pk, result.pk, account.name, "modelmax")


def test_plain_lines_name_the_job_after_the_message(sandbox_accounts, demo_project, sandbox, captured_logs):
    logs = captured_logs(PlainFormatter("%(levelname)s %(name)s: %(message)s"))
    account = sandbox_accounts["veoquery"]
    sandbox.fault("fail_job", provider="veoquery", message="No credits")
    job = run_job(demo_project, account)
    [line] = [line for line in logs.text.splitlines() if line.startswith("WARNING studio.jobs:")]
    assert line == (f"WARNING studio.jobs: job {job.pk} failed: {job.error_message} "
                    f"[job={job.pk} account={account.name} provider=veoquery]")


# The settings, in a process of their own ---------------------------------------------------------------


def studio_python(code, **env):
    environment = {**{k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"}, **env}
    script = "import django, os\nos.environ.setdefault('DJANGO_SETTINGS_MODULE', 'studio.settings')\ndjango.setup()\n"
    return subprocess.run([sys.executable, "-c", script + code], cwd=ROOT, env=environment, capture_output=True,
                          text=True, timeout=60)


def test_studio_log_format_json_makes_every_line_json_even_an_uncaught_error_in_a_thread(tmp_path):
    code = """
import logging, threading
from studio.core.logs import log_context
logging.getLogger("django.request").error("a request went wrong")
with log_context(job=7, account="acme", provider="qingbo"):
    logging.getLogger("studio.jobs").warning("job 7 failed: two\\nlines")
thread = threading.Thread(target=lambda: 1 / 0, name="doomed")
thread.start()
thread.join()
"""
    result = studio_python(code, STUDIO_LOG_FORMAT="json", STUDIO_DATA_DIR=str(tmp_path))
    assert result.returncode == 0, result.stderr
    entries = [json.loads(line) for line in result.stderr.splitlines()]
    assert [(entry["level"], entry["logger"]) for entry in entries] == [
        ("ERROR", "django.request"), ("WARNING", "studio.jobs"), ("ERROR", "studio")]
    assert {k: entries[1][k] for k in ("message", "job", "account", "provider")} == {
        "message": "job 7 failed: two\nlines", "job": 7, "account": "acme", "provider": "qingbo"}
    assert entries[2]["message"] == "thread doomed ended with an uncaught ZeroDivisionError"
    assert "ZeroDivisionError: division by zero" in entries[2]["traceback"]


def test_plain_text_is_the_default_and_an_unknown_format_is_refused(tmp_path):
    result = studio_python('import logging; logging.getLogger("studio.test").warning("hello")',
                           STUDIO_DATA_DIR=str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert result.stderr.rstrip().endswith(" WARNING studio.test: hello")
    result = studio_python("", STUDIO_LOG_FORMAT="xml", STUDIO_DATA_DIR=str(tmp_path))
    assert result.returncode != 0
    assert "STUDIO_LOG_FORMAT is 'xml'; it must be plain or json." in result.stderr


# A real cluster ------------------------------------------------------------------------------------------


def test_a_real_cluster_with_json_logs_writes_only_json_and_its_job_lines_name_the_job(settings, tmp_path, sandbox,
                                                                                     sandbox_accounts, demo_project):
    """`manage.py qcluster` as production runs it, with STUDIO_LOG_FORMAT=json and LOG_LEVEL=DEBUG: django-q2's
    own lines, the poller's and the provider calls' are all JSON, those about a job name it, and the job the
    provider fails is one WARNING."""
    account, failing_account = sandbox_accounts["qingbo"], sandbox_accounts["veoquery"]
    sandbox.fault("fail_job", provider="veoquery", message="Prompt rejected by the safety filter")
    jobs = []
    for each in (account, failing_account):
        model, params = CHEAP_MODELS[each.provider]
        jobs.append(services.job_create(project=demo_project, user=None, account=each, model=model,
                                        params={"prompt": "A lighthouse at dusk", **params}))
    env = {**cluster_env(settings, tmp_path), "STUDIO_LOG_FORMAT": "json", "LOG_LEVEL": "DEBUG"}
    stdout, stderr = tmp_path / "stdout.log", tmp_path / "stderr.log"
    with stdout.open("w") as out, stderr.open("w") as err:
        process = subprocess.Popen([sys.executable, "manage.py", "qcluster"], cwd=ROOT, env=env, stdout=out,
                                   stderr=err, start_new_session=True)
    try:
        ended = wait_until(lambda: [job.state for job in Job.objects.order_by("pk")] == [
            JobState.SUCCEEDED, JobState.FAILED], timeout=60)
        assert ended, stderr.read_text()[-3000:]
    finally:
        stop(process)
    assert process.returncode == 0
    entries = [json.loads(line) for line in stderr.read_text().splitlines()]  # every line, or this raises
    assert stdout.read_text() == ""
    assert {"django-q", "studio.jobs.poller", "studio.providers.client"} <= {entry["logger"] for entry in entries}
    calls = [entry for entry in entries if entry["logger"] == "studio.providers.client"]
    assert {(entry["job"], entry["account"]) for entry in calls} == {(jobs[0].pk, account.name),
                                                                     (jobs[1].pk, failing_account.name)}
    assert all(entry["level"] == "DEBUG" and re.search(r" (GET|POST) \S+ -> \d{3} in \d+ ms$", entry["message"])
               for entry in calls)
    [warning] = [entry for entry in entries if entry["level"] in {"WARNING", "ERROR", "CRITICAL"}]
    assert (warning["level"], warning["logger"], warning["job"], warning["account"]) == (
        "WARNING", "studio.jobs", jobs[1].pk, failing_account.name)
    assert warning["message"].startswith(f"job {jobs[1].pk} failed: ")
    assert "Prompt rejected by the safety filter" in warning["message"]
