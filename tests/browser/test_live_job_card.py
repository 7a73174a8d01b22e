"""A job's card follows its job live on an open project page, then plays the stored video (real Chromium)."""

import threading

import pytest
from django.db import connections
from playwright.sync_api import expect

from studio.jobs import services
from studio.jobs.models import Job, JobState
from studio.jobs.poller import drive_job
from studio.projects.models import Membership, Role
from tests.browser.conftest import sign_in

# The real sandbox and its accounts, shared with the job tests (a conftest's fixtures reach only its folder).

pytestmark = pytest.mark.django_db(transaction=True)

PROMPT = "A lighthouse keeper climbs the spiral stairs at dusk, lantern swinging, waves below"


@pytest.fixture
def drive_in_background():
    """drive_in_background(job_id): run the job to its end as a worker would, in a thread of this test (no
    task cluster). Its thread is always waited for, so it never writes after the database is flushed."""
    threads = []

    def start(job_id):
        outcome = {}

        def run():
            try:
                outcome["job"] = drive_job(Job.objects.get(pk=job_id), timeout=60)
            except BaseException as error:  # reported by the test, not lost in the thread
                outcome["error"] = error
            finally:
                connections.close_all()

        thread = threading.Thread(target=run, name=f"drive-job-{job_id}", daemon=True)
        thread.start()
        threads.append(thread)
        return thread, outcome

    yield start
    for thread in threads:
        thread.join(timeout=70)


def test_a_card_follows_its_job_without_a_reload_and_plays_the_video(
    live_server, page, screenshot, sandbox, sandbox_accounts, demo_project, django_user_model,
    drive_in_background,
):
    owner = django_user_model.objects.create_user("ines", "ines@studio.example", "lantern-stairs-4")
    Membership.objects.create(project=demo_project, user=owner, role=Role.OWNER)
    sandbox.set_job_seconds(4)
    job = services.job_create(project=demo_project, user=owner, account=sandbox_accounts["qingbo"],
                              model="veo-3.0", params={"prompt": PROMPT, "duration": 4})

    sign_in(page, live_server, "ines", "lantern-stairs-4")
    page.goto(f"{live_server.url}/p/{demo_project.slug}/")
    card = page.locator(f"#job-{job.pk}")
    state = card.locator(".state")
    expect(state).to_have_text("Queued")
    expect(card).to_contain_text("Waiting to be sent to the provider.")
    page.evaluate("window.studioPageMarker = 'still the same page'")

    thread, outcome = drive_in_background(job.pk)
    expect(state).to_have_text("Running", timeout=15_000)
    expect(card.locator("progress.job-progress")).to_be_visible()
    screenshot(page, "job-card-running")

    expect(state).to_have_text("Succeeded", timeout=40_000)
    thread.join(timeout=30)
    assert "error" not in outcome, outcome.get("error")
    assert outcome["job"].state == JobState.SUCCEEDED
    assert page.evaluate("window.studioPageMarker") == "still the same page", "the page must not reload"
    assert card.get_attribute("hx-trigger") is None, "a finished card stops asking"

    result = job.results.get()
    video = card.locator("video")
    expect(video).to_have_attribute("src", f"/media/{result.file.name}")
    expect(card).to_contain_text(f"{result.width}×{result.height}")
    video.evaluate("v => { v.muted = true; return v.play(); }")
    page.wait_for_function("v => v.currentTime > 0.5", arg=video.element_handle(), timeout=15_000)
    assert video.evaluate("v => v.videoWidth") == result.width
    assert video.evaluate("v => v.videoHeight") == result.height
    video.evaluate("v => v.pause()")
    screenshot(page, "job-card-succeeded")

    card.get_by_role("link", name="Details").click()
    page.wait_for_url(f"{live_server.url}/p/{demo_project.slug}/jobs/{job.pk}/")
    expect(page.get_by_role("heading", name="History")).to_be_visible()
    expect(page.locator("table.history")).to_contain_text("Video stored")
    expect(page.locator("table.history")).to_contain_text(outcome["job"].provider_task_id)
    page.locator("details.payload").nth(1).locator("summary").click()
    # The controls show a spinner until the video has loaded, then fade it out: show the page at rest.
    page.wait_for_function("v => v.readyState === v.HAVE_ENOUGH_DATA && v.networkState !== v.NETWORK_LOADING",
                           arg=page.locator("video").element_handle())
    page.wait_for_timeout(2500)
    page.evaluate("window.scrollTo(0, 0)")
    screenshot(page, "job-detail")

    page.console_errors.assert_none()


def test_an_editor_settles_an_ambiguous_job_from_its_card(
    live_server, page, screenshot, sandbox_accounts, demo_project, django_user_model
):
    editor = django_user_model.objects.create_user("tomas", "tomas@studio.example", "harbour-fog-8")
    Membership.objects.create(project=demo_project, user=editor, role=Role.EDITOR)
    account = sandbox_accounts["qingbo"]

    def job_in(state, prompt, **fields):
        job = services.job_create(project=demo_project, user=editor, account=account, model="veo-3.0",
                                  params={"prompt": prompt, "duration": 4})
        Job.objects.filter(pk=job.pk).update(state=state, **fields)
        return job

    job_in(JobState.FAILED, "A red kite over wheat fields",
           error_message="Content policy violation: the prompt mentions a real person (code 4031).")
    job_in(JobState.RUNNING, "Rain on a tin roof, close up, slow motion", progress=40,
           provider_status="processing")
    kept = job_in(JobState.SUBMIT_UNKNOWN, "Fog rolling over a harbour at dawn",
                  error_message="The provider did not answer within 30 s after the request was sent.")
    undecided = job_in(JobState.SUBMIT_UNKNOWN, "A tram crossing a bridge at night, neon reflections",
                       error_message="The provider answered 502 Bad Gateway.")

    sign_in(page, live_server, "tomas", "harbour-fog-8")
    page.goto(f"{live_server.url}/p/{demo_project.slug}/")
    card = page.locator(f"#job-{undecided.pk}")
    expect(card).to_contain_text("The provider may have accepted this job, but we could not confirm it.")
    screenshot(page, "job-cards-states")
    page.evaluate("window.studioPageMarker = 'still the same page'")

    card.get_by_role("button", name="Mark as failed").click()
    expect(card.locator(".state")).to_have_text("Failed")
    expect(card).to_contain_text("Marked as failed by tomas")
    assert card.get_by_role("button", name="Mark as failed").count() == 0
    assert page.evaluate("window.studioPageMarker") == "still the same page", "only the card is replaced"

    other = page.locator(f"#job-{kept.pk}")
    page.once("dialog", lambda dialog: dialog.dismiss())
    other.get_by_role("button", name="Submit again (may be charged twice)").click()
    expect(other.locator(".state")).to_have_text("Outcome unknown")
    kept.refresh_from_db()
    assert kept.state == JobState.SUBMIT_UNKNOWN, "dismissing the warning sends nothing"
    page.console_errors.assert_none()
