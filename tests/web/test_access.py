"""Who may reach what: anonymous -> login, non-member -> 404, members by role."""

import pytest
from django.conf import settings
from django.urls import reverse

from studio.projects.models import Membership, Project, Role

pytestmark = pytest.mark.django_db

PEOPLE = ["anonymous", "outsider", "viewer", "editor", "owner"]


@pytest.fixture
def team(django_user_model):
    users = {name: django_user_model.objects.create_user(name, f"{name}@example.com", "pw-Secret-123")
             for name in PEOPLE[1:]}
    users["newcomer"] = django_user_model.objects.create_user("newcomer", "new@example.com", "pw-Secret-123")
    project = Project.objects.create(name="Moonlight", created_by=users["owner"])
    for role in (Role.VIEWER, Role.EDITOR, Role.OWNER):
        Membership.objects.create(project=project, user=users[role.value], role=role)
    return project, users


@pytest.fixture
def media_file(team):
    project, _ = team
    path = settings.MEDIA_ROOT / "projects" / str(project.pk) / "images" / "probe.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x89PNG fake")
    yield f"/media/projects/{project.pk}/images/probe.png"
    path.unlink()


def client_as(client, users, who):
    if who != "anonymous":
        client.force_login(users[who])
    return client


def target_membership(project):
    return Membership.objects.get(project=project, user__username="viewer")


# (who, method, url builder, form data, expected status)
MATRIX = {
    "project_list": ("GET", lambda p: reverse("project_list"), None,
                     {"anonymous": 302, "outsider": 200, "viewer": 200, "editor": 200, "owner": 200}),
    "project_create_form": ("GET", lambda p: reverse("project_create"), None,
                            {"anonymous": 302, "outsider": 200, "viewer": 200, "editor": 200, "owner": 200}),
    "project_detail": ("GET", lambda p: reverse("project_detail", args=[p.slug]), None,
                       {"anonymous": 302, "outsider": 404, "viewer": 200, "editor": 200, "owner": 200}),
    "members_page": ("GET", lambda p: reverse("project_members", args=[p.slug]), None,
                     {"anonymous": 302, "outsider": 404, "viewer": 200, "editor": 200, "owner": 200}),
    "add_member": ("POST", lambda p: reverse("project_members", args=[p.slug]),
                   {"identifier": "newcomer", "role": "viewer"},
                   {"anonymous": 302, "outsider": 404, "viewer": 403, "editor": 403, "owner": 302}),
    "change_role": ("POST", lambda p: reverse("member_update", args=[p.slug, target_membership(p).pk]),
                    {"role": "editor", "action": "role"},
                    {"anonymous": 302, "outsider": 404, "viewer": 403, "editor": 403, "owner": 302}),
    "remove_member": ("POST", lambda p: reverse("member_update", args=[p.slug, target_membership(p).pk]),
                      {"action": "remove"},
                      {"anonymous": 302, "outsider": 404, "viewer": 403, "editor": 403, "owner": 302}),
    "password_change": ("GET", lambda p: reverse("password_change"), None,
                        {"anonymous": 302, "outsider": 200, "viewer": 200, "editor": 200, "owner": 200}),
    "admin_index": ("GET", lambda p: reverse("admin:index"), None,
                    {"anonymous": 302, "outsider": 302, "viewer": 302, "editor": 302, "owner": 302}),
}


@pytest.mark.parametrize("who", PEOPLE)
@pytest.mark.parametrize("name", MATRIX)
def test_access_matrix(client, team, who, name):
    project, users = team
    method, url_for, data, expected = MATRIX[name]
    client = client_as(client, users, who)
    url = url_for(project)
    response = client.post(url, data) if method == "POST" else client.get(url)
    assert response.status_code == expected[who], f"{who} {method} {url}"
    if response.status_code == 302 and who == "anonymous":
        assert response["Location"].startswith(reverse("login")) or response["Location"].startswith("/admin/login/")


@pytest.mark.parametrize("who,expected", [("anonymous", 302), ("outsider", 404), ("viewer", 200), ("owner", 200)])
def test_media_files_are_for_members_only(client, team, media_file, who, expected):
    _, users = team
    response = client_as(client, users, who).get(media_file)
    assert response.status_code == expected


def test_media_path_cannot_escape_the_project(client, team, media_file):
    project, users = team
    client.force_login(users["owner"])
    other = Project.objects.create(name="Other")
    (settings.MEDIA_ROOT / "projects" / str(other.pk)).mkdir(parents=True, exist_ok=True)
    assert client.get(f"/media/projects/{project.pk}/../{other.pk}/x.png").status_code == 404
    assert client.get(f"/media/projects/{project.pk}/..%2F..%2Fdev-secrets.json").status_code == 404


def test_a_non_member_cannot_tell_a_project_exists(client, team):
    _, users = team
    client.force_login(users["outsider"])
    existing = client.get(reverse("project_detail", args=["moonlight"]))
    missing = client.get(reverse("project_detail", args=["no-such-project"]))
    assert existing.status_code == missing.status_code == 404
    assert b"Moonlight" not in existing.content


def test_project_list_shows_only_my_projects(client, team):
    project, users = team
    Project.objects.create(name="Secret other project")
    client.force_login(users["viewer"])
    page = client.get(reverse("project_list")).content.decode()
    assert "Moonlight" in page
    assert "Secret other project" not in page


def test_viewer_is_told_why_they_cannot_manage_members(client, team):
    project, users = team
    client.force_login(users["viewer"])
    response = client.post(reverse("project_members", args=[project.slug]), {"identifier": "newcomer", "role": "viewer"})
    assert response.status_code == 403
    assert "Only owners of this project can do that." in response.content.decode()
    assert not project.memberships.filter(user__username="newcomer").exists()


def test_creating_a_project_makes_me_its_owner(client, team):
    _, users = team
    client.force_login(users["outsider"])
    response = client.post(reverse("project_create"), {"name": "Night shoot", "description": "Neon alleys"})
    project = Project.objects.get(name="Night shoot")
    assert response["Location"] == reverse("project_detail", args=[project.slug])
    assert project.role_of(users["outsider"]) == Role.OWNER


def test_owner_adds_changes_and_removes_a_member(client, team):
    project, users = team
    client.force_login(users["owner"])
    client.post(reverse("project_members", args=[project.slug]), {"identifier": "new@example.com", "role": "editor"})
    membership = project.memberships.get(user__username="newcomer")
    assert membership.role == Role.EDITOR
    client.post(reverse("member_update", args=[project.slug, membership.pk]), {"role": "viewer", "action": "role"})
    membership.refresh_from_db()
    assert membership.role == Role.VIEWER
    client.post(reverse("member_update", args=[project.slug, membership.pk]), {"action": "remove"})
    assert not project.memberships.filter(user__username="newcomer").exists()


def test_adding_an_unknown_person_says_so_and_adds_nothing(client, team):
    project, users = team
    client.force_login(users["owner"])
    response = client.post(reverse("project_members", args=[project.slug]), {"identifier": "ghost", "role": "viewer"})
    assert response.status_code == 200
    assert "No active user is called “ghost”" in response.content.decode()
    assert project.memberships.count() == 3


def test_the_last_owner_cannot_leave_or_be_demoted(client, team):
    project, users = team
    client.force_login(users["owner"])
    own = project.memberships.get(user=users["owner"])
    response = client.post(reverse("member_update", args=[project.slug, own.pk]), {"role": "viewer", "action": "role"}, follow=True)
    assert "A project needs at least one owner" in response.content.decode()
    client.post(reverse("member_update", args=[project.slug, own.pk]), {"action": "remove"})
    own.refresh_from_db()
    assert own.role == Role.OWNER


def test_a_membership_of_another_project_is_404_for_its_owner(client, team, django_user_model):
    project, users = team
    other = Project.objects.create(name="Elsewhere")
    stranger = django_user_model.objects.create_user("stranger")
    foreign = Membership.objects.create(project=other, user=stranger, role=Role.VIEWER)
    client.force_login(users["owner"])
    response = client.post(reverse("member_update", args=[project.slug, foreign.pk]), {"action": "remove"})
    assert response.status_code == 404
    assert Membership.objects.filter(pk=foreign.pk).exists()


def test_videos_are_served_in_byte_ranges_for_seeking(client, team, settings):
    project, users = team
    path = settings.MEDIA_ROOT / "projects" / str(project.pk) / "videos" / "clip.mp4"
    path.parent.mkdir(parents=True, exist_ok=True)
    content = bytes(range(256)) * 40
    path.write_bytes(content)
    client.force_login(users["viewer"])
    url = f"/media/projects/{project.pk}/videos/clip.mp4"

    whole = client.get(url)
    assert whole.status_code == 200 and whole["Accept-Ranges"] == "bytes"
    middle = client.get(url, headers={"Range": "bytes=100-199"})
    assert middle.status_code == 206
    assert middle["Content-Range"] == f"bytes 100-199/{len(content)}"
    assert b"".join(middle.streaming_content) == content[100:200]
    tail = client.get(url, headers={"Range": "bytes=-16"})
    assert b"".join(tail.streaming_content) == content[-16:]
    open_ended = client.get(url, headers={"Range": f"bytes={len(content) - 10}-"})
    assert b"".join(open_ended.streaming_content) == content[-10:]
    beyond = client.get(url, headers={"Range": f"bytes={len(content) + 5}-"})
    assert beyond.status_code == 416 and beyond["Content-Range"] == f"bytes */{len(content)}"
    assert video_type(whole) == "video/mp4"


def video_type(response):
    return response["Content-Type"].split(";")[0]


def test_a_live_fragment_with_an_expired_session_loads_the_sign_in_page_whole(client, team):
    project, _ = team
    response = client.get(reverse("project_detail", args=[project.slug]), headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert response["HX-Redirect"].startswith(reverse("login"))
