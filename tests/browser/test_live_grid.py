"""The project page keeps its whole grid of cards current with one request per interval, however many jobs are
live (real Chromium): a changed card is swapped in, a job made elsewhere joins the grid, a finished one shows its
video, and once nothing is live the page stops asking."""

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from studio.jobs.models import Job, JobState, Result
from studio.projects.models import Membership, Project, Prompt, PromptVersion, Role
from studio.providers.models import ProviderAccount
from studio.sandbox.video import render_video
from tests.browser.conftest import sign_in

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "canal-herons-5"
RUNNING_JOBS = 12
LIVE_REQUESTS = ("/jobs/updates/", "/card/")  # the grid's updater, and a card asking for itself (as before)


@pytest.fixture
def canal(django_user_model):
    editor = django_user_model.objects.create_user("mira", "mira@studio.example", PASSWORD)
    project = Project.objects.create(name="Canal at first light", slug="canal")
    Membership.objects.create(project=project, user=editor, role=Role.EDITOR)
    account = ProviderAccount(provider="qingbo", name="QWave main", base_url="http://127.0.0.1:9/qingbo")
    account.set_api_key("sk-sandbox-qingbo-grid")
    account.save()
    version = PromptVersion.objects.create(prompt=Prompt.objects.create(project=project, title="Heron"), number=1,
                                           text="A heron lifts off a misty canal at first light, slow motion")

    def make(state=JobState.RUNNING, *, age=timedelta(minutes=1), **fields):
        job = Job.objects.create(project=project, prompt_version=version, account=account, provider="qingbo",
                                 model="veo-3.0", params={"prompt": version.text, "duration": 4}, state=state,
                                 **fields)
        Job.objects.filter(pk=job.pk).update(created_at=timezone.now() - age)
        return job

    return project, make


@pytest.fixture
def live_requests(page):
    """The page's live requests (the updater's or a card's), as they are sent."""
    sent = []
    page.on("request", lambda request: sent.append(request.url) if any(
        part in request.url for part in LIVE_REQUESTS) else None)
    return sent


def requests_during(page, sent, seconds):
    start = len(sent)
    page.wait_for_timeout(seconds * 1000)  # the quantity measured is requests per unit of time
    return sent[start:]


def stored_video(job, media_root):
    relative = f"projects/{job.project_id}/videos/heron-{job.pk}.mp4"
    path = media_root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    render_video(path, width=1280, height=720, duration=2.0, fps=24, audio=False, lines=["heron"])
    return Result.objects.create(job=job, file=relative, sha256="0" * 64, bytes=path.stat().st_size,
                                 processed_at=timezone.now(), width=1280, height=720, duration=2.0, fps=24.0)


def test_a_page_with_many_running_jobs_asks_once_per_interval(live_server, page, live_requests, canal):
    project, make = canal
    jobs = [make(JobState.RUNNING, progress=10 + n) for n in range(RUNNING_JOBS)]
    sign_in(page, live_server, "mira", PASSWORD)
    page.goto(f"{live_server.url}/p/{project.slug}/")
    expect(page.locator(".job-card")).to_have_count(RUNNING_JOBS)

    sent = requests_during(page, live_requests, 6.5)  # three intervals of 2 s (a running card's pace)
    assert 2 <= len(sent) <= 4, f"{len(sent)} live requests in 6.5 s with {RUNNING_JOBS} running jobs: {sent}"
    assert all("/jobs/updates/" in url for url in sent)
    expect(page.locator(f"#job-{jobs[0].pk} .job-time")).to_contain_text("so far")
    page.console_errors.assert_none()


def test_the_grid_follows_changes_new_jobs_and_finished_videos_then_stops(
        live_server, page, live_requests, canal, media_root, screenshot):
    project, make = canal
    failed = make(JobState.FAILED, error_message="Content policy violation: a real person is named (code 4031).")
    running = [make(JobState.RUNNING, progress=20) for _ in range(3)]
    sign_in(page, live_server, "mira", PASSWORD)
    page.goto(f"{live_server.url}/p/{project.slug}/")
    page.evaluate("window.studioPageMarker = 'still the same page'")

    Job.objects.filter(pk=running[0].pk).update(progress=65)
    expect(page.locator(f"#job-{running[0].pk}")).to_contain_text("Generating the video · 65%")

    elsewhere = make(JobState.QUEUED, age=timedelta(seconds=10))  # the command line, or another tab
    expect(page.locator(".job-card").first).to_have_id(f"job-{elsewhere.pk}")
    expect(page.locator(f"#job-{elsewhere.pk}")).to_contain_text("Waiting to be sent to the provider.")

    done = running[1]
    result = stored_video(done, media_root)
    Job.objects.filter(pk=done.pk).update(state=JobState.SUCCEEDED, finished_at=timezone.now(), progress=100)
    video = page.locator(f"#job-{done.pk} video")
    expect(video).to_have_attribute("src", f"/media/{result.file.name}")
    expect(page.locator(f"#job-{done.pk}")).to_contain_text("1280×720")
    expect(page.locator(f"#job-{failed.pk}")).to_contain_text("code 4031")
    assert page.evaluate("window.studioPageMarker") == "still the same page", "the page must not reload"

    for width in (1440, 1024):
        page.set_viewport_size({"width": width, "height": 900})
        page.wait_for_timeout(300)
        screenshot(page, f"live-grid-{width}")
        overflowing = page.evaluate("""() => [...document.querySelectorAll('.job-card')].flatMap(card => {
            const box = card.getBoundingClientRect();
            return [...card.querySelectorAll('*')].filter(el => {
                const r = el.getBoundingClientRect();
                return r.width && (r.left < box.left - 0.5 || r.right > box.right + 0.5);
            }).map(el => card.id + ' ' + el.tagName + '.' + el.className);
        })""")
        assert overflowing == [], f"at {width} px: {overflowing}"

    Job.objects.filter(state__in=[JobState.RUNNING, JobState.QUEUED]).update(
        state=JobState.CANCELLED, finished_at=timezone.now())
    for job in (running[0], running[2], elsewhere):
        expect(page.locator(f"#job-{job.pk} .state")).to_have_text("Cancelled")
    page.wait_for_timeout(500)  # an answer in flight lands
    assert requests_during(page, live_requests, 5) == [], "nothing left to follow: the page stops asking"
    page.console_errors.assert_none()
