"""A job's callback address (/hooks/jobs/<token>/) wakes its poll for whoever knows it, so only editors and
owners may read it: viewers see it masked on the job page, the job card, the project page and a video's raw
answers, wherever the payloads carry it (the submit request's callback_url, a provider echoing it back, a
payload cut to an excerpt)."""

import re
import secrets
from decimal import Decimal
from urllib.parse import quote

import pytest
from django.urls import reverse

from studio.jobs import services
from studio.jobs.models import Job, JobState, Result
from studio.jobs.poller import drive_job
from studio.projects.models import Membership, Prompt, PromptVersion, Role

pytestmark = pytest.mark.django_db

PROMPT = "A paper boat drifting down a rain-soaked street, morning light"


def pages_of(job, result):
    slug = job.project.slug
    return {
        "job page": reverse("job_detail", args=[slug, job.pk]),
        "job card": reverse("job_card", args=[slug, job.pk]),
        "project page": reverse("project_detail", args=[slug]),
        "video page": reverse("result_detail", args=[slug, result.pk]),
    }


def assert_no_token(html, token, where):
    assert token not in html, where
    assert token[:12] not in html, f"{where}: a piece of the token is still there"
    assert not re.search(r"/hooks/jobs/[A-Za-z0-9_-]", html), f"{where}: a callback address is readable"


@pytest.fixture
def job_with_callback(team, account, settings):
    """A qingbo job whose history holds its callback address the ways a real one does, and a stored video."""
    settings.STUDIO_PUBLIC_URL = "https://studio.example.org"
    project, users = team
    prompt = Prompt.objects.create(project=project, title="Paper boat")
    version = PromptVersion.objects.create(prompt=prompt, number=1, text=PROMPT)
    job = Job.objects.create(
        project=project, prompt_version=version, account=account, provider="qingbo", model="veo-3.0",
        params={"prompt": PROMPT, "duration": 4}, cost_estimate=Decimal("0.4"), state=JobState.SUCCEEDED,
        created_by=users["editor"], webhook_token=secrets.token_urlsafe(32), provider_task_id="task-1",
    )
    hook = services.webhook_url(job)
    exchange = {"method": "POST", "path": "/v1/videos", "status": 200,
                "request": {"model": "veo-3.0", "prompt": PROMPT, "callback_url": hook},
                "response": {"task_id": "task-1", "status": "queued", "callback_url": hook}}
    job.record("Accepted by the provider as task-1", payload=[exchange])
    job.record("Status", payload={"note": f"callback {quote(hook, safe='')} registered"})
    # A payload too big to keep whole is stored as an excerpt: the address sits inside a string of JSON there.
    job.record("Big answer", payload={"request": {"callback_url": hook}, "padding": ["x" * 200] * 60})
    result = Result.objects.create(job=job, file=f"projects/{project.pk}/videos/{secrets.token_hex(6)}.mp4",
                                   sha256="0" * 64, bytes=1000, duration=4.0, width=1280, height=720, fps=24.0)
    return job, result, users


def test_the_history_really_holds_the_callback_address(job_with_callback):
    job, _, _ = job_with_callback
    stored = str(list(job.events.values_list("payload", flat=True)))
    assert stored.count(job.webhook_token) >= 3


@pytest.mark.parametrize("page", ["job page", "job card", "project page", "video page"])
def test_a_viewer_never_reads_the_callback_address(client, job_with_callback, page):
    job, result, users = job_with_callback
    client.force_login(users["viewer"])
    response = client.get(pages_of(job, result)[page])
    assert response.status_code == 200
    assert_no_token(response.content.decode(), job.webhook_token, page)


def test_a_viewer_still_sees_the_rest_of_the_payloads(client, job_with_callback):
    job, result, users = job_with_callback
    client.force_login(users["viewer"])
    html = client.get(pages_of(job, result)["job page"]).content.decode()
    assert "&quot;callback_url&quot;: &quot;https://studio.example.org/hooks/jobs/••••••/&quot;" in html
    assert "and so is the job’s callback address" in html
    assert "&quot;task_id&quot;: &quot;task-1&quot;" in html
    assert "Payload" in html


@pytest.mark.parametrize("who", ["editor", "owner"])
def test_editors_and_owners_read_it_in_the_jobs_technical_details(client, job_with_callback, who):
    job, result, users = job_with_callback
    client.force_login(users[who])
    html = client.get(pages_of(job, result)["job page"]).content.decode()
    assert services.webhook_url(job) in html
    video_page = client.get(pages_of(job, result)["video page"]).content.decode()
    assert services.webhook_url(job) in video_page


@pytest.mark.django_db(transaction=True)
def test_a_real_qingbo_job_through_the_sandbox_keeps_its_callback_from_viewers(
    client, sandbox_accounts, demo_project, tiny_sandbox_videos, django_user_model
):
    viewer = django_user_model.objects.create_user("vera", "vera@example.com", "pw")
    editor = django_user_model.objects.create_user("eddie", "eddie@example.com", "pw")
    Membership.objects.create(project=demo_project, user=viewer, role=Role.VIEWER)
    Membership.objects.create(project=demo_project, user=editor, role=Role.EDITOR)
    job = services.job_create(project=demo_project, user=editor, account=sandbox_accounts["qingbo"],
                              model="veo-3.0", params={"prompt": PROMPT, "duration": 4})
    job = drive_job(job, timeout=60)
    assert job.state == JobState.SUCCEEDED
    assert job.webhook_token in str(list(job.events.values_list("payload", flat=True)))
    result = job.results.get()

    client.force_login(viewer)
    for where, url in pages_of(job, result).items():
        assert_no_token(client.get(url).content.decode(), job.webhook_token, where)
    client.force_login(editor)
    assert job.webhook_token in client.get(pages_of(job, result)["job page"]).content.decode()
