"""Every file the studio serves stays inside its own project's folder: a member of one project cannot reach
another project's videos, posters, strips or images through the media address or a signed image link, however
the path is spelled."""

import io
import os
import uuid
from pathlib import Path

import pytest
from django.urls import reverse
from PIL import Image

from studio.projects.image_links import signed_image_url
from studio.projects.images import image_ingest
from studio.projects.models import ImageAsset, Membership, Project, Role

pytestmark = pytest.mark.django_db

SECRET_VIDEO = b"\x00\x00\x00\x18ftypmp42 project two's video"


@pytest.fixture
def projects(django_user_model, media_root):
    """Project "mine", where the member is a viewer, and project "theirs", with a video the member must not get."""
    member = django_user_model.objects.create_user("member", "member@example.com", "pw-Secret-123")
    theirs = Project.objects.create(name="Theirs")
    mine = Project.objects.create(name="Mine")
    Membership.objects.create(project=mine, user=member, role=Role.VIEWER)
    video = media_root / "projects" / str(theirs.pk) / "videos" / f"{uuid.uuid4().hex}.mp4"
    video.parent.mkdir(parents=True)
    video.write_bytes(SECRET_VIDEO)
    (media_root / "projects" / str(mine.pk) / "videos").mkdir(parents=True)
    return mine, theirs, member, video


def served(response):
    if response.status_code not in (200, 206):
        return b""
    return b"".join(response.streaming_content)


def escapes(mine, theirs, video):
    """The same request for project "theirs"'s video, spelled every way a path can climb out of a folder."""
    name = video.name
    return {
        "plain ../": f"/media/projects/{mine}/../{theirs}/videos/{name}",
        "encoded slash ..%2f": f"/media/projects/{mine}/..%2f{theirs}/videos/{name}",
        "encoded slash ..%2F": f"/media/projects/{mine}/..%2F{theirs}%2Fvideos%2F{name}",
        "encoded dots %2e%2e/": f"/media/projects/{mine}/%2e%2e/{theirs}/videos/{name}",
        "all encoded": f"/media/projects/{mine}/%2e%2e%2f{theirs}%2fvideos%2f{name}",
        "double-encoded": f"/media/projects/{mine}/..%252f{theirs}%252fvideos%252f{name}",
        "double-encoded dots": f"/media/projects/{mine}/%252e%252e/{theirs}/videos/{name}",
        "backslashes": f"/media/projects/{mine}/..\\{theirs}\\videos\\{name}",
        "encoded backslashes": f"/media/projects/{mine}/..%5c{theirs}%5cvideos%5c{name}",
        "deeper and back": f"/media/projects/{mine}/videos/../../{theirs}/videos/{name}",
        "absolute path": f"/media/projects/{mine}/{video}",
        "encoded absolute path": f"/media/projects/{mine}/%2f{str(video).lstrip('/').replace('/', '%2f')}",
        "through the media root": f"/media/projects/{mine}/../../projects/{theirs}/videos/{name}",
    }


@pytest.mark.parametrize("spelling", list(escapes(1, 2, Path("/x/v.mp4"))))
def test_a_member_cannot_read_another_projects_video(client, projects, spelling):
    mine, theirs, member, video = projects
    client.force_login(member)
    response = client.get(escapes(mine.pk, theirs.pk, video)[spelling])
    assert response.status_code == 404
    assert SECRET_VIDEO not in served(response)


def test_a_symlink_inside_my_project_into_another_is_not_followed(client, projects, media_root):
    mine, _, member, video = projects
    mine_dir = media_root / "projects" / str(mine.pk)
    (mine_dir / "videos" / "linked.mp4").symlink_to(video)
    (mine_dir / "elsewhere").symlink_to(video.parent.parent, target_is_directory=True)
    client.force_login(member)
    for path in ("videos/linked.mp4", f"elsewhere/videos/{video.name}"):
        response = client.get(f"/media/projects/{mine.pk}/{path}")
        assert response.status_code == 404, path
        assert SECRET_VIDEO not in served(response)


@pytest.mark.parametrize("path", ["%00", "videos/%00.mp4", "a" * 5000, "videos/" + "a/" * 3000 + "x.mp4",
                                  ".", "videos", "videos/", "%2e", "..", "%2e%2e", "loop/x.mp4"])
def test_odd_paths_are_404_never_an_error(client, projects, media_root, path):
    mine, _, member, _ = projects
    loop = media_root / "projects" / str(mine.pk) / "loop"
    loop.symlink_to(loop)
    client.force_login(member)
    assert client.get(f"/media/projects/{mine.pk}/{path}").status_code == 404


def test_my_own_projects_video_is_still_served_in_byte_ranges(client, projects, media_root):
    mine, _, member, _ = projects
    content = bytes(range(256)) * 8
    name = f"{uuid.uuid4().hex}.mp4"
    (media_root / "projects" / str(mine.pk) / "videos" / name).write_bytes(content)
    client.force_login(member)
    url = reverse("media_file", args=[mine.pk, f"videos/{name}"])
    whole = client.get(url)
    assert whole.status_code == 200 and served(whole) == content
    part = client.get(url, headers={"Range": "bytes=10-19"})
    assert part.status_code == 206 and served(part) == content[10:20]
    assert part["Content-Range"] == f"bytes 10-19/{len(content)}"


@pytest.mark.parametrize("header", ["bytes=" + "9" * 5000 + "-", "bytes=-" + "9" * 5000, "bytes=١٢-٣٤",
                                    "bytes=99999999999999999999-"])
def test_an_odd_range_header_gets_the_whole_file_or_416_never_500(client, projects, media_root, header):
    mine, _, member, _ = projects
    name = f"{uuid.uuid4().hex}.mp4"
    (media_root / "projects" / str(mine.pk) / "videos" / name).write_bytes(b"0123456789")
    client.force_login(member)
    response = client.get(reverse("media_file", args=[mine.pk, f"videos/{name}"]), headers={"Range": header})
    assert response.status_code in (200, 416)


def test_a_symlink_that_stays_inside_my_project_is_served(client, projects, media_root):
    mine, _, member, _ = projects
    folder = media_root / "projects" / str(mine.pk)
    (folder / "videos" / "real.mp4").write_bytes(b"mine")
    (folder / "videos" / "alias.mp4").symlink_to(folder / "videos" / "real.mp4")
    client.force_login(member)
    assert served(client.get(f"/media/projects/{mine.pk}/videos/alias.mp4")) == b"mine"


# Signed image links go through the same rule -------------------------------------------------------------


def png_bytes(seed):
    image = Image.new("RGB", (8, 8), (seed, 90, 200))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


@pytest.fixture
def images(projects):
    mine, theirs, _, _ = projects
    return image_ingest(project=mine, data=png_bytes(1), name="mine.png"), \
        image_ingest(project=theirs, data=png_bytes(2), name="theirs.png")


def public_path(image):
    return "/" + signed_image_url(image).split("/", 3)[3]


def test_a_signed_link_serves_its_own_projects_image(client, images):
    mine, _ = images
    response = client.get(public_path(mine))
    assert response.status_code == 200
    assert served(response) == Path(mine.file.path).read_bytes()


def test_a_signed_link_whose_image_row_names_another_projects_file_is_404(client, images):
    mine, theirs = images
    ImageAsset.objects.filter(pk=mine.pk).update(file=theirs.file.name)
    mine.refresh_from_db()
    response = client.get(public_path(mine))
    assert response.status_code == 404
    assert served(response) != Path(theirs.file.path).read_bytes()


def test_a_signed_link_to_a_symlink_into_another_project_is_404(client, images):
    mine, theirs = images
    path = Path(mine.file.path)
    path.unlink()
    os.symlink(theirs.file.path, path)
    assert client.get(public_path(mine)).status_code == 404


def test_a_signed_link_whose_file_is_gone_is_404(client, images):
    mine, _ = images
    Path(mine.file.path).unlink()
    assert client.get(public_path(mine)).status_code == 404
