"""`manage.py jobs`: listing, filtering and describing jobs the way `generate --json` does."""

import hashlib
import io
import json
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test.utils import CaptureQueriesContext

from studio.jobs.models import Job, JobState, Result
from studio.jobs.selectors import job_report
from studio.projects.models import Project, Prompt, PromptVersion
from studio.providers.models import Protocol, ProviderAccount


@pytest.fixture
def account(db):
    account = ProviderAccount(provider=Protocol.QINGBO, name="qingbo-main", base_url="https://qingbo.example")
    account.set_api_key("sk-test-qingbo-1234")
    account.save()
    return account


@pytest.fixture
def project(db):
    return make_project("Lighthouses", "lighthouses")


def make_project(name, slug):
    project = Project.objects.create(name=name, slug=slug)
    prompt = Prompt.objects.create(project=project, title="Dusk")
    PromptVersion.objects.create(prompt=prompt, number=1, text="A lighthouse at dusk")
    return project


def make_job(project, account, state=JobState.QUEUED, **fields):
    version = PromptVersion.objects.filter(prompt__project=project).first()
    return Job.objects.create(project=project, prompt_version=version, account=account,
                              provider=account.provider, model=fields.pop("model", "veo-3.1"), state=state,
                              **fields)


def add_video(job, index=0, content=None):
    content = content or f"video {job.pk}/{index}".encode()
    name = f"projects/{job.project_id}/videos/job{job.pk}-{index}.mp4"
    path = Path(settings.MEDIA_ROOT) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return Result.objects.create(job=job, index=index, file=name, sha256=hashlib.sha256(content).hexdigest(),
                                 bytes=len(content), duration=4.0, width=1280, height=720, fps=24.0,
                                 has_audio=True, mismatches=[])


def jobs(*args):
    out = io.StringIO()
    call_command("jobs", *args, stdout=out)
    return out.getvalue()


def jobs_json(*args):
    return json.loads(jobs("--json", *args))


def ids(*args):
    return [item["id"] for item in jobs_json(*args)]


def refusal(*args):
    with pytest.raises(CommandError) as error:
        jobs(*args)
    return error.value.returncode, str(error.value)


def test_jobs_are_listed_newest_first_fifty_at_most(project, account):
    created = [make_job(project, account) for _ in range(52)]
    newest_first = [job.pk for job in reversed(created)]
    assert ids() == newest_first[:50]
    assert ids("--limit", "3") == newest_first[:3]


def test_the_state_filter_keeps_only_jobs_in_that_state(project, account):
    failed = make_job(project, account, JobState.FAILED, error_message="Invalid API key.")
    make_job(project, account, JobState.SUCCEEDED)
    make_job(project, account, JobState.QUEUED)
    also_failed = make_job(project, account, JobState.FAILED, error_message="Insufficient balance.")
    assert ids("--state", "failed") == [also_failed.pk, failed.pk]
    assert ids("--state", "cancelled") == []


def test_the_project_filter_keeps_only_that_projects_jobs(project, account):
    other = make_project("Harbours", "harbours")
    mine = make_job(project, account)
    theirs = make_job(other, account, JobState.FAILED)
    assert ids("--project", "lighthouses") == [mine.pk]
    assert ids("--project", "harbours", "--state", "failed") == [theirs.pk]
    assert ids("--project", "harbours", "--state", "queued") == []


def test_ids_show_exactly_those_jobs_in_the_order_given(project, account):
    first, second, third = (make_job(project, account) for _ in range(3))
    assert ids(str(first.pk), str(third.pk), str(second.pk)) == [first.pk, third.pk, second.pk]
    assert ids(str(second.pk)) == [second.pk]


def test_an_unknown_id_is_refused_by_name_with_status_2(project, account):
    job = make_job(project, account)
    code, message = refusal(str(job.pk), "98765", "98766")
    assert code == 2
    assert "No job with the id 98765, 98766." in message


def test_an_unknown_state_is_refused_with_the_valid_ones_listed(db):
    code, message = refusal("--state", "done")
    assert code == 2
    assert "Unknown state “done”" in message
    assert all(state in message for state in JobState.values)


@pytest.mark.parametrize("args,expected", [
    (["--project", "nowhere"], "No project with the slug “nowhere”."),
    (["--limit", "0"], "--limit takes a positive number"),
    (["1", "--state", "failed"], "Give job ids or --state/--project/--limit, not both."),
])
def test_other_invalid_requests_are_refused_with_status_2(db, args, expected):
    code, message = refusal(*args)
    assert code == 2
    assert expected in message


def test_no_jobs_is_an_empty_array_or_a_plain_sentence(db):
    assert jobs_json() == []
    assert jobs().strip() == "No jobs."


def test_json_holds_the_objects_generate_prints(project, account):
    done = make_job(project, account, JobState.SUCCEEDED, provider_task_id="task-ok", cost_estimate="1.2000")
    add_video(done, 1)
    add_video(done, 0)
    failed = make_job(project, account, JobState.FAILED, error_message="Prompt rejected by the safety filter")
    listed = jobs_json(str(done.pk), str(failed.pk))
    assert listed == [job_report(Job.objects.get(pk=done.pk)), job_report(Job.objects.get(pk=failed.pk))]
    videos = Path(settings.MEDIA_ROOT) / f"projects/{project.pk}/videos"
    expected_paths = [str(videos / f"job{done.pk}-{index}.mp4") for index in (0, 1)]
    assert [video["path"] for video in listed[0]["results"]] == expected_paths


def test_text_shows_each_job_on_a_line_with_its_videos_indented_below(project, account):
    done = make_job(project, account, JobState.SUCCEEDED, provider_task_id="task-abc-123")
    video = add_video(done)
    failed = make_job(project, account, JobState.FAILED, model="veo-3.0",
                      error_message="No credits\non the project")
    lines = jobs().splitlines()
    assert lines[0].split() == ["ID", "STATE", "PROVIDER/MODEL", "TASK", "ERROR"]
    assert lines[1].split() == [str(failed.pk), "failed", "qingbo/veo-3.0", "-", "No", "credits", "on", "the",
                                "project"]
    assert lines[2].split() == [str(done.pk), "succeeded", "qingbo/veo-3.1", "task-abc-123"]
    assert lines[3] == f"    {Path(settings.MEDIA_ROOT) / video.file.name}  sha256 {video.sha256[:12]}"
    assert len(lines) == 4


def test_a_long_error_is_cut_to_one_short_line(project, account):
    make_job(project, account, JobState.FAILED, error_message="The provider said: " + "x" * 300)
    line = jobs().splitlines()[1]
    assert "The provider said: xxx" in line
    assert line.endswith("…")
    assert len(line) < 160


def queries_for(*args):
    with CaptureQueriesContext(connection) as captured:
        jobs(*args)
    return len(captured)


def make_jobs_with_videos(project, account, count):
    for _ in range(count):
        job = make_job(project, account, JobState.SUCCEEDED)
        add_video(job, 0)
        add_video(job, 1)


def test_text_listing_takes_the_same_queries_for_one_job_or_ten(project, account):
    make_jobs_with_videos(project, account, 1)
    one = queries_for("--project", "lighthouses")
    make_jobs_with_videos(project, account, 9)
    assert queries_for("--project", "lighthouses") == one
    ten_ids = [str(pk) for pk in Job.objects.values_list("pk", flat=True)]
    assert queries_for(*ten_ids) == queries_for(ten_ids[0])


def test_json_listing_takes_the_same_queries_for_one_job_or_ten(project, account):
    make_jobs_with_videos(project, account, 1)
    one = queries_for("--json")
    make_jobs_with_videos(project, account, 9)
    assert queries_for("--json") == one


def test_jobs_json_repeats_what_generate_printed_for_a_real_job(sandbox_accounts, demo_project, sandbox):
    out = io.StringIO()
    with pytest.raises(SystemExit) as exit_info:
        call_command("generate", "--account", "sandbox-qingbo", "--model", "veo-3.1",
                     "--prompt", "A lighthouse at dusk, waves rolling in", "--set", "duration=4",
                     "--wait", "--json", "--timeout", "60", stdout=out)
    assert exit_info.value.code == 0
    printed = json.loads(out.getvalue())
    assert printed["state"] == "succeeded" and len(printed["results"]) == 1
    assert jobs_json(str(printed["id"])) == [printed]
    assert jobs_json("--project", "demo", "--state", "succeeded") == [printed]
