"""Uploads are capped while they arrive: a file past STUDIO_MAX_IMAGE_BYTES is dropped at the chunk that
passes it, files past STUDIO_MAX_UPLOAD_FILES are not taken, and the composer says so without losing what it
holds.
(The web process's memory during a 200 MB upload is measured in test_upload_memory.py.)"""

import io
import random
from html import unescape

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile, TemporaryUploadedFile
from django.urls import reverse
from PIL import Image

from studio.projects.images import image_ingest
from studio.projects.models import ImageAsset
from tests.helpers import png_bytes

pytestmark = pytest.mark.django_db

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def editor(client, team):
    project, users = team
    client.force_login(users["editor"])
    return client, project, users["editor"]


def fields(client, project, data, **extra):
    return client.post(reverse("composer_fields", args=[project.slug]), data, HTTP_HX_REQUEST="true", **extra)


def text_of(response):
    return unescape(response.content.decode()).replace("\xa0", " ")


def too_big(name, settings):
    return SimpleUploadedFile(name, PNG_SIGNATURE + bytes(settings.STUDIO_MAX_IMAGE_BYTES))


def stored_files(media_root):
    return [p for p in media_root.rglob("*") if p.is_file()]


def test_a_file_over_the_limit_is_refused_in_the_composer_with_the_limit_named(editor, settings, media_root):
    client, project, _ = editor
    settings.STUDIO_MAX_IMAGE_BYTES = 200 * 1024
    response = fields(client, project, {"first_frame_file": too_big("huge.png", settings)})
    assert response.status_code == 200
    assert "huge.png: The image is too large: the limit is 200.0 KB." in text_of(response)
    assert ImageAsset.objects.count() == 0 and stored_files(media_root) == []


def test_a_refused_upload_loses_nothing_already_chosen_or_stored(editor, settings):
    client, project, user = editor
    settings.STUDIO_MAX_IMAGE_BYTES = 200 * 1024
    kept = image_ingest(project=project, data=png_bytes((20, 200, 20)), name="kept.png", user=user)
    data = {"prompt": "A harbour at dawn", "first_frame": kept.pk,
            "first_frame_file": too_big("huge.png", settings),
            "reference_images_file": [SimpleUploadedFile("fine.png", png_bytes((1, 2, 3)))]}
    # Without htmx the answer is the whole page, so everything the composer holds is in it.
    response = client.post(reverse("composer_fields", args=[project.slug]), data)
    page = text_of(response)
    assert "huge.png: The image is too large" in page
    assert "A harbour at dawn" in page  # the prompt being written
    assert ImageAsset.objects.filter(pk=kept.pk).exists()
    assert ImageAsset.objects.filter(original_name="fine.png").exists()  # the good file of the same request
    assert f'name="first_frame" value="{kept.pk}"' in page  # the chosen frame is still chosen


def test_submitting_with_a_file_over_the_limit_sends_nothing_and_says_why(editor, settings):
    client, project, _ = editor
    settings.STUDIO_MAX_IMAGE_BYTES = 200 * 1024
    data = {"prompt": "A harbour at dawn", "first_frame_file": too_big("huge.png", settings)}
    response = client.post(reverse("composer_submit", args=[project.slug]), data)
    assert response.status_code == 422
    assert "huge.png: The image is too large" in text_of(response)


def test_files_past_the_per_request_cap_are_not_taken_and_the_composer_says_so(editor, settings):
    client, project, _ = editor
    settings.STUDIO_MAX_UPLOAD_FILES = 3
    files = [SimpleUploadedFile(f"ref-{n}.png", png_bytes((n * 20, 0, 0))) for n in range(6)]
    response = fields(client, project, {"reference_images_file": files})
    assert sorted(ImageAsset.objects.values_list("original_name", flat=True)) == ["ref-0.png", "ref-1.png",
                                                                                   "ref-2.png"]
    assert "ref-3.png, ref-4.png, ref-5.png: Not taken: at most 3 images can be uploaded at once." \
        in text_of(response)


def test_many_refusals_of_one_kind_make_one_line(editor, settings):
    client, project, _ = editor
    settings.STUDIO_MAX_UPLOAD_FILES = 2
    files = [SimpleUploadedFile(f"ref-{n}.png", png_bytes()) for n in range(9)]
    page = text_of(fields(client, project, {"reference_images_file": files}))
    assert "ref-2.png, ref-3.png, ref-4.png and 4 more: Not taken: at most 2 images" in page
    assert page.count("Not taken") == 1


def test_an_image_arriving_in_a_temporary_file_is_stored(editor, settings):
    client, project, _ = editor
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 0  # every request's files go to temporary files
    response = fields(client, project, {"first_frame_file": SimpleUploadedFile("red.png", png_bytes())})
    assert response.status_code == 200
    assert ImageAsset.objects.get().original_name == "red.png"


def test_every_upload_goes_through_the_limit_handler(settings):
    assert settings.FILE_UPLOAD_HANDLERS == ["studio.core.uploads.UploadLimitHandler"]
    assert settings.FILE_UPLOAD_MAX_MEMORY_SIZE <= 256 * 1024
    assert settings.DATA_UPLOAD_MAX_MEMORY_SIZE <= 2.5 * 1024**2


def noisy_png(size):
    rng = random.Random(7)
    image = Image.frombytes("RGB", size, bytes(rng.getrandbits(8) for _ in range(size[0] * size[1] * 3)))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


class CountingReads(io.BytesIO):
    largest = 0

    def read(self, size=-1):
        data = super().read(size)
        CountingReads.largest = max(CountingReads.largest, len(data))
        return data


def test_an_upload_is_decoded_from_its_file_in_small_reads_not_read_whole(team):
    project, _ = team
    data = noisy_png((1200, 900))  # about 3 MB that does not compress
    assert len(data) > 3 * 1024**2
    CountingReads.largest = 0
    asset = image_ingest(project=project, data=CountingReads(data), name="big.png")
    assert (asset.width, asset.height) == (1200, 900)
    assert CountingReads.largest <= 1024**2


def test_an_upload_from_a_temporary_file_is_ingested(team):
    project, _ = team
    upload = TemporaryUploadedFile("frame.png", "image/png", 0, None)
    upload.write(png_bytes((9, 99, 199)))
    upload.seek(0)
    asset = image_ingest(project=project, data=upload, name=upload.name)
    assert asset.format == "png" and asset.original_name == "frame.png"
    upload.close()
