"""A locked sign-in, as a person sees it in real Chromium: the studio's own sign-in page saying why and for
how long, under the studio's Content-Security-Policy, and usable again once the lock lifts."""

from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.db.models import F

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "correct-horse-9"


@pytest.fixture(autouse=True)
def throttling_on(settings):
    settings.AXES_ENABLED = True


@pytest.fixture
def maria(django_user_model):
    return django_user_model.objects.create_user("maria", "maria@studio.example", PASSWORD)


def submit(page, username, password):
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    with page.expect_navigation():
        page.click("button[type=submit]")


def test_the_locked_sign_in_page_says_why_and_works_again_once_the_lock_lifts(live_server, page, screenshot,
                                                                              maria):
    page.goto(f"{live_server.url}/login/")
    for _ in range(10):
        submit(page, "maria", "a wrong guess")
    submit(page, "maria", PASSWORD)

    notice = page.get_by_role("alert")
    assert notice.is_visible()
    assert "Too many failed sign-ins." in notice.inner_text()
    assert "paused for 15 minutes" in notice.inner_text()
    assert page.title() == "Sign-in paused · Studio"
    assert page.input_value("#id_username") == "maria"
    assert page.url == f"{live_server.url}/login/"
    screenshot(page, "signin-locked-1440")
    page.set_viewport_size({"width": 1024, "height": 768})
    screenshot(page, "signin-locked-1024")

    AccessAttempt.objects.update(attempt_time=F("attempt_time") - timedelta(minutes=16))
    submit(page, "maria", PASSWORD)
    assert page.url == f"{live_server.url}/"
    # Chromium reports each locked answer (429) as a failed load; anything else, such as a style or script the
    # policy blocked, would be a fault of the page.
    assert [e for e in page.console_errors if "status of 429 (Too Many Requests)" not in e] == []
    assert len(page.console_errors) == 2  # the tenth failure and the refused right password


def test_a_pasted_name_longer_than_any_account_is_refused_with_the_limit(live_server, page, screenshot, maria):
    page.goto(f"{live_server.url}/login/")
    submit(page, "m" * 400, PASSWORD)
    notice = page.locator(".flash-error")
    assert notice.inner_text() == "That is longer than any username (at most 150 characters)."
    card = page.locator(".auth-card .card").bounding_box()
    for selector in (".flash-error", "#id_username", "button[type=submit]"):
        box = page.locator(selector).bounding_box()
        assert box["x"] >= card["x"] and box["x"] + box["width"] <= card["x"] + card["width"] + 0.5, selector
    screenshot(page, "signin-long-name-1440")
    page.set_viewport_size({"width": 1024, "height": 768})
    screenshot(page, "signin-long-name-1024")
    assert AccessAttempt.objects.count() == 0
