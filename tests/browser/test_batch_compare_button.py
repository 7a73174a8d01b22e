"""A batch's "Compare" in real Chromium: a form's button that looks like the link it replaced, on the job cards
and on a video's page; pressing it (with JavaScript or without) makes the batch's comparison and lands on it,
while opening the batch's address only shows a page that offers the button."""

import threading

import pytest
from django.db import connections
from django.urls import reverse
from playwright.sync_api import expect

from studio.jobs import services
from studio.jobs.models import Batch, JobState
from studio.jobs.poller import drive_job
from studio.projects.models import Membership, Role
from studio.review.models import Comparison
from tests.browser.conftest import SCREENSHOTS, sign_in

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "gutter-boat-3"
PROMPT = "A paper boat drifts down a rain gutter, close up, late afternoon light"


@pytest.fixture
def batch_videos(sandbox, sandbox_accounts, demo_project, django_user_model):
    """A batch of three real sandbox jobs on three providers, run side by side to their end; "vera" is a viewer."""
    editor = django_user_model.objects.create_user("eddie", "eddie@studio.example", PASSWORD)
    viewer = django_user_model.objects.create_user("vera", "vera@studio.example", PASSWORD)
    Membership.objects.create(project=demo_project, user=editor, role=Role.EDITOR)
    Membership.objects.create(project=demo_project, user=viewer, role=Role.VIEWER)
    sandbox.set_job_seconds(1)
    version = services.prompt_version_for(project=demo_project, user=editor, text=PROMPT)
    batch = Batch.objects.create(project=demo_project, prompt_version=version, name=PROMPT)
    requests = [
        (sandbox_accounts["uniall"], "viduq3t-540p", {"prompt": PROMPT, "duration": 5, "audio": False}),
        (sandbox_accounts["qingbo"], "veo-3.0", {"prompt": PROMPT, "duration": 4}),
        (sandbox_accounts["modelmax"], "veo-3-fast", {"prompt": PROMPT, "duration": 6, "resolution": "720p"}),
    ]
    jobs = [services.job_create(project=demo_project, user=editor, account=account, model=model, params=params,
                                prompt_version=version, batch=batch)
            for account, model, params in requests]
    finished = {}

    def run(job):
        try:
            finished[job.pk] = drive_job(job, timeout=60)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(job,), daemon=True) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=70)
    assert all(finished[job.pk].state == JobState.SUCCEEDED for job in jobs), finished
    return batch, [finished[job.pk].results.get() for job in jobs]


def shoot(locator, name):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    locator.screenshot(path=str(SCREENSHOTS / f"{name}.png"))


def wait_for_posters(page, count):
    page.wait_for_function(f"() => document.querySelectorAll('.job-card video[poster]').length >= {count}")


def test_compare_buttons_look_like_links_and_a_press_makes_the_comparison(
    live_server, page, screenshot, batch_videos, demo_project
):
    batch, videos = batch_videos
    slug = demo_project.slug
    batch_address = f"{live_server.url}{reverse('batch_compare', args=[slug, batch.pk])}"
    sign_in(page, live_server, "vera", PASSWORD)

    # Opening the batch's address only looks: a page that explains and offers the button.
    for width in (1440, 1024):
        page.set_viewport_size({"width": width, "height": 900})
        page.goto(batch_address)
        expect(page.get_by_role("button", name="Compare them side by side")).to_be_visible()
        screenshot(page, f"batch-compare-page-{width}")
    assert not Comparison.objects.exists()

    # The job cards' row, and a video's page, at two widths.
    result_address = f"{live_server.url}{reverse('result_detail', args=[slug, videos[1].pk])}"
    for width in (1440, 1024):
        page.set_viewport_size({"width": width, "height": 900})
        page.goto(f"{live_server.url}{reverse('project_detail', args=[slug])}")
        wait_for_posters(page, 3)
        cards = page.locator(".job-card")
        expect(cards).to_have_count(3)
        for card in cards.all():
            compare = card.locator(".job-card-foot").get_by_role("button", name="Compare")
            expect(compare).to_be_visible()
            # The same colour, size and baseline as the links beside it.
            details = card.locator(".job-card-foot").get_by_role("link", name="Details")
            looks = "e => { const s = getComputedStyle(e); return [s.color, s.fontSize, s.fontWeight] }"
            assert compare.evaluate(looks) == details.evaluate(looks)
            assert abs(compare.bounding_box()["y"] - details.bounding_box()["y"]) <= 1
        shoot(page.locator("#job-grid"), f"batch-compare-cards-{width}")
        shoot(cards.first.locator(".job-card-foot"), f"batch-compare-card-foot-{width}")
        page.goto(result_address)
        expect(page.get_by_role("button", name="Compare its batch")).to_be_visible()
        shoot(page.locator(".page-head"), f"batch-compare-result-head-{width}")
        screenshot(page, f"batch-compare-result-{width}")
        page.goto(f"{live_server.url}{reverse('gallery', args=[slug])}?batch={batch.pk}")
        expect(page.get_by_role("button", name="Compare this batch")).to_be_visible()
        shoot(page.locator(".gallery-head"), f"batch-compare-gallery-head-{width}")
    assert not Comparison.objects.exists(), "looking made nothing"

    # A press on a card's Compare (a POST, with its CSRF token) makes the comparison and lands on it.
    page.set_viewport_size({"width": 1440, "height": 900})
    page.goto(f"{live_server.url}{reverse('project_detail', args=[slug])}")
    page.locator(".job-card").first.locator(".job-card-foot").get_by_role("button", name="Compare").click()
    page.wait_for_url("**/comparisons/*/")
    comparison = Comparison.objects.get()
    assert page.url == f"{live_server.url}{reverse('comparison_detail', args=[slug, comparison.pk])}"
    assert comparison.batch == batch
    assert sorted(item.result_id for item in comparison.items.all()) == sorted(v.pk for v in videos)
    expect(page.locator(".compare-cell")).to_have_count(3)
    page.console_errors.assert_none()

    # The batch's address now goes straight to it.
    page.goto(batch_address)
    page.wait_for_url(f"**{reverse('comparison_detail', args=[slug, comparison.pk])}")


def test_without_javascript_the_videos_compare_button_still_makes_the_comparison(
    live_server, chromium, batch_videos, demo_project
):
    batch, videos = batch_videos
    slug = demo_project.slug
    context = chromium.new_context(viewport={"width": 1440, "height": 900}, java_script_enabled=False)
    try:
        page = context.new_page()
        sign_in(page, live_server, "vera", PASSWORD)
        page.goto(f"{live_server.url}{reverse('result_detail', args=[slug, videos[0].pk])}")
        page.get_by_role("button", name="Compare its batch").click()
        page.wait_for_url("**/comparisons/*/")
        comparison = Comparison.objects.get()
        assert comparison.batch == batch
        assert page.url == f"{live_server.url}{reverse('comparison_detail', args=[slug, comparison.pk])}"
    finally:
        context.close()
