"""Uploaded images: only real PNG/JPEG/WebP get in, re-encoded bare; a signed link serves exactly one."""

import base64
import hashlib
import io
import json
import random
import re
import time
import warnings
from pathlib import Path
from unittest import mock
from urllib.parse import urlsplit

import pytest
from django.core import signing
from django.core.exceptions import ValidationError
from PIL import Image, ImageCms, PngImagePlugin

from studio.projects.image_links import signed_image_url
from studio.projects.images import image_ingest
from studio.projects.models import ImageAsset, Membership, Project, Role

pytestmark = pytest.mark.django_db

SECRET = b"secret-location"
LINK_SALT = "studio.image-link"


# --- builders -----------------------------------------------------------------------------------------------

def noisy(size=(64, 48), seed=1, mode="RGB"):
    """A picture with real content (solid colours compress to nearly nothing and hide re-encoding)."""
    rng = random.Random(seed)
    image = Image.new("RGB", size)
    pixels = size[0] * size[1]
    image.putdata([(rng.randrange(256), rng.randrange(256), rng.randrange(256)) for _ in range(pixels)])
    return image.convert(mode) if mode != "RGB" else image


def encode(image, fmt, **options):
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def srgb_icc():
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def secret_exif(orientation=None):
    exif = Image.Exif()
    exif[0x010E] = SECRET.decode()  # ImageDescription
    exif[0x8825] = {1: "N", 2: (51.0, 30.0, 0.0), 3: "W", 4: (0.0, 7.0, 0.0)}  # GPS
    if orientation:
        exif[0x0112] = orientation
    return exif


def png_with_metadata(image=None):
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", SECRET.decode())
    info.add_itxt("Location", SECRET.decode())
    return encode(image or noisy(), "PNG", pnginfo=info, exif=secret_exif(), icc_profile=srgb_icc())


def jpeg_with_metadata(image=None, orientation=None):
    return encode(image or noisy(), "JPEG", quality=90, comment=SECRET, exif=secret_exif(orientation),
                  icc_profile=srgb_icc())


def webp_with_metadata(image=None):
    xmp = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:Description>' + SECRET
           + b"</rdf:Description></x:xmpmeta>")
    return encode(image or noisy(), "WEBP", quality=90, exif=secret_exif(), icc_profile=srgb_icc(), xmp=xmp)


UPLOADS = {
    "png": (png_with_metadata, "png", "png", "PNG"),
    "jpeg": (jpeg_with_metadata, "jpeg", "jpg", "JPEG"),
    "webp": (webp_with_metadata, "webp", "webp", "WEBP"),
}


def stored_files(media_root):
    return [p for p in Path(media_root).rglob("*") if p.is_file()]


def body(response):
    return b"".join(response.streaming_content) if response.streaming else response.content


def path_of(url):
    return urlsplit(url).path


def token_of(url):
    return path_of(url).rsplit("/", 1)[1].rsplit(".", 1)[0]


# --- fixtures -----------------------------------------------------------------------------------------------

@pytest.fixture
def owner(django_user_model):
    return django_user_model.objects.create_user("owner", "owner@example.com", "pw-Secret-123")


@pytest.fixture
def project(owner):
    project = Project.objects.create(name="Moonlight", created_by=owner)
    Membership.objects.create(project=project, user=owner, role=Role.OWNER)
    return project


@pytest.fixture
def other_project(owner):
    return Project.objects.create(name="Elsewhere", created_by=owner)


@pytest.fixture
def public_url(settings):
    settings.STUDIO_PUBLIC_URL = "https://studio.example.org/"
    return "https://studio.example.org"


# --- ingest: what gets in, and how it is stored -------------------------------------------------------------

@pytest.mark.parametrize("kind", UPLOADS)
def test_png_jpeg_and_webp_are_stored_re_encoded_under_a_random_name(project, owner, media_root, kind):
    build, fmt, extension, pil_format = UPLOADS[kind]
    upload = build()
    assert SECRET in upload  # the builder really did add metadata

    asset = image_ingest(project=project, data=upload, name=f"holiday-at-home.{extension}", user=owner)

    asset.refresh_from_db()
    stored = Path(asset.file.path)
    content = stored.read_bytes()
    assert stored.resolve().is_relative_to(Path(media_root).resolve())
    pattern = rf"projects/{project.pk}/images/[0-9a-f]{{32}}\.{extension}"
    assert re.fullmatch(pattern, asset.file.name), asset.file.name
    assert "holiday" not in asset.file.name
    assert asset.original_name == f"holiday-at-home.{extension}"
    assert asset.uploaded_by == owner
    assert content != upload
    assert SECRET not in content
    with Image.open(io.BytesIO(content)) as reopened:
        assert reopened.format == pil_format
        assert reopened.size == (64, 48)
    assert (asset.format, asset.width, asset.height) == (fmt, 64, 48)
    assert asset.bytes == len(content)
    assert asset.sha256 == hashlib.sha256(content).hexdigest()
    assert stored_files(media_root) == [stored]


def test_each_upload_gets_its_own_unpredictable_name(project):
    first = image_ingest(project=project, data=encode(noisy(seed=1), "PNG"), name="same.png")
    second = image_ingest(project=project, data=encode(noisy(seed=2), "PNG"), name="same.png")
    assert first.pk != second.pk
    assert Path(first.file.name).name != Path(second.file.name).name


def test_exif_orientation_is_applied_to_the_stored_pixels(project):
    picture = Image.new("RGB", (40, 20), (0, 0, 0))
    picture.paste((255, 0, 0), (0, 0, 20, 20))  # left half red
    upload = jpeg_with_metadata(picture, orientation=6)  # "rotate 90° clockwise to display"
    with Image.open(io.BytesIO(upload)) as original:
        assert original.size == (40, 20) and original.getexif()[0x0112] == 6

    asset = image_ingest(project=project, data=upload, name="sideways.jpg")

    assert (asset.width, asset.height) == (20, 40)
    with Image.open(asset.file.path) as stored:
        assert stored.size == (20, 40)
        stored = stored.convert("RGB")
        red, green, blue = stored.getpixel((10, 8))
        assert red > 200 and green < 60 and blue < 60  # the left half is now the top half
        assert max(stored.getpixel((10, 32))) < 60


@pytest.mark.parametrize("kind", UPLOADS)
def test_stored_file_keeps_no_exif_gps_comment_or_icc_profile(project, kind):
    build, *_ = UPLOADS[kind]
    asset = image_ingest(project=project, data=build(), name="x")

    content = Path(asset.file.path).read_bytes()
    with Image.open(io.BytesIO(content)) as stored:
        assert dict(stored.getexif()) == {}
        leftovers = ("exif", "icc_profile", "comment", "xmp", "XML:com.adobe.xmp", "Comment", "Location",
                     "dpi")
        for key in leftovers:
            assert key not in stored.info, key
    assert SECRET not in content
    assert b"Exif" not in content
    assert b"GPS" not in content


def test_a_png_text_chunk_is_dropped(project):
    info = PngImagePlugin.PngInfo()
    info.add_text("Description", SECRET.decode())
    upload = encode(noisy(), "PNG", pnginfo=info)
    assert SECRET in upload
    asset = image_ingest(project=project, data=upload, name="x.png")
    content = Path(asset.file.path).read_bytes()
    assert SECRET not in content
    assert b"tEXt" not in content and b"iTXt" not in content and b"zTXt" not in content


# --- ingest: what is refused, with a message and nothing left behind ----------------------------------------

def svg():
    return b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">' \
           b'<script>alert(1)</script><rect width="10" height="10"/></svg>'


def html():
    return b"<html><body><script>fetch('/admin/').then(r => r.text())</script></body></html>"


def truncated_png():
    whole = encode(noisy(), "PNG")
    return whole[: len(whole) // 2]


REFUSED = {
    "svg": (svg, "photo.svg", {}, "not an image we can read"),
    "html_named_png": (html, "photo.png", {}, "not an image we can read"),
    "gif": (lambda: encode(noisy(), "GIF"), "photo.gif", {}, "GIF images are not accepted"),
    "bmp": (lambda: encode(noisy(), "BMP"), "photo.bmp", {}, "BMP images are not accepted"),
    "truncated_png": (truncated_png, "photo.png", {}, "damaged or truncated"),
    "empty": (lambda: b"", "photo.png", {}, "not an image we can read"),
    "over_byte_limit": (lambda: encode(noisy(), "PNG"), "photo.png", {"STUDIO_MAX_IMAGE_BYTES": 1000},
                        "the limit is"),
    "over_pixel_limit": (lambda: encode(noisy(), "PNG"), "photo.png", {"STUDIO_MAX_IMAGE_PIXELS": 1000},
                         "64×48 pixels; the limit is"),
}


@pytest.mark.parametrize("case", REFUSED)
def test_refused_uploads_say_why_and_store_nothing(project, settings, media_root, case):
    build, name, overrides, phrase = REFUSED[case]
    for setting, value in overrides.items():
        setattr(settings, setting, value)
    data = build()

    with pytest.raises(ValidationError) as refused:
        image_ingest(project=project, data=data, name=name)

    message = " ".join(refused.value.messages)
    assert phrase in message
    if "not accepted" in phrase or "read" in phrase:
        assert "upload a PNG, JPEG or WebP" in message
    assert ImageAsset.objects.count() == 0
    assert stored_files(media_root) == []


def test_uploads_at_exactly_the_limits_are_accepted(project, settings):
    data = encode(noisy(), "PNG")
    settings.STUDIO_MAX_IMAGE_BYTES = len(data)
    settings.STUDIO_MAX_IMAGE_PIXELS = 64 * 48
    asset = image_ingest(project=project, data=data, name="x.png")
    assert (asset.width, asset.height) == (64, 48)


def ingest_without_pytests_warning_filter(**kwargs):
    """pytest turns every RuntimeWarning into an error; hide that so only the code's own handling counts."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        return image_ingest(**kwargs)


@pytest.mark.parametrize("size", [(40, 40), (50, 50)], ids=["warning_between_1x_and_2x", "error_above_2x"])
def test_a_decompression_bomb_is_refused_whether_pillow_warns_or_errors(project, media_root, monkeypatch,
                                                                        size):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 40x40 = 1600 only warns; 50x50 = 2500 errors
    data = encode(noisy(size), "PNG")

    with pytest.raises(ValidationError) as refused:
        ingest_without_pytests_warning_filter(project=project, data=data, name="bomb.png")

    assert "too large to open safely" in " ".join(refused.value.messages)
    assert ImageAsset.objects.count() == 0
    assert stored_files(media_root) == []


def test_below_pillows_bomb_limit_the_image_is_accepted(project, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    data = encode(noisy((30, 30)), "PNG")
    asset = ingest_without_pytests_warning_filter(project=project, data=data, name="ok.png")
    assert (asset.width, asset.height) == (30, 30)


def test_the_size_message_shows_the_upload_as_bigger_than_the_limit(project, settings):
    settings.STUDIO_MAX_IMAGE_BYTES = 20 * 1024**2
    data = b"\x89PNG\r\n\x1a\n" + bytes(20 * 1024**2 + 300 * 1024)
    with pytest.raises(ValidationError) as refused:
        image_ingest(project=project, data=data, name="big.png")
    message = refused.value.messages[0]
    sizes = re.findall(r"(\d+(?:\.\d+)?)\s*([KMG]i?B)\b", message)
    assert "limit" in message and sizes
    assert len(set(sizes)) == len(sizes), message  # never states the same figure for the upload and the limit


def test_the_pixel_message_never_states_a_limit_of_zero(project, settings):
    settings.STUDIO_MAX_IMAGE_PIXELS = 500_000
    data = encode(Image.new("RGB", (800, 700), (1, 2, 3)), "PNG")
    with pytest.raises(ValidationError) as refused:
        image_ingest(project=project, data=data, name="big.png")
    message = refused.value.messages[0]
    assert "800×700" in message
    assert not re.search(r"\b0 (mega)?pixels", message), message


def test_a_camera_jpeg_with_extra_preview_pictures_is_accepted_as_jpeg(project):
    first, preview = noisy((40, 20), seed=1), noisy((40, 20), seed=2)
    data = encode(first, "MPO", save_all=True, append_images=[preview])
    assert data[:3] == b"\xff\xd8\xff"  # a JPEG stream
    asset = image_ingest(project=project, data=data, name="DSC01234.JPG")
    assert (asset.format, asset.width, asset.height) == ("jpeg", 40, 20)


# --- ingest: the same picture is kept once per project ------------------------------------------------------

def test_the_same_picture_uploaded_twice_to_a_project_is_stored_once(project, media_root):
    data = encode(noisy(), "PNG")
    first = image_ingest(project=project, data=data, name="a.png")
    second = image_ingest(project=project, data=data, name="b.png")
    assert second.pk == first.pk
    assert ImageAsset.objects.filter(project=project).count() == 1
    assert len(stored_files(media_root)) == 1


def test_the_same_picture_with_different_metadata_is_still_stored_once(project, media_root):
    picture = noisy()
    first = image_ingest(project=project, data=encode(picture, "PNG"), name="plain.png")
    second = image_ingest(project=project, data=png_with_metadata(picture), name="tagged.png")
    assert second.pk == first.pk
    assert len(stored_files(media_root)) == 1


def test_the_same_picture_in_another_project_is_stored_separately(project, other_project, media_root):
    data = encode(noisy(), "PNG")
    mine = image_ingest(project=project, data=data, name="a.png")
    theirs = image_ingest(project=other_project, data=data, name="a.png")
    assert theirs.pk != mine.pk
    assert (mine.project, theirs.project) == (project, other_project)
    assert theirs.sha256 == mine.sha256
    assert theirs.file.name.startswith(f"projects/{other_project.pk}/images/")
    assert Path(theirs.file.path) != Path(mine.file.path)
    assert len(stored_files(media_root)) == 2


def test_different_pictures_in_one_project_are_both_kept(project):
    first = image_ingest(project=project, data=encode(noisy(seed=1), "PNG"), name="a.png")
    second = image_ingest(project=project, data=encode(noisy(seed=2), "PNG"), name="a.png")
    assert first.pk != second.pk
    assert ImageAsset.objects.filter(project=project).count() == 2


# --- signed links -------------------------------------------------------------------------------------------

@pytest.fixture
def images(project):
    return {kind: image_ingest(project=project, data=encode(noisy(seed=i), UPLOADS[kind][3]),
                               name=f"x.{kind}")
            for i, kind in enumerate(UPLOADS)}


@pytest.mark.parametrize("kind", UPLOADS)
def test_a_signed_link_serves_the_stored_bytes_without_login(client, public_url, images, kind):
    asset = images[kind]
    url = signed_image_url(asset)

    assert url.startswith(public_url + "/public/images/")
    assert path_of(url).endswith("." + UPLOADS[kind][2])
    response = client.get(path_of(url))

    assert response.status_code == 200
    assert response["Content-Type"] == f"image/{asset.format}"
    assert body(response) == Path(asset.file.path).read_bytes()
    assert "_auth_user_id" not in client.session  # fetching an image signs nobody in


def test_each_image_gets_its_own_token(images):
    tokens = {token_of(signed_image_url(asset)) for asset in images.values()}
    assert len(tokens) == len(images)


def test_a_token_with_any_one_character_changed_is_refused(client, images):
    url = path_of(signed_image_url(images["png"]))
    token, extension = token_of(url), url.rsplit(".", 1)[1]
    assert client.get(url).status_code == 200
    for position in range(len(token)):
        replacement = "A" if token[position] != "A" else "B"
        tampered = token[:position] + replacement + token[position + 1:]
        response = client.get(f"/public/images/{tampered}.{extension}")
        assert response.status_code == 404, f"changed character {position} of {token}"


def test_a_token_edited_to_name_another_image_is_refused(client, images):
    mine, target = images["png"], images["jpeg"]
    token = token_of(signed_image_url(mine))
    payload, timestamp, signature = token.rsplit(":", 2)
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert claims["image"] == mine.pk  # the payload is readable, so a forger would try editing it
    claims.update(image=target.pk, sha=target.sha256[:16])
    forged_json = json.dumps(claims, separators=(",", ":")).encode()
    forged_payload = base64.urlsafe_b64encode(forged_json).decode().rstrip("=")
    forged = f"{forged_payload}:{timestamp}:{signature}"

    assert client.get(path_of(signed_image_url(target))).status_code == 200
    for extension in ("jpg", "png"):
        response = client.get(f"/public/images/{forged}.{extension}")
        assert response.status_code == 404
        assert body(response) != Path(target.file.path).read_bytes()


@pytest.mark.parametrize("token", [
    "abc", "0" * 64, "eyJpbWFnZSI6MX0", "eyJpbWFnZSI6MSwic2hhIjoiIn0:1u5aBc:" + "A" * 43,
    "1", "..", "%2e%2e",
])
def test_a_random_token_is_refused(client, images, token):
    assert client.get(f"/public/images/{token}.png").status_code == 404


def test_a_token_signed_with_another_salt_or_key_is_refused(client, images, settings):
    asset = images["png"]
    claims = {"image": asset.pk, "sha": asset.sha256[:16]}
    wrong_salt = signing.TimestampSigner(salt="studio.something-else").sign_object(claims)
    wrong_key = signing.TimestampSigner(key="not-the-secret-key", salt=LINK_SALT).sign_object(claims)
    right = signing.TimestampSigner(salt=LINK_SALT).sign_object(claims)
    assert client.get(f"/public/images/{right}.png").status_code == 200
    assert client.get(f"/public/images/{wrong_salt}.png").status_code == 404
    assert client.get(f"/public/images/{wrong_key}.png").status_code == 404


def test_a_link_signed_in_the_past_beyond_its_lifetime_is_refused(client, images, settings):
    settings.STUDIO_IMAGE_LINK_SECONDS = 1
    asset = images["png"]
    an_hour_ago = signing.b62_encode(int(time.time()) - 3600)
    with mock.patch.object(signing.TimestampSigner, "timestamp", return_value=an_hour_ago):
        url = signed_image_url(asset)
    assert client.get(path_of(url)).status_code == 404


def test_a_link_works_within_its_lifetime_and_expires_after(client, images, settings):
    settings.STUDIO_IMAGE_LINK_SECONDS = 60
    asset = images["png"]
    now = time.time()
    with mock.patch("time.time", return_value=now):
        url = path_of(signed_image_url(asset))
        assert client.get(url).status_code == 200
    with mock.patch("time.time", return_value=now + 30):
        assert client.get(url).status_code == 200
    with mock.patch("time.time", return_value=now + 62):
        assert client.get(url).status_code == 404


def test_the_token_opens_no_other_file(client, project, images):
    mine = images["png"]
    url = path_of(signed_image_url(mine))
    token = token_of(url)
    my_bytes = Path(mine.file.path).read_bytes()
    all_bytes = {kind: Path(asset.file.path).read_bytes() for kind, asset in images.items()}
    assert client.get(url).status_code == 200

    # The token does not unlock the members-only media area, in any shape.
    media_paths = [
        f"/media/projects/{project.pk}/{mine.file.name.split('/', 2)[2]}",
        f"/media/projects/{project.pk}/{images['jpeg'].file.name.split('/', 2)[2]}",
        f"/media/projects/{project.pk}/images/{token}.png",
        f"/media/projects/{project.pk}/{token}.png",
        f"/media/projects/{project.pk}/{mine.file.name.split('/', 2)[2]}?token={token}",
    ]
    for media_path in media_paths:
        response = client.get(media_path)
        assert response.status_code == 302, media_path
        assert response["Location"].startswith("/login/")
        assert not any(content in body(response) for content in all_bytes.values())

    # Another extension serves this token's own image or nothing: never another file.
    for extension in ("jpg", "jpeg", "webp", "gif", "html", "svg", "txt", "png.png", "json"):
        response = client.get(f"/public/images/{token}.{extension}")
        assert response.status_code in (200, 404), extension
        if response.status_code == 200:
            assert body(response) == my_bytes, extension
            assert response["Content-Type"] == "image/png"
    for suffix in (".png/../x.jpg", ".png%2F..%2F..%2Fdev-secrets.json", "/../../media/x.png"):
        response = client.get(f"/public/images/{token}{suffix}")
        assert response.status_code in (302, 404), suffix
        assert not any(content in body(response) for content in all_bytes.values() if content != my_bytes)


def test_a_link_survives_another_image_being_deleted_and_dies_with_its_own(client, project, images):
    mine, other = images["png"], images["jpeg"]
    url = path_of(signed_image_url(mine))
    my_bytes = Path(mine.file.path).read_bytes()

    other.delete()
    response = client.get(url)
    assert response.status_code == 200
    assert body(response) == my_bytes

    mine.delete()
    assert Path(mine.file.path).is_file()  # the row is what counts, not a file left on disk
    assert client.get(url).status_code == 404

    again = image_ingest(project=project, data=encode(noisy(seed=0), "PNG"), name="again.png")
    assert again.sha256 == mine.sha256 and again.pk != mine.pk
    assert client.get(url).status_code == 404  # re-uploading the same picture does not revive an old link
    assert client.get(path_of(signed_image_url(again))).status_code == 200
