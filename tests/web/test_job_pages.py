"""The job card, the job page and the decision on an ambiguous job: who may see and do what, and when the card
keeps asking for itself."""

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from studio.jobs.models import Job, JobEvent, JobState, Result
from studio.projects.models import Membership, Project, Prompt, PromptVersion, Role
from tests.backends import queued_tasks
from tests.web.support import as_user

pytestmark = pytest.mark.django_db

PROMPT = "A paper boat drifting down a rain-soaked street, morning light"


@pytest.fixture
def make_job(team, account):
    project, users = team
    prompt = Prompt.objects.create(project=project, title="Paper boat")
    version = PromptVersion.objects.create(prompt=prompt, number=1, text=PROMPT)

    def make(state=JobState.QUEUED, **fields):
        return Job.objects.create(
            project=project, prompt_version=version, account=account, provider=account.provider,
            model="veo-3.0", params={"prompt": PROMPT, "duration": 4, "aspect_ratio": "16:9"},
            cost_estimate=Decimal("0.4000"), state=state, created_by=users["editor"], **fields,
        )

    return make


def card_url(job):
    return reverse("job_card", args=[job.project.slug, job.pk])


def page_url(job):
    return reverse("job_detail", args=[job.project.slug, job.pk])


def resolve_url(job):
    return reverse("job_resolve", args=[job.project.slug, job.pk])


# Access ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("who,expected", [("anonymous", 302), ("outsider", 404), ("viewer", 200),
                                          ("editor", 200), ("owner", 200)])
@pytest.mark.parametrize("url_for", [card_url, page_url], ids=["card", "page"])
def test_members_see_the_card_and_the_page(client, team, make_job, url_for, who, expected):
    _, users = team
    response = as_user(client, users, who).get(url_for(make_job()))
    assert response.status_code == expected
    if who == "anonymous":
        assert response["Location"].startswith(reverse("login"))


@pytest.mark.parametrize("who,expected", [("anonymous", 302), ("outsider", 404), ("viewer", 403),
                                          ("editor", 302), ("owner", 302)])
def test_only_editors_and_owners_resolve_an_ambiguous_job(client, team, make_job, who, expected):
    _, users = team
    job = make_job(JobState.SUBMIT_UNKNOWN)
    response = as_user(client, users, who).post(resolve_url(job), {"action": "give_up"})
    assert response.status_code == expected
    job.refresh_from_db()
    decided = who in ("editor", "owner")
    assert job.state == (JobState.FAILED if decided else JobState.SUBMIT_UNKNOWN)


def test_a_job_of_another_project_is_404_even_for_an_owner(client, team, make_job):
    _, users = team
    job = make_job()
    elsewhere = Project.objects.create(name="Elsewhere")
    Membership.objects.create(project=elsewhere, user=users["owner"], role=Role.OWNER)
    client.force_login(users["owner"])
    assert client.get(reverse("job_card", args=[elsewhere.slug, job.pk])).status_code == 404
    assert client.get(reverse("job_detail", args=[elsewhere.slug, job.pk])).status_code == 404


def test_resolve_only_takes_posts(client, team, make_job):
    _, users = team
    client.force_login(users["editor"])
    assert client.get(resolve_url(make_job(JobState.SUBMIT_UNKNOWN))).status_code == 405


# The card keeps asking while the job is on its way ------------------------------------------------------


@pytest.mark.parametrize("state,delay", [
    (JobState.QUEUED, 1), (JobState.SUBMITTING, 1), (JobState.DOWNLOADING, 1), (JobState.SUBMITTED, 2),
    (JobState.RUNNING, 2),
])
def test_an_unfinished_card_asks_again_after_the_servers_delay(client, team, make_job, state, delay):
    _, users = team
    job = make_job(state, progress=40 if state == JobState.RUNNING else None)
    html = as_user(client, users, "viewer").get(card_url(job)).content.decode()
    assert html.lstrip().startswith(f'<article id="job-{job.pk}"')
    assert f'hx-get="{card_url(job)}"' in html
    assert f'hx-trigger="load delay:{delay}s"' in html
    assert 'hx-swap="outerHTML"' in html
    assert "<html" not in html, "the card view renders only the fragment"


def test_a_running_card_shows_its_progress(client, team, make_job):
    _, users = team
    job = make_job(JobState.RUNNING, progress=40)
    html = as_user(client, users, "viewer").get(card_url(job)).content.decode()
    assert "Running" in html
    assert '<progress class="job-progress" max="100" value="40">' in html


@pytest.mark.parametrize("state", [JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED,
                                   JobState.SUBMIT_UNKNOWN])
def test_a_finished_or_undecided_card_stops_asking(client, team, make_job, state):
    _, users = team
    html = as_user(client, users, "viewer").get(card_url(make_job(state))).content.decode()
    assert "hx-trigger" not in html
    assert "hx-get" not in html


def test_a_failed_card_shows_the_providers_error_verbatim(client, team, make_job):
    _, users = team
    error = "Your prompt was flagged by the safety system (code 4031). Please revise it and try again."
    job = make_job(JobState.FAILED, error_message=error)
    html = as_user(client, users, "viewer").get(card_url(job)).content.decode()
    assert error in html
    assert "Failed" in html


def test_a_succeeded_card_plays_the_studios_own_copy(client, team, make_job):
    project, users = team
    provider_link = "https://cdn.provider.example/v/abc.mp4"
    job = make_job(JobState.SUCCEEDED, provider_data={"video_urls": [provider_link]})
    Result.objects.create(
        job=job, file=f"projects/{project.pk}/videos/abc123.mp4",
        poster=f"projects/{project.pk}/posters/abc123.jpg",
        sha256="0" * 64, bytes=123456, duration=4.0, width=1280, height=720, fps=24.0, has_audio=True,
        mismatches=["Asked for 1080p; delivered 1280×720."], processed_at=timezone.now(),
    )
    html = as_user(client, users, "viewer").get(card_url(job)).content.decode()
    assert f'src="/media/projects/{project.pk}/videos/abc123.mp4"' in html
    assert f'poster="/media/projects/{project.pk}/posters/abc123.jpg"' in html
    assert 'preload="metadata"' in html and "controls" in html
    assert "cdn.provider.example" not in html
    assert "1280×720" in html and "4.0 s" in html and "24 fps" in html and "With audio" in html
    assert "Asked for 1080p; delivered 1280×720." in html
    assert "hx-trigger" not in html, "a finished card with its poster asks no more"


def test_a_stored_video_plays_at_once_and_its_card_asks_again_until_the_poster_is_made(client, team, make_job):
    project, users = team
    job = make_job(JobState.SUCCEEDED)
    result = Result.objects.create(job=job, file=f"projects/{project.pk}/videos/abc123.mp4", sha256="0" * 64,
                                   bytes=123456)
    html = as_user(client, users, "viewer").get(card_url(job)).content.decode()
    assert f'src="/media/projects/{project.pk}/videos/abc123.mp4"' in html
    assert "Checking the video and making its poster…" in html
    assert "None" not in html
    assert 'hx-trigger="load delay:1s"' in html
    Result.objects.filter(pk=result.pk).update(processed_at=timezone.now(),
                                               processing_error="The file has no video stream.")
    html = client.get(card_url(job)).content.decode()
    assert "The stored file could not be read: The file has no video stream." in html
    assert "hx-trigger" not in html


# Deciding about an ambiguous job -------------------------------------------------------------------------


@pytest.mark.parametrize("who,offered", [("viewer", False), ("editor", True), ("owner", True)])
def test_an_undecided_card_offers_the_two_decisions_to_editors_only(client, team, make_job, who, offered):
    _, users = team
    job = make_job(JobState.SUBMIT_UNKNOWN, error_message="Read timed out after sending the request.")
    html = as_user(client, users, who).get(card_url(job)).content.decode()
    assert "The provider may have accepted this job, but we could not confirm it." in html
    assert ("Mark as failed" in html) is offered
    assert ("Submit again (may be charged twice)" in html) is offered
    assert (resolve_url(job) in html) is offered


def test_giving_up_marks_the_job_failed(client, team, make_job):
    _, users = team
    job = make_job(JobState.SUBMIT_UNKNOWN)
    client.force_login(users["editor"])
    back = f"http://testserver{page_url(job)}"
    response = client.post(resolve_url(job), {"action": "give_up"}, HTTP_REFERER=back)
    assert response.status_code == 302
    assert response["Location"] == back
    job.refresh_from_db()
    assert job.state == JobState.FAILED
    assert "Marked as failed by editor" in job.error_message
    assert job.events.filter(from_state=JobState.SUBMIT_UNKNOWN, to_state=JobState.FAILED).exists()


def test_submitting_again_requeues_the_job_due_at_once(client, team, make_job):
    _, users = team
    job = make_job(JobState.SUBMIT_UNKNOWN, submit_sent_at="2025-01-01T00:00:00Z")
    client.force_login(users["owner"])
    response = client.post(resolve_url(job), {"action": "submit_again"})
    assert response.status_code == 302
    assert response["Location"] == page_url(job), "without a usable referrer it goes to the job page"
    job.refresh_from_db()
    assert job.state == JobState.QUEUED
    assert job.submit_sent_at is None
    assert job.next_poll_at <= timezone.now(), "the poller sends it within its idle sleep"
    assert queued_tasks() == []


def test_an_htmx_decision_returns_the_new_card(client, team, make_job):
    _, users = team
    job = make_job(JobState.SUBMIT_UNKNOWN)
    client.force_login(users["editor"])
    response = client.post(resolve_url(job), {"action": "give_up"}, HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert response.status_code == 200
    assert html.lstrip().startswith("<article")
    assert f'id="job-{job.pk}"' in html
    assert "Failed" in html and "Marked as failed by editor" in html
    assert "hx-trigger" not in html


def test_a_decision_on_a_job_that_is_not_waiting_changes_nothing(client, team, make_job):
    _, users = team
    job = make_job(JobState.RUNNING)
    client.force_login(users["editor"])
    response = client.post(resolve_url(job), {"action": "give_up"}, follow=True)
    assert "Nothing changed" in response.content.decode()
    job.refresh_from_db()
    assert job.state == JobState.RUNNING
    htmx = client.post(resolve_url(job), {"action": "submit_again"}, HTTP_HX_REQUEST="true").content.decode()
    assert "Nothing changed" in htmx
    assert 'hx-trigger="load delay:2s"' in htmx, "the job is still running, so its card keeps asking"


def test_an_unknown_decision_changes_nothing(client, team, make_job):
    _, users = team
    job = make_job(JobState.SUBMIT_UNKNOWN)
    client.force_login(users["editor"])
    response = client.post(resolve_url(job), {"action": "delete_everything"}, follow=True)
    assert "Nothing changed: choose “Mark as failed” or “Submit again”." in response.content.decode()
    job.refresh_from_db()
    assert job.state == JobState.SUBMIT_UNKNOWN


# The job page -------------------------------------------------------------------------------------------


def test_the_job_page_shows_the_request_and_the_whole_history(client, team, make_job):
    _, users = team
    job = make_job(JobState.RUNNING, provider_task_id="task-7f3a9", progress=10)
    job.record("Created", payload={"params": job.params, "cost_estimate": "0.4000"})
    JobEvent.objects.create(job=job, from_state=JobState.SUBMITTING, to_state=JobState.SUBMITTED,
                            message="Accepted by the provider as task-7f3a9",
                            payload={"request": {"headers": {"Authorization": "Bearer ***"}}})
    html = as_user(client, users, "viewer").get(page_url(job)).content.decode()
    assert "task-7f3a9" in html
    assert "0.40 USD" in html
    assert "<dt>Aspect ratio</dt><dd>16:9</dd>" in html and "<dt>Duration</dt><dd>4 s</dd>" in html
    assert "Accepted by the provider as task-7f3a9" in html
    assert "submitting</span> → <span class=\"mono\">submitted" in html
    assert "<details class=\"payload\">" in html and "Bearer ***" in html
    assert f'id="job-{job.pk}"' in html and 'hx-trigger="load delay:2s"' in html


# Reading only the database ------------------------------------------------------------------------------


def test_the_card_never_calls_the_provider(client, team, make_job, monkeypatch):
    """The account points at a closed port, and any attempt at HTTP would blow up the test."""
    import httpx

    def no_http(*args, **kwargs):
        raise AssertionError("the card view made an HTTP call")

    monkeypatch.setattr(httpx.Client, "send", no_http)
    monkeypatch.setattr(httpx.AsyncClient, "send", no_http)
    _, users = team
    client.force_login(users["viewer"])
    for state in (JobState.SUBMITTED, JobState.RUNNING, JobState.DOWNLOADING):
        job = make_job(state, provider_task_id="task-1")
        response = client.get(card_url(job))
        assert response.status_code == 200
        job.refresh_from_db()
        assert job.state == state


def test_the_project_page_lists_jobs_in_a_constant_number_of_queries(client, team, make_job):
    project, users = team
    client.force_login(users["editor"])

    def queries_for_project_page():
        with CaptureQueriesContext(connection) as captured:
            response = client.get(reverse("project_detail", args=[project.slug]))
        assert response.status_code == 200
        return len(captured), response.content.decode()

    first = make_job(JobState.SUCCEEDED)
    Result.objects.create(job=first, file=f"projects/{project.pk}/videos/one.mp4", sha256="1" * 64, bytes=1,
                          duration=4.0, width=1280, height=720, fps=24.0, has_audio=False)
    with_one, html = queries_for_project_page()
    assert html.count('class="job-card ') == 1
    for index in range(19):
        states = [JobState.RUNNING, JobState.FAILED, JobState.SUCCEEDED, JobState.SUBMIT_UNKNOWN]
        job = make_job(states[index % 4])
        if job.state == JobState.SUCCEEDED:
            Result.objects.create(job=job, file=f"projects/{project.pk}/videos/{index}.mp4", sha256="2" * 64,
                                  bytes=1, duration=4.0, width=1280, height=720, fps=24.0, has_audio=False)
    with_twenty, html = queries_for_project_page()
    assert html.count('class="job-card ') == 20
    assert with_twenty == with_one


def test_the_project_page_shows_at_most_24_jobs_newest_first(client, team, make_job):
    project, users = team
    jobs = [make_job() for _ in range(26)]
    client.force_login(users["viewer"])
    html = client.get(reverse("project_detail", args=[project.slug])).content.decode()
    assert html.count('class="job-card ') == 24
    assert f'id="job-{jobs[-1].pk}"' in html
    assert f'id="job-{jobs[0].pk}"' not in html


def test_an_empty_project_says_nothing_was_generated_yet(client, team):
    project, users = team
    client.force_login(users["viewer"])
    html = client.get(reverse("project_detail", args=[project.slug])).content.decode()
    assert "Nothing generated yet" in html
    assert "job-card" not in html
