"""Reviewing in real Chromium: comments that seek the player, the gallery's scrubbing and compare picker,
stars and picks without a reload, and how the review pages look at two widths."""

import re
import secrets
import shutil
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone
from playwright.sync_api import expect

from studio.jobs import services
from studio.jobs.models import Job, JobState, Result, ReviewState
from studio.jobs.poller import drive_job
from studio.projects.models import Membership, Role
from studio.review.models import Comment, Comparison, Rating
from studio.review.services import comparison_create
from tests.browser.conftest import sign_in

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "heron-reeds-dawn-7"
HERON = "A grey heron wading through reeds at first light, mist on the water"
BOAT = "A paper boat drifting down a rain-soaked street, morning light"
NOTHING_TICKED = "Tick 2 to 4 videos to compare them side by side."
LIGHTHOUSE = "A lighthouse at dusk, waves rolling in, the beam sweeping over the sea"


@pytest.fixture
def people(demo_project, django_user_model):
    """An owner, an editor and a viewer of the demo project, each able to sign in."""
    made = {}
    for name, role in (("olga", Role.OWNER), ("eddie", Role.EDITOR), ("vera", Role.VIEWER)):
        made[name] = django_user_model.objects.create_user(name, f"{name}@studio.example", PASSWORD)
        Membership.objects.create(project=demo_project, user=made[name], role=role)
    return made


FILE_FIELDS = ("file", "poster", "thumbnail_strip")
PROBED_FIELDS = ("sha256", "bytes", "duration", "width", "height", "fps", "video_codec", "has_audio",
                 "thumbnail_count")
_first_clip = {}  # the files of the first clip this module had the sandbox make, for the tests after it


def task_id():
    return f"task-{secrets.token_hex(4)}"


def run_in_sandbox(project, user, account):
    job = services.job_create(project=project, user=user, account=account, model="veo-3.0",
                              params={"prompt": HERON, "duration": 4})
    job = drive_job(job, timeout=60)
    assert job.state == JobState.SUCCEEDED, job.error_message
    return job.results.get()


@pytest.fixture
def sandbox_video(sandbox_accounts, demo_project, people, tmp_path_factory):
    """A job run for real through the sandbox (a 4 s, 1280×720 clip with sound), with its whole history."""
    result = run_in_sandbox(demo_project, people["eddie"], sandbox_accounts["qingbo"])
    if not _first_clip:
        kept = tmp_path_factory.mktemp("first-clip")
        for name in FILE_FIELDS:
            stored = Path(settings.MEDIA_ROOT) / getattr(result, name).name
            _first_clip[name] = shutil.copy(stored, kept / stored.name)
        _first_clip.update({name: getattr(result, name) for name in PROBED_FIELDS})
    return result


@pytest.fixture
def real_video(request, sandbox_accounts, demo_project, people):
    """A stored sandbox clip. The first test to ask runs the job; later ones store a copy of that clip for a
    new job (pages read only the stored files and rows), which saves a render and a poll loop per test."""
    if not _first_clip:
        return request.getfixturevalue("sandbox_video")
    job = services.job_create(project=demo_project, user=people["eddie"], account=sandbox_accounts["qingbo"],
                              model="veo-3.0", params={"prompt": HERON, "duration": 4})
    Job.objects.filter(pk=job.pk).update(state=JobState.SUCCEEDED, provider_task_id=task_id(),
                                         submitted_at=timezone.now(), finished_at=timezone.now())
    files = {}
    for name, folder in zip(FILE_FIELDS, ("videos", "posters", "posters")):
        relative = f"projects/{demo_project.pk}/{folder}/{Path(_first_clip[name]).name}"
        (Path(settings.MEDIA_ROOT) / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(_first_clip[name], Path(settings.MEDIA_ROOT) / relative)
        files[name] = relative
    return Result.objects.create(job=job, **files, **{name: _first_clip[name] for name in PROBED_FIELDS})


def another_take(result, *, model, prompt, account, user, **fields):
    """A second video row made from the first one's files, as if another model had delivered it (the gallery
    and comparisons only need more rows)."""
    job = services.job_create(project=result.job.project, user=user, account=account, model=model,
                              params={"prompt": prompt, "duration": 4})
    Job.objects.filter(pk=job.pk).update(state=JobState.SUCCEEDED, provider_task_id=task_id())
    copied = {name: getattr(result, name) for name in FILE_FIELDS + PROBED_FIELDS}
    return Result.objects.create(job=job, **{**copied, **fields})


def result_page(live_server, result):
    return f"{live_server.url}/p/{result.job.project.slug}/results/{result.pk}/"


def wait_for_player(page):
    page.wait_for_function("() => document.querySelector('#player').readyState >= 1")


def player_time(page):
    return page.evaluate("document.querySelector('#player').currentTime")


def seconds_of(timecode):
    minutes, seconds = timecode.split(":")
    return int(minutes) * 60 + float(seconds)


# The result page ----------------------------------------------------------------------------------------


def test_a_comment_at_a_time_code_seeks_the_player_there(live_server, page, real_video, people):
    sign_in(page, live_server, "vera", PASSWORD)
    page.goto(result_page(live_server, real_video))
    wait_for_player(page)
    page.fill("#c-body", "The heron's neck bends oddly here")
    page.fill("#c-timecode", "2.5")
    page.get_by_role("button", name="Comment", exact=True).click()

    comment = page.locator(".comment", has_text="The heron's neck bends oddly here")
    link = comment.locator("a.timecode")
    expect(link).to_have_text("0:02.50")
    assert Comment.objects.get().timecode == 2.5
    expect(page.locator("#c-body")).to_have_value("")

    page.evaluate("document.querySelector('#player').currentTime = 0.5")
    page.wait_for_function("() => Math.abs(document.querySelector('#player').currentTime - 0.5) < 0.05")
    link.click()
    page.wait_for_function("() => Math.abs(document.querySelector('#player').currentTime - 2.5) < 0.05")
    assert abs(player_time(page) - 2.5) < 0.05
    assert page.url.endswith(f"/results/{real_video.pk}/"), "the link seeks instead of jumping to #player"
    page.console_errors.assert_none()


def test_focusing_the_comment_box_pauses_the_player_and_keeps_the_moment(live_server, page, real_video,
                                                                         people):
    sign_in(page, live_server, "vera", PASSWORD)
    page.goto(result_page(live_server, real_video))
    wait_for_player(page)
    field = page.locator("#c-timecode")

    page.evaluate("document.querySelector('#player').currentTime = 1.5")
    page.wait_for_function("() => Math.abs(document.querySelector('#player').currentTime - 1.5) < 0.01")
    page.click("#c-body")
    expect(field).to_have_value("0:01.50")

    # While it plays: the moment the box is focused, the player stops and the field says where.
    page.locator("#c-body").blur()
    field.evaluate("input => { input.value = ''; }")
    page.evaluate("""async () => {
        const video = document.querySelector('#player');
        video.muted = true;
        video.currentTime = 1.5;
        await video.play();
    }""")
    page.wait_for_function("() => document.querySelector('#player').currentTime > 1.6")
    page.click("#c-body")
    assert page.evaluate("document.querySelector('#player').paused")
    written = field.input_value()
    assert re.fullmatch(r"0:0[1-3]\.\d\d", written), written
    assert abs(seconds_of(written) - player_time(page)) <= 0.01, "the field holds where the player stopped"

    # A time typed by hand is not overwritten by focusing the box again.
    page.locator("#c-body").blur()
    field.fill("0:03.00")
    page.evaluate("document.querySelector('#player').currentTime = 0.5")
    page.click("#c-body")
    expect(field).to_have_value("0:03.00")
    page.console_errors.assert_none()


def test_stars_and_pick_update_without_a_reload_and_stay_after_one(live_server, page, real_video, people):
    sign_in(page, live_server, "vera", PASSWORD)
    page.goto(result_page(live_server, real_video))
    page.evaluate("window.studioPageMarker = 'same page'")
    panel = page.locator(f"#review-{real_video.pk}")

    panel.get_by_role("button", name="4 stars").click()
    expect(panel.locator(".review-summary")).to_have_text(re.compile(r"^\s*4\.0 ★ from 1\s*$"))
    expect(panel.locator("button.star.on")).to_have_count(4)
    panel.get_by_role("button", name="♡ Pick").click()
    expect(panel.get_by_role("button", name="♥ Picked")).to_have_attribute("aria-pressed", "true")
    expect(panel.locator(".review-summary")).to_contain_text("♥ 1")
    panel.get_by_role("button", name="2 stars").click()
    expect(panel.locator(".review-summary")).to_contain_text("2.0 ★ from 1")
    assert page.evaluate("window.studioPageMarker") == "same page", "htmx swapped the panel, no reload"
    rating = Rating.objects.get(result=real_video, user=people["vera"])
    assert (rating.stars, rating.picked) == (2, True)

    page.reload()
    panel = page.locator(f"#review-{real_video.pk}")
    expect(panel.locator("button.star.on")).to_have_count(2)
    expect(panel.get_by_role("button", name="2 stars")).to_have_attribute("aria-pressed", "true")
    expect(panel.get_by_role("button", name="♥ Picked")).to_be_visible()

    panel.get_by_role("button", name="2 stars").click()  # the chosen star again clears the rating
    expect(panel.locator(".review-summary")).to_contain_text("No ratings yet")
    expect(panel.locator("button.star.on")).to_have_count(0)
    assert Rating.objects.get(result=real_video, user=people["vera"]).stars is None
    page.console_errors.assert_none()


def test_a_refused_comment_says_why_next_to_the_form(live_server, page, real_video, people):
    sign_in(page, live_server, "vera", PASSWORD)
    page.goto(result_page(live_server, real_video))
    page.fill("#c-body", "Past the end")
    page.fill("#c-timecode", "9")
    page.get_by_role("button", name="Comment", exact=True).click()
    expect(page.locator("#comments")).to_contain_text("The video is 4.00 s long; 9.00 s is past its end.",
                                                      timeout=2_000)
    assert not Comment.objects.exists()
    page.console_errors.assert_none()


# The gallery -------------------------------------------------------------------------------------------


@pytest.fixture
def four_takes(real_video, sandbox_accounts, people):
    """The real video and three more takes of it by other models, newest last."""
    account, user = sandbox_accounts["qingbo"], people["eddie"]
    return [real_video] + [another_take(real_video, model=model, prompt=HERON, account=account, user=user)
                           for model in ("veo-3.1", "veo-3.1-fast", "veo-3.0")]


def test_hovering_a_gallery_card_scrubs_through_its_thumbnail_strip(live_server, page, four_takes, people):
    sign_in(page, live_server, "vera", PASSWORD)
    page.goto(f"{live_server.url}/p/{four_takes[0].job.project.slug}/gallery/")
    thumb = page.locator(".result-thumb").first
    expect(thumb).to_have_attribute("data-strip-count", "10")
    box = thumb.bounding_box()

    page.mouse.move(box["x"] + box["width"] * 0.05, box["y"] + box["height"] / 2)
    expect(thumb).to_have_class(re.compile(r"\bis-scrubbing\b"))
    strip = thumb.locator(".thumb-strip img")
    page.wait_for_function("image => image.complete && image.naturalWidth > 0", arg=strip.element_handle())
    at_start = strip.evaluate("image => image.style.transform")
    assert strip.evaluate("image => getComputedStyle(image.parentElement).opacity") == "1"

    page.mouse.move(box["x"] + box["width"] * 0.55, box["y"] + box["height"] / 2, steps=4)
    in_the_middle = strip.evaluate("image => image.style.transform")
    page.mouse.move(box["x"] + box["width"] * 0.95, box["y"] + box["height"] / 2, steps=4)
    at_the_end = strip.evaluate("image => image.style.transform")
    assert at_start == "translateX(0%)"
    assert in_the_middle == "translateX(-50%)"
    assert at_the_end == "translateX(-90%)"
    assert thumb.get_attribute("data-frame") == "9"

    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] + 200)
    expect(thumb).not_to_have_class(re.compile(r"\bis-scrubbing\b"))
    page.console_errors.assert_none()


def test_filters_update_the_cards_and_the_address_and_back_restores_both(live_server, page, four_takes, people):
    sign_in(page, live_server, "vera", PASSWORD)
    page.goto(f"{live_server.url}/p/{four_takes[0].job.project.slug}/gallery/")
    cards = page.locator(".result-card")
    expect(cards).to_have_count(4)
    page.select_option("#id_model", "veo-3.0")
    expect(cards).to_have_count(2)
    expect(page).to_have_url(re.compile(r"model=veo-3\.0"))
    expect(page.locator(".gallery-count")).to_contain_text("2 videos match this filter")
    page.fill("#f-q", "no such words")
    expect(cards).to_have_count(0)
    expect(page.locator(".empty h2")).to_have_text("No video matches")
    page.go_back()
    expect(cards).to_have_count(2)
    expect(page.locator("#id_model")).to_have_value("veo-3.0")
    expect(page.locator("#f-q")).to_have_value("")
    page.console_errors.assert_none()


def test_ticking_three_cards_compares_exactly_those_three(live_server, page, four_takes, people):
    sign_in(page, live_server, "vera", PASSWORD)
    gallery = f"{live_server.url}/p/{four_takes[0].job.project.slug}/gallery/"
    page.goto(gallery)
    count, compare = page.locator("[data-compare-count]"), page.locator("[data-compare-submit]")
    expect(count).to_have_text(NOTHING_TICKED)
    boxes = page.locator("input[name=result]")
    expect(boxes).to_have_count(4)

    boxes.nth(1).check()
    expect(count).to_have_text("1 video ticked: tick at least one more.")
    expect(compare).to_be_disabled()
    boxes.nth(0).check()
    boxes.nth(3).check()
    expect(count).to_have_text("3 videos ticked.")
    expect(compare).to_be_enabled()
    ticked = [int(boxes.nth(n).get_attribute("value")) for n in (0, 1, 3)]

    compare.click()
    page.wait_for_url(re.compile(r"/comparisons/\d+/$"))
    cells = page.locator("figure.compare-cell[data-result]")
    expect(cells).to_have_count(3)
    assert [int(cells.nth(n).get_attribute("data-result")) for n in range(3)] == ticked
    comparison = Comparison.objects.get()
    assert [item.result_id for item in comparison.items.all()] == ticked
    page.console_errors.assert_none()


def test_one_ticked_card_cannot_be_compared(live_server, page, four_takes, people):
    sign_in(page, live_server, "vera", PASSWORD)
    page.goto(f"{live_server.url}/p/{four_takes[0].job.project.slug}/gallery/")
    page.locator("input[name=result]").first.check()
    expect(page.locator("[data-compare-count]")).to_have_text("1 video ticked: tick at least one more.")
    expect(page.locator("[data-compare-submit]")).to_be_disabled()
    page.locator("input[name=result]").first.uncheck()
    expect(page.locator("[data-compare-count]")).to_have_text(NOTHING_TICKED)
    page.console_errors.assert_none()


# How the pages look ------------------------------------------------------------------------------------


def wait_for_images(page):
    page.wait_for_function("() => [...document.images].every(image => image.complete)")


def test_screenshots_of_the_review_pages_at_two_widths(
    live_server, page, screenshot, sandbox_video, sandbox_accounts, people
):
    real_video = sandbox_video
    account, eddie = sandbox_accounts["qingbo"], people["eddie"]
    project = real_video.job.project
    takes = [real_video]
    more = [("veo-3.1", HERON), ("veo-3.1-fast", HERON), ("veo-3.0", BOAT), ("veo-3.1", BOAT),
            ("veo-3.1-fast", LIGHTHOUSE), ("veo-3.0", LIGHTHOUSE)]
    for n, (model, prompt) in enumerate(more):
        takes.append(another_take(real_video, model=model, prompt=prompt, account=account, user=eddie,
                                  review_state=[ReviewState.APPROVED, ReviewState.CHANGES_WANTED,
                                                ReviewState.TO_REVIEW][n % 3]))
    for n, take in enumerate(takes):
        for k, who in enumerate(("olga", "eddie", "vera")):
            if (n + k) % 2 == 0:
                Rating.objects.create(result=take, user=people[who], stars=1 + (n + k) % 5,
                                      picked=(n + k) % 4 == 0)
    Result.objects.filter(pk=real_video.pk).update(
        review_state=ReviewState.CHANGES_WANTED, review_state_by=eddie, review_state_at=timezone.now())
    for timecode, who, body in [(0.8, "olga", "The mist lifts too early; keep it until the heron steps."),
                                (2.4, "vera", "Lovely reflection on the water here."),
                                (None, "eddie", ("Overall the best take so far. Try once more with a slower "
                                                 "camera move and a longer hold at the end."))]:
        Comment.objects.create(result=real_video, author=people[who], body=body, timecode=timecode)
    comparison_create(project=project, user=eddie, results=takes[:3], title="Heron: three models")
    winner = comparison_create(project=project, user=people["olga"], results=takes[3:7],
                               title="Boat and lighthouse, all four models side by side at 8 seconds")
    winner.winner = takes[4]
    winner.save()
    comparison_create(project=project, user=people["vera"], results=[takes[0], takes[5]])

    sign_in(page, live_server, "eddie", PASSWORD)
    urls = {"gallery": f"{live_server.url}/p/{project.slug}/gallery/",
            "result": result_page(live_server, real_video),
            "comparisons": f"{live_server.url}/p/{project.slug}/comparisons/"}
    for width in (1440, 1024):
        page.set_viewport_size({"width": width, "height": 900})
        for name, url in urls.items():
            page.goto(url)
            wait_for_images(page)
            if name == "result":
                wait_for_player(page)
                # The controls show a spinner until the video has loaded; show the page at rest.
                page.wait_for_function("() => document.querySelector('#player').readyState >= 2")
                page.wait_for_timeout(1500)
            if name == "gallery":
                expect(page.locator(".result-card")).to_have_count(7)
            if name == "comparisons":
                expect(page.locator(".comparison-card")).to_have_count(3)
            overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 0, f"{name} at {width} px scrolls sideways by {overflow} px"
            screenshot(page, f"{name}-{width}")
    page.console_errors.assert_none()
