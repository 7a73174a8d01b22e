"""A person signs in, creates a project and brings a colleague in: in real Chromium."""

import pytest

from studio.projects.models import Project, Role
from tests.browser.conftest import sign_in

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def people(django_user_model):
    maria = django_user_model.objects.create_user("maria", "maria@studio.example", "correct-horse-9")
    django_user_model.objects.create_user("jonas", "jonas@studio.example", "battery-staple-7", first_name="Jonas",
                                          last_name="Berg")
    return maria


def test_sign_in_create_a_project_and_add_a_member(live_server, page, screenshot, people):
    page.goto(f"{live_server.url}/")
    assert page.url.startswith(f"{live_server.url}/login/")
    screenshot(page, "login")

    page.fill("#id_username", "maria")
    page.fill("#id_password", "wrong password")
    page.click("button[type=submit]")
    assert page.get_by_text("Your username and password didn’t match").is_visible()

    sign_in(page, live_server, "maria", "correct-horse-9")
    assert page.get_by_role("heading", name="No projects yet").is_visible()
    screenshot(page, "projects-empty")

    page.get_by_role("link", name="Create your first project").click()
    page.fill("#id_name", "Autumn campaign")
    page.fill("#id_description", "Thirty-second spots for the October launch.")
    page.get_by_role("button", name="Create project").click()
    assert page.get_by_role("heading", name="Autumn campaign").is_visible()
    assert page.get_by_text("Project “Autumn campaign” created. You are its owner.").is_visible()

    page.get_by_role("link", name="Members").click()
    page.fill("#id_identifier", "jonas@studio.example")
    page.select_option("#id_role", "viewer")
    page.get_by_role("button", name="Add member").click()
    assert page.get_by_text("jonas joined as viewer.").is_visible()
    assert page.get_by_role("cell", name="Jonas Berg").is_visible()
    screenshot(page, "members")

    project = Project.objects.get(name="Autumn campaign")
    assert project.role_of(people) == Role.OWNER
    assert project.memberships.get(user__username="jonas").role == Role.VIEWER

    page.goto(f"{live_server.url}/")
    assert page.get_by_role("link", name="Autumn campaign").is_visible()
    screenshot(page, "projects")
    page.console_errors.assert_none()


def test_a_viewer_sees_members_but_no_controls(live_server, page, people, django_user_model):
    project = Project.objects.create(name="Shared reel")
    project.memberships.create(user=people, role=Role.OWNER)
    project.memberships.create(user=django_user_model.objects.get(username="jonas"), role=Role.VIEWER)
    sign_in(page, live_server, "jonas", "battery-staple-7")
    page.goto(f"{live_server.url}/p/{project.slug}/members/")
    assert page.get_by_text("maria").first.is_visible()
    assert page.get_by_role("button", name="Add member").count() == 0
    assert page.get_by_role("button", name="Remove").count() == 0
    page.console_errors.assert_none()


def test_sign_out_returns_to_the_sign_in_page(live_server, page, people):
    sign_in(page, live_server, "maria", "correct-horse-9")
    page.locator("summary.avatar").click()
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(f"{live_server.url}/login/")
    page.goto(f"{live_server.url}/")
    assert page.url.startswith(f"{live_server.url}/login/")
