"""One prompt with a first and a last frame, sent to three models on three providers, followed live to the
end in real Chromium; then "Run again" on one of them."""

import threading

import av
import pytest
from django.db import connections
from playwright.sync_api import expect
from PIL import ImageStat

from studio.jobs.models import Job, JobState
from studio.jobs.poller import Poller
from studio.projects.models import Membership, Role
from studio.providers import catalog, pricing
from studio.providers.registry import model_spec
from tests.browser.conftest import sign_in
from tests.helpers import png_bytes
# The real sandbox and its accounts, shared with the job tests (a conftest's fixtures reach only its folder).

pytestmark = pytest.mark.django_db(transaction=True)

PROMPT = "A paper lantern drifts from a red dawn into a blue night over a quiet harbour"
RED, BLUE = (220, 20, 20), (20, 40, 220)
TARGETS = [("qingbo", "veo-3.1"), ("uniall", "viduq3p-540p"), ("veoquery", "veo3.1-fast")]


@pytest.fixture
def poller():
    """The cluster's poller in a thread of this test (queued jobs are due at once); the thread is always
    stopped before the database is flushed."""
    loop = Poller(threads=4, owner="browser-test")

    def run():
        try:
            loop.run()
        finally:
            connections.close_all()

    thread = threading.Thread(target=run, name="poller", daemon=True)
    thread.start()
    yield loop
    loop.stop()
    thread.join(timeout=60)


def look(page, screenshot, name):
    """A screenshot from the top, then the empty style="" Playwright leaves on inputs (it hides the caret
    while shooting) is removed: htmx would copy it onto re-rendered fields, which the CSP rightly blocks."""
    page.evaluate("window.scrollTo(0, 0)")
    screenshot(page, name)
    page.evaluate("document.querySelectorAll('[style=\"\"]').forEach((el) => el.removeAttribute('style'))")


def first_frame_colour(result):
    with av.open(result.file.path) as container:
        frame = next(container.decode(video=0))
    return tuple(int(v) for v in ImageStat.Stat(frame.to_image().convert("RGB")).mean)


def close_to(colour, target, tolerance=40):
    return all(abs(a - b) <= tolerance for a, b in zip(colour, target))


def expected_total(params_by_target):
    total = 0
    for (provider, model), params in params_by_target.items():
        spec = model_spec(provider, model)
        total += pricing.estimate(spec, catalog.validate(spec, {"prompt": PROMPT, **params},
                                                         catalog.ImagesGiven(True, True, 0)))[0]
    return total


def test_one_prompt_with_frames_to_three_providers_then_run_again(
    live_server, page, screenshot, sandbox, sandbox_accounts, demo_project, django_user_model, poller,
    settings,
):
    settings.STUDIO_SANDBOX_URL = sandbox.url  # the accounts are the sandbox's: no public-URL warning
    editor = django_user_model.objects.create_user("maya", "maya@studio.example", "harbour-lantern-5")
    Membership.objects.create(project=demo_project, user=editor, role=Role.EDITOR)
    keys = {target: f"{sandbox_accounts[target[0]].pk}:{target[1]}" for target in TARGETS}

    sign_in(page, live_server, "maya", "harbour-lantern-5")
    page.goto(f"{live_server.url}/p/{demo_project.slug}/")
    page.evaluate("window.studioPageMarker = 'still the same page'")
    page.fill("#f-prompt", PROMPT)

    for provider, model in TARGETS:
        page.locator("details.target-group", has_text=f"sandbox-{provider}").locator("summary").click()
        page.locator(f'input[name=targets][value="{keys[(provider, model)]}"]').check()
        expect(page.locator(".target-section", has_text=model_spec(provider, model).label)).to_be_visible()
    expect(page.locator(".target-section")).to_have_count(3)
    page.select_option("#f-duration", "4")
    expect(page.locator("#f-duration")).to_have_value("4")

    page.set_input_files("#f-first_frame-file", files=[
        {"name": "red.png", "mimeType": "image/png", "buffer": png_bytes(RED, size=(320, 180))}])
    page.set_input_files("#f-last_frame-file", files=[
        {"name": "blue.png", "mimeType": "image/png", "buffer": png_bytes(BLUE, size=(320, 180))}])
    for role in ("first_frame", "last_frame"):
        expect(page.locator(f"#slot-{role} .slot-image img")).to_have_count(1)
        expect(page.locator(f"input[name={role}]")).to_have_count(1)
    expect(page.locator("#f-prompt")).to_have_value(PROMPT)
    previews = page.locator(".slot-image img")
    expect(previews).to_have_count(2)
    page.wait_for_function("images => images.every((image) => image.complete && image.naturalWidth > 0)",
                           arg=previews.element_handles())
    expect(page.locator(".composer-warning")).to_have_count(0)

    total = expected_total({("qingbo", "veo-3.1"): {"duration": 4},
                            ("uniall", "viduq3p-540p"): {"duration": 4},
                            ("veoquery", "veo3.1-fast"): {}})
    expect(page.locator(".composer-total strong")).to_have_text(f"{total:.2f} USD")
    expect(page.locator(".target-section .cost-bad")).to_have_count(0)
    look(page, screenshot, "composer-1440")
    page.set_viewport_size({"width": 1024, "height": 900})
    look(page, screenshot, "composer-1024")
    page.set_viewport_size({"width": 1440, "height": 900})

    page.locator("#f-prompt").press("Control+Enter")
    cards = page.locator("#job-grid .job-card")
    expect(cards).to_have_count(3)
    expect(page.locator(".composer-banner-ok")).to_contain_text("Sent to 3 models")
    jobs = list(Job.objects.order_by("pk"))
    assert [(job.provider, job.model) for job in jobs] == TARGETS
    for job in jobs:
        expect(page.locator(f"#job-{job.pk} .state")).to_have_text("Succeeded", timeout=60_000)
    marker = page.evaluate("window.studioPageMarker")
    assert marker == "still the same page", "the cards update without a reload"
    look(page, screenshot, "composer-submitted")

    for job in jobs:
        job.refresh_from_db()
        assert job.state == JobState.SUCCEEDED, (job, job.error_message)
        assert sorted(job.images.values_list("role", flat=True)) == ["first_frame", "last_frame"]
        colour = first_frame_colour(job.results.get())
        assert close_to(colour, RED), f"{job.provider}/{job.model} starts with {colour}, not red"

    original = jobs[1]
    page.locator(f"#job-{original.pk}").get_by_role("button", name="Run again").click()
    expect(cards).to_have_count(4)
    again = Job.objects.order_by("-pk").first()
    expect(page.locator("#job-grid .job-card").first).to_have_id(f"job-{again.pk}")
    assert (again.account_id, again.model, again.params, again.prompt_version_id) == (
        original.account_id, original.model, original.params, original.prompt_version_id)
    frames = ("role", "image_id", "position")
    assert list(again.images.values_list(*frames)) == list(original.images.values_list(*frames))
    expect(page.locator(f"#job-{again.pk} .state")).to_have_text("Succeeded", timeout=60_000)
    assert page.evaluate("window.studioPageMarker") == "still the same page"

    page.locator(f"#job-{again.pk}").get_by_role("link", name="Edit and run").click()
    expect(page.locator(".composer-banner-accent")).to_contain_text(f"Loaded from job {again.pk}")
    expect(page.locator(f'input[name=targets][value="{keys[TARGETS[1]]}"]')).to_be_checked()
    expect(page.locator("#f-duration")).to_have_value("4")
    expect(page.locator(".slot-image img")).to_have_count(2)
    page.locator(".composer-banner-accent").get_by_role("link", name="Undo").click()
    expect(page.locator(".composer-banner-accent")).to_have_count(0)
    expect(page.locator("#f-prompt")).to_have_value("")

    page.goto(f"{live_server.url}/p/{demo_project.slug}/prompts/")
    expect(page.locator(".prompt-version")).to_have_count(1)
    expect(page.locator(".version-jobs li")).to_have_count(4)
    screenshot(page, "prompt-history")
    page.console_errors.assert_none()
