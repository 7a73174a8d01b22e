"""Sign-in throttling (django-axes): 10 failures lock an account and an address for 15 minutes, on the
studio's sign-in page and the admin's, with a page that says so and a log line for every locked attempt."""

import logging
import re
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db.models import F

pytestmark = pytest.mark.django_db

PASSWORD = "pw-Secret-123"
LOCKED = "Too many failed sign-ins"
ADDRESS = "203.0.113.7"
ELSEWHERE = "192.0.2.50"


@pytest.fixture(autouse=True)
def throttling_on(settings):
    """The production configuration, whatever another test module may have switched off."""
    settings.AXES_ENABLED = True


def sign_in(client, username, password, address=ADDRESS, path="/login/", **headers):
    return client.post(path, {"username": username, "password": password}, REMOTE_ADDR=address, **headers)


def signed_in(client):
    return "_auth_user_id" in client.session


def fail(client, username, times, **where):
    return [sign_in(client, username, "not-the-password", **where) for _ in range(times)]


def age_attempts(minutes):
    """Time passes for the recorded failures (they are rows with a timestamp), without the test waiting."""
    from axes.models import AccessAttempt

    AccessAttempt.objects.update(attempt_time=F("attempt_time") - timedelta(minutes=minutes))


def test_forty_wrong_passwords_then_the_right_one_is_refused(client, team):
    fail(client, "editor", 40)
    response = sign_in(client, "editor", PASSWORD)
    assert response.status_code == 429
    assert LOCKED in response.content.decode()
    assert not signed_in(client)


def test_nine_typos_still_let_the_person_in(client, team):
    answers = fail(client, "editor", 9)
    assert all(a.status_code == 200 and "didn’t match" in a.content.decode() for a in answers)
    response = sign_in(client, "editor", PASSWORD)
    assert response.status_code == 302 and signed_in(client)


def test_the_tenth_failure_locks_and_the_right_password_is_then_refused_with_the_message(client, team):
    *first, tenth = fail(client, "editor", 10)
    assert all(a.status_code == 200 for a in first)
    assert tenth.status_code == 429 and LOCKED in tenth.content.decode()

    response = sign_in(client, "editor", PASSWORD)
    page = response.content.decode()
    assert response.status_code == 429
    assert "paused for 15 minutes" in page
    assert "didn’t match" not in page  # the person is not told their (right) password is wrong
    assert not signed_in(client)


def test_the_lock_lifts_after_15_minutes_and_retrying_meanwhile_does_not_extend_it(client, team):
    fail(client, "editor", 10)
    age_attempts(14)
    assert sign_in(client, "editor", PASSWORD).status_code == 429
    fail(client, "editor", 3)  # still locked: these are refused before any password is checked
    age_attempts(2)
    response = sign_in(client, "editor", PASSWORD)
    assert response.status_code == 302 and signed_in(client)


def test_an_administrator_can_lift_a_lock_at_once(client, team):
    fail(client, "editor", 10)
    call_command("axes_reset_username", "editor")
    call_command("axes_reset_ip", ADDRESS)
    assert sign_in(client, "editor", PASSWORD).status_code == 302


def test_one_address_trying_many_users_is_stopped_for_every_user_from_it(client, team):
    for n in range(10):
        sign_in(client, f"guess-{n}", "not-the-password")
    assert sign_in(client, "viewer", PASSWORD).status_code == 429
    assert not signed_in(client)
    # Someone elsewhere is not affected: the lock is on the address.
    assert sign_in(client, "viewer", PASSWORD, address=ELSEWHERE).status_code == 302


def test_one_user_tried_from_many_addresses_is_locked_from_everywhere(client, team):
    for n in range(10):
        sign_in(client, "editor", "not-the-password", address=f"198.51.100.{n + 1}")
    assert sign_in(client, "editor", PASSWORD, address=ELSEWHERE).status_code == 429
    # Those addresses are not locked for others: each saw a single failure.
    assert sign_in(client, "viewer", PASSWORD, address="198.51.100.1").status_code == 302


def test_every_locked_attempt_is_logged_with_the_account_and_the_address(client, team, caplog):
    caplog.set_level(logging.WARNING, logger="studio.signin")
    fail(client, "editor", 10)
    sign_in(client, "editor", PASSWORD)
    lines = [r.getMessage() for r in caplog.records if r.name == "studio.signin"]
    assert len(lines) == 2, lines  # the tenth failure, then the refused right password
    assert all("'editor'" in line and ADDRESS in line and "/login/" in line for line in lines)
    assert PASSWORD not in " ".join(lines)


def test_the_locked_page_is_the_studio_sign_in_page_under_its_policy(client, team):
    fail(client, "editor", 10)
    response = sign_in(client, "editor", PASSWORD)
    page = response.content.decode()
    assert "registration/locked_out.html" in [t.name for t in response.templates]
    assert "css/studio.css" in page and 'class="auth-card"' in page
    assert re.search(r'<input[^>]*name="username"[^>]*value="editor"', page)  # ready for when the lock lifts
    assert "<style" not in page and " style=" not in page
    assert not re.search(r"<script(?![^>]*\bsrc=)", page)
    policy = response["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy


def test_admin_sign_in_is_throttled_too(client, team):
    _, users = team
    users["owner"].is_staff = True
    users["owner"].save()
    *_, tenth = fail(client, "owner", 10, path="/admin/login/")
    assert tenth.status_code == 429
    response = sign_in(client, "owner", PASSWORD, path="/admin/login/")
    assert response.status_code == 429 and LOCKED in response.content.decode()
    assert not signed_in(client)
    assert sign_in(client, "owner", PASSWORD).status_code == 429  # the same account on the studio's page


def test_forwarded_for_is_ignored_unless_a_proxy_is_configured(client, team, settings):
    settings.STUDIO_TRUSTED_PROXY_COUNT = 0
    for n in range(10):
        sign_in(client, f"guess-{n}", "x", HTTP_X_FORWARDED_FOR=f"198.51.100.{n + 1}")
    response = sign_in(client, "viewer", PASSWORD, HTTP_X_FORWARDED_FOR="192.0.2.99")
    assert response.status_code == 429  # a header anyone can send does not make a new address


def test_behind_a_configured_proxy_the_address_it_saw_counts(client, team, settings):
    settings.STUDIO_TRUSTED_PROXY_COUNT = 1
    proxy = "10.0.0.2"
    for n in range(10):
        sign_in(client, f"guess-{n}", "x", address=proxy, HTTP_X_FORWARDED_FOR="198.51.100.9")
    # A name the client writes in front of the proxy's entry changes nothing.
    spoofed = sign_in(client, "viewer", PASSWORD, address=proxy,
                      HTTP_X_FORWARDED_FOR="192.0.2.1, 198.51.100.9")
    assert spoofed.status_code == 429
    other = sign_in(client, "viewer", PASSWORD, address=proxy, HTTP_X_FORWARDED_FOR="192.0.2.1")
    assert other.status_code == 302  # another client behind the same proxy is not locked out


@pytest.mark.parametrize("path", ["/login/", "/admin/login/"])
def test_a_name_longer_than_any_account_is_refused_not_an_error_and_still_counted(client, team, path):
    """Django's sign-in form never checks the username's length; django-axes then stored all of it in a
    255-character column, which PostgreSQL refuses (a 500). Our page names the limit and checks no password;
    the admin's checks it, and the failure is counted under the name cut to the longest username."""
    from axes.models import AccessAttempt

    name = "x" * 5000
    response = sign_in(client, name, "not-the-password", path=path)
    assert response.status_code == 200
    if path == "/login/":
        assert "longer than any username (at most 150 characters)" in response.content.decode()
        assert not AccessAttempt.objects.exists()
    else:
        attempt = AccessAttempt.objects.get()
        assert attempt.username == name[:150] and attempt.failures_since_start == 1
