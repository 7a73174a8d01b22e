"""What the hardened engine shows people (real Chromium): a stored video plays before its poster is made and
the card fills in by itself when the worker's task ends; a failure's reason stays inside its card; a paused
account is marked where models are chosen and in the admin."""

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from studio.jobs import tasks
from studio.jobs.models import Job, JobState, Result
from studio.projects.models import Membership, Project, Prompt, PromptVersion, Role
from studio.providers.models import AccountHealth, ProviderAccount
from studio.sandbox.video import render_video
from tests.browser.conftest import sign_in

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "harbour-gulls-7"


@pytest.fixture
def harbour(django_user_model):
    owner = django_user_model.objects.create_user("noor", "noor@studio.example", PASSWORD)
    project = Project.objects.create(name="Harbour at dawn", slug="harbour")
    Membership.objects.create(project=project, user=owner, role=Role.OWNER)
    account = ProviderAccount(provider="qingbo", name="QWave main", base_url="http://127.0.0.1:9/qingbo")
    account.set_api_key("sk-sandbox-qingbo-screens")
    account.save()
    version = PromptVersion.objects.create(prompt=Prompt.objects.create(project=project, title="Gulls"), number=1,
                                           text="Gulls wheel over a wooden pier at dawn, mist on the water")
    return project, account, version


def make_job(project, account, version, state, **fields):
    return Job.objects.create(project=project, prompt_version=version, account=account, provider="qingbo",
                              model="veo-3.0", params={"prompt": version.text, "duration": 4, "resolution": "720p"},
                              state=state, **fields)


def stored_video(job, media_root):
    relative = f"projects/{job.project_id}/videos/gulls.mp4"
    path = media_root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    render_video(path, width=1280, height=720, duration=2.0, fps=24, audio=False, lines=["gulls"])
    return Result.objects.create(job=job, file=relative, sha256="0" * 64, bytes=path.stat().st_size)


def within(inner, outer):
    return (inner["x"] >= outer["x"] - 0.5 and inner["x"] + inner["width"] <= outer["x"] + outer["width"] + 0.5)


@pytest.mark.parametrize("width", [1440, 1024])
def test_a_stored_video_plays_at_once_and_its_card_fills_in_when_the_poster_is_made(
        live_server, page, screenshot, harbour, media_root, width):
    project, account, version = harbour
    page.set_viewport_size({"width": width, "height": 900})
    job = make_job(project, account, version, JobState.SUCCEEDED, finished_at=timezone.now())
    result = stored_video(job, media_root)
    failed = make_job(project, account, version, JobState.FAILED, finished_at=timezone.now(),
                      error_message="The status check failed 8 times in a row: Provider error 502: Bad gateway "
                                    "from upstream cluster eu-west-4 (request id 7f3c9a…). The studio keeps "
                                    "checking for a day in case the provider recovers.")

    sign_in(page, live_server, "noor", PASSWORD)
    page.goto(f"{live_server.url}/p/{project.slug}/")
    card = page.locator(f"#job-{job.pk}")
    expect(card).to_contain_text("Checking the video and making its poster…")
    expect(card.locator("video")).to_be_visible()
    assert card.locator("video").get_attribute("poster") is None
    screenshot(page, f"engine-card-checking-{width}")

    tasks.process_result(result.pk)  # what a django-q2 worker does a moment later
    expect(card.locator("video")).to_have_attribute("poster", f"/media/projects/{project.pk}/posters/gulls.jpg",
                                                    timeout=10_000)
    expect(card).to_contain_text("1280×720")
    expect(card).not_to_contain_text("Checking the video")
    assert card.get_attribute("hx-trigger") is None, "a card with its poster asks no more"

    failure = page.locator(f"#job-{failed.pk}")
    expect(failure).to_contain_text("The job failed.")
    assert within(failure.locator(".job-error").bounding_box(), failure.bounding_box())
    screenshot(page, f"engine-cards-{width}")
    page.goto(f"{live_server.url}/p/{project.slug}/jobs/{job.pk}/")
    expect(page.locator("table").first).to_contain_text("1280×720")
    screenshot(page, f"engine-job-page-{width}")
    page.console_errors.assert_none()


@pytest.mark.parametrize("width", [1440, 1024])
def test_a_paused_account_is_marked_in_the_composer_and_the_admin(live_server, page, screenshot, harbour,
                                                                  django_user_model, width):
    project, account, _ = harbour
    page.set_viewport_size({"width": width, "height": 900})
    now = timezone.now()
    AccountHealth.objects.create(account=account, consecutive_failures=5, calls=40, failures=7,
                                 last_failure="Provider error 503: Service temporarily unavailable",
                                 last_failure_at=now, last_success_at=now - timedelta(minutes=3),
                                 paused_at=now, paused_until=now + timedelta(seconds=60))
    django_user_model.objects.create_superuser("root", "root@studio.example", PASSWORD)
    Membership.objects.create(project=project, user=django_user_model.objects.get(username="root"), role=Role.OWNER)

    sign_in(page, live_server, "noor", PASSWORD)
    page.goto(f"{live_server.url}/p/{project.slug}/")
    group = page.locator(".target-group", has_text="QWave main")
    expect(group.locator(".badge-warn")).to_have_text("Paused")
    group.locator("summary").click()
    note = group.locator(".target-paused")
    expect(note).to_contain_text("Paused: its last 5 calls failed (Provider error 503")
    assert within(note.bounding_box(), group.bounding_box())
    screenshot(page, f"engine-composer-paused-{width}")

    page.context.clear_cookies()
    page.goto(f"{live_server.url}/login/")
    page.fill("#id_username", "root")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.goto(f"{live_server.url}/admin/providers/provideraccount/")
    expect(page.locator("td.field-health_state")).to_contain_text("Paused until")
    screenshot(page, f"engine-admin-accounts-{width}")
    page.click("text=QWave main")
    expect(page.locator(".field-health_details")).to_contain_text("7 of 40 calls failed")
    expect(page.locator(".field-health_details")).to_contain_text("Provider error 503")
    screenshot(page, f"engine-admin-account-{width}")
