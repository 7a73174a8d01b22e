"""Three real sandbox videos side by side under one transport, kept within a frame of each other (real Chromium)."""

import io
import re
import threading
import time

import pytest
from django.db import connections
from django.urls import reverse
from PIL import Image
from playwright.sync_api import expect

from studio.jobs import services
from studio.jobs.models import JobState
from studio.jobs.poller import drive_job
from studio.projects.models import Membership, Role
from studio.review.services import comparison_create
from tests.browser.conftest import sign_in

pytestmark = pytest.mark.django_db(transaction=True)

FRAME = 1 / 24
PROMPT = "A paper boat drifts down a rain gutter, close up, late afternoon light"

# Every video's clock in one evaluate, so the figures are taken at the same moment.
CLOCKS = """root => [...root.querySelectorAll('video[data-compare-video]')].map(v => ({
  t: v.currentTime, end: v.duration, rate: v.playbackRate, muted: v.muted, paused: v.paused }))"""
SETTLED = """root => root.dataset.state === 'paused'
  && [...root.querySelectorAll('video[data-compare-video]')].every(v => !v.seeking && v.readyState >= 2)"""
READY = "root => [...root.querySelectorAll('video[data-compare-video]')].every(v => v.readyState >= 3)"


def spread(clocks):
    """How far apart the videos that still run are (a shorter video holds its last frame past its end)."""
    running = [c["t"] for c in clocks if c["t"] < c["end"] - FRAME]
    return max(running) - min(running) if len(running) > 1 else 0.0


def shown_position(video):
    """Where the picture on screen is, as a fraction of the clip: the sandbox draws a yellow progress bar along the
    bottom of every frame, so the right end of the yellow is what a person sees, whatever currentTime says."""
    picture = Image.open(io.BytesIO(video.screenshot())).convert("RGB")
    width, height = picture.size
    pixels = ((x, picture.getpixel((x, y))) for y in range(int(height * 0.8), height) for x in range(width))
    yellow = [x for x, (r, g, b) in pixels if r > 200 and g > 170 and b < 140]
    return max(yellow) / width if yellow else None


def make_results(project, user, accounts):
    """Three real jobs on three providers, run to their end side by side as workers would."""
    requests = [
        (accounts["uniall"], "viduq3t-540p", {"prompt": PROMPT, "duration": 5, "audio": False}),
        (accounts["qingbo"], "veo-3.0", {"prompt": PROMPT, "duration": 4}),
        (accounts["modelmax"], "veo-3-fast", {"prompt": PROMPT, "duration": 6, "resolution": "720p", "audio": True}),
    ]
    jobs = [services.job_create(project=project, user=user, account=account, model=model, params=params)
            for account, model, params in requests]
    outcomes = [{} for _ in jobs]

    def run(job, outcome):
        try:
            outcome["job"] = drive_job(job, timeout=60)
        except Exception as error:  # noqa: BLE001 (reported by the test, not lost in the thread)
            outcome["error"] = error
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=pair, daemon=True) for pair in zip(jobs, outcomes)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=70)
    for outcome in outcomes:
        assert "error" not in outcome, outcome.get("error")
        assert outcome["job"].state == JobState.SUCCEEDED, outcome["job"].error_message
    return [job.results.get() for job in jobs]


def test_three_videos_play_seek_and_step_together_within_a_frame(
    live_server, page, screenshot, sandbox, sandbox_accounts, demo_project, django_user_model
):
    editor = django_user_model.objects.create_user("noor", "noor@studio.example", "gutter-boat-3")
    Membership.objects.create(project=demo_project, user=editor, role=Role.EDITOR)
    sandbox.set_job_seconds(1)
    silent, short, long_ = make_results(demo_project, editor, sandbox_accounts)
    assert (silent.has_audio, short.has_audio, long_.has_audio) == (False, True, True)
    comparison = comparison_create(project=demo_project, user=editor, results=[silent, short, long_])

    sign_in(page, live_server, "noor", "gutter-boat-3")
    url = f"{live_server.url}{reverse('comparison_detail', args=[demo_project.slug, comparison.pk])}"
    page.goto(url)
    player = page.locator("[data-compare]")
    root = player.element_handle()
    cells = player.locator(".compare-cell")
    expect(cells).to_have_count(3)
    page.wait_for_function(READY, arg=root, timeout=20_000)
    clocks = page.evaluate(CLOCKS, root)
    assert [round(c["end"]) for c in clocks] == [5, 4, 6]
    assert all(c["muted"] for c in clocks), "videos start muted"
    assert float(player.locator("[data-transport-seek]").get_attribute("max")) == pytest.approx(6.0, abs=FRAME)
    play = player.locator("[data-transport-play]")
    clock = player.locator("[data-transport-clock]")

    def settle():
        page.wait_for_function(SETTLED, arg=root)
        return page.evaluate(CLOCKS, root)

    def max_spread_while_playing(samples=6, every=0.15):
        """The largest spread over several samples, and the sampled times for the failure message."""
        widest, seen = 0.0, []
        for _ in range(samples):
            clocks = page.evaluate(CLOCKS, root)
            assert not any(c["paused"] for c in clocks if c["t"] < c["end"] - FRAME), clocks
            seen.append([round(c["t"], 3) for c in clocks])
            widest = max(widest, spread(clocks))
            time.sleep(every)
        return widest, seen

    # Play: after a moment every clock agrees within a frame, sample after sample.
    play.click()
    expect(play).to_have_attribute("aria-label", "Pause")
    time.sleep(1.0)
    widest, seen = max_spread_while_playing()
    assert widest <= FRAME, f"spread while playing: {widest:.3f} s, times {seen}"
    assert page.evaluate(CLOCKS, root)[0]["t"] > 1.0
    play.click()
    expect(play).to_have_attribute("aria-label", "Play")
    paused = settle()
    assert spread(paused) < 0.002, paused

    # Seek by typing a time.
    clock.fill("3.0")
    clock.press("Enter")
    at_three = settle()
    assert all(abs(c["t"] - 3.0) <= FRAME for c in at_three), at_three
    expect(clock).to_have_value("0:03.00")
    # ...and each picture shows that moment (the bar's margins make it read a few hundredths off).
    shown = [shown_position(cells.nth(i).locator("video")) for i in range(3)]
    assert all(s is not None and abs(s - 3.0 / c["end"]) < 0.07 for s, c in zip(shown, at_three)), shown

    # One frame forward.
    player.locator('[data-transport-step="1"]').click()
    stepped = settle()
    assert spread(stepped) <= FRAME, stepped
    assert all(abs(c["t"] - (3.0 + FRAME)) < FRAME / 2 for c in stepped), stepped
    expect(clock).to_have_value("0:03.01")

    # The keyboard: ← steps back a frame, Shift+← a second.
    page.locator("body").click(position={"x": 5, "y": 5})
    page.keyboard.press("ArrowLeft")
    expect(clock).to_have_value("0:03.00")
    page.keyboard.press("Shift+ArrowLeft")
    expect(clock).to_have_value("0:02.00")
    assert all(abs(c["t"] - 2.0) < FRAME / 2 for c in settle())

    # Speed applies to every video, and the transport really runs twice as fast.
    page.keyboard.press("Home")
    expect(clock).to_have_value("0:00.00")
    settle()
    player.locator("[data-transport-speed]").select_option("2")
    assert all(c["rate"] == 2 for c in page.evaluate(CLOCKS, root))
    page.keyboard.press("Space")
    expect(play).to_have_attribute("aria-label", "Pause")
    started = time.monotonic()
    time.sleep(0.9)
    widest, seen = max_spread_while_playing(samples=4, every=0.1)
    advanced = max(c["t"] for c in page.evaluate(CLOCKS, root))
    page.keyboard.press("Space")
    elapsed = time.monotonic() - started
    assert 1.6 * elapsed < advanced < 2.2 * elapsed + 0.1, (advanced, elapsed)
    assert widest <= FRAME, f"spread at 2×: {widest:.3f} s, times {seen}"
    settle()
    player.locator("[data-transport-speed]").select_option("1")

    # Sound: on for B only. A has no soundtrack, so its toggle says so and does nothing.
    sound_a = cells.nth(0).locator("[data-compare-sound]")
    sound_b = cells.nth(1).locator("[data-compare-sound]")
    expect(sound_a).to_be_disabled()
    expect(sound_a).to_contain_text("No audio")
    sound_b.click()
    expect(sound_b).to_have_attribute("aria-pressed", "true")
    assert [c["muted"] for c in page.evaluate(CLOCKS, root)] == [True, False, True]
    # B (heard) now leads: playing from 1 s still keeps everyone within a frame.
    clock.fill("1")
    clock.press("Enter")
    settle()
    page.keyboard.press("Space")
    time.sleep(1.0)
    widest, seen = max_spread_while_playing(samples=4, every=0.1)
    assert widest <= FRAME, f"spread with B heard: {widest:.3f} s, times {seen}"
    page.keyboard.press("Space")
    settle()
    sound_b.click()
    expect(sound_b).to_have_attribute("aria-pressed", "false")

    # Loop: from near the end, playback wraps to the start and keeps going.
    page.keyboard.press("l")
    expect(player.locator("[data-transport-loop]")).to_have_attribute("aria-pressed", "true")
    clock.fill("5.6")
    clock.press("Enter")
    settle()
    play.click()
    page.wait_for_function("root => root.querySelector('video').currentTime < 1 && root.dataset.state === 'playing'",
                           arg=root, timeout=5_000)
    expect(play).to_have_attribute("aria-label", "Pause")
    # Without loop the transport stops at the end of the longest video, the shorter ones on their last frame.
    page.keyboard.press("l")
    expect(player.locator("[data-transport-loop]")).to_have_attribute("aria-pressed", "false")
    clock.fill("5.6")
    clock.press("Enter")
    expect(play).to_have_attribute("aria-label", "Play", timeout=5_000)
    expect(clock).to_have_value("0:06.00")
    ended = settle()
    assert all(abs(c["t"] - c["end"]) <= FRAME for c in ended), ended

    # Pick a winner: the page reloads with B marked.
    cells.nth(1).locator("[data-winner]").click()
    page.wait_for_load_state()
    winner = page.locator(f'.compare-cell[data-result="{short.pk}"]')
    expect(winner).to_have_class(re.compile(r"\bcompare-cell-winner\b"))
    expect(page.locator(".compare-cell-winner")).to_have_count(1)
    expect(page.locator(".winner-banner")).to_contain_text("Winner: B")

    # Rate and pick from the compare view: the caption updates in place and the rating is kept.
    caption_c = page.locator(f'.compare-cell[data-result="{long_.pk}"]')
    caption_c.get_by_title("Rate 4 stars").click()
    expect(caption_c.locator("button.star.on")).to_have_count(4)
    caption_c.locator(".pick-toggle").click()
    expect(caption_c.locator(".pick-toggle")).to_have_attribute("aria-pressed", "true")
    page.reload()
    caption_c = page.locator(f'.compare-cell[data-result="{long_.pk}"]')
    expect(caption_c.locator("button.star.on")).to_have_count(4)
    expect(caption_c.locator(".pick-toggle")).to_have_attribute("aria-pressed", "true")
    expect(page.locator(".compare-cell-winner")).to_have_count(1)

    # Screenshots at rest on a frame with something in it.
    root = page.locator("[data-compare]").element_handle()
    page.wait_for_function(READY, arg=root, timeout=20_000)
    page.locator("[data-transport-clock]").fill("2.5")
    page.locator("[data-transport-clock]").press("Enter")
    at_two_and_a_half = settle()
    shown = [shown_position(page.locator(".compare-cell video").nth(i)) for i in range(3)]
    assert all(s is not None and abs(s - 2.5 / c["end"]) < 0.07 for s, c in zip(shown, at_two_and_a_half)), shown
    screenshot(page, "compare-1440")
    page.set_viewport_size({"width": 1024, "height": 800})
    screenshot(page, "compare-1024")

    page.console_errors.assert_none()
