"""Files in an S3-compatible object store (STUDIO_S3_BUCKET), against moto's S3 server over HTTP on loopback.

The finding this answers: a cluster on a second machine, with its own media folder, failed a job whose first
frame lived on the first machine and stored a video the web server then could not find. With an object store
every machine reads and writes the same bucket: a frame uploaded on the web is sent by a cluster that has
never seen the web server's folder, the video it stores is served to members, and nothing lands on disk.
"""

import hashlib
import io
import json
import os
import subprocess
import sys
import time
import uuid

import boto3
import httpx
import pytest
from django.core.management import call_command
from django.urls import reverse

from studio.core import media_store
from studio.jobs import services
from studio.jobs.models import Job, JobState
from studio.projects.images import image_ingest
from studio.projects.models import Membership, Project, Role
from tests.helpers import png_bytes
from tests.jobs.cluster import cluster_env, start_cluster, stop, wait_until
from tests.jobs.test_generate import close_to, mean_colour
from tests.stack import free_port

RED = (220, 20, 20)
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "studio-test", "AWS_SECRET_ACCESS_KEY": "studio-test-secret"}


@pytest.fixture(scope="session")
def s3_server():
    """moto's S3 server (from the test requirements) in a process of its own."""
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(endpoint, timeout=1)
            break
        except httpx.HTTPError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail("moto's S3 server did not start")
            time.sleep(0.1)
    yield endpoint
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture
def bucket(s3_server, settings, monkeypatch, tmp_path):
    """A fresh bucket, and the studio's settings pointed at it as STUDIO_S3_BUCKET would; the media folder is
    somewhere nothing is expected to appear."""
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    name = f"studio-{uuid.uuid4().hex[:12]}"
    client = boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1", **{
        "aws_access_key_id": CREDENTIALS["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": CREDENTIALS["AWS_SECRET_ACCESS_KEY"]})
    client.create_bucket(Bucket=name)
    settings.MEDIA_ROOT = str(tmp_path / "web-media")
    settings.DATA_DIR = tmp_path / "web-data"
    settings.STORAGES = {**settings.STORAGES, "default": {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": {
        "bucket_name": name, "endpoint_url": s3_server, "region_name": "us-east-1", "addressing_style": "path",
        "signature_version": "s3v4", "default_acl": None, "querystring_auth": True, "file_overwrite": True}}}
    assert not media_store.is_local()

    def objects():
        listed = client.list_objects_v2(Bucket=name).get("Contents", [])
        return {item["Key"]: item["Size"] for item in listed}

    def read(key):
        return client.get_object(Bucket=name, Key=key)["Body"].read()

    return type("Bucket", (), {"name": name, "endpoint": s3_server, "objects": staticmethod(objects),
                               "read": staticmethod(read)})


def files_under(folder):
    return [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []


def test_generate_with_a_first_frame_keeps_everything_in_the_bucket(bucket, sandbox_accounts, demo_project,
                                                                    tmp_path):
    (tmp_path / "first.png").write_bytes(png_bytes(RED, (320, 180)))
    out = io.StringIO()
    with pytest.raises(SystemExit) as exit_info:
        call_command("generate", "--account", "sandbox-qingbo", "--model", "veo-3.0", "--prompt", "A red kite",
                     "--set", "duration=4", "--first-frame", str(tmp_path / "first.png"), "--wait", "--json",
                     "--timeout", "60", stdout=out)
    report = json.loads(out.getvalue())
    assert exit_info.value.code == 0, report
    job = Job.objects.get(pk=report["id"])
    result = job.results.get()
    image = job.images.get().image

    stored = bucket.objects()
    assert image.file.name in stored
    assert stored[result.file.name] == result.bytes == report["results"][0]["bytes"]
    assert hashlib.sha256(bucket.read(result.file.name)).hexdigest() == result.sha256
    assert result.poster.name in stored and result.thumbnail_strip.name in stored
    assert result.duration and result.width == 1280
    assert report["results"][0]["path"] == f"s3://{bucket.name}/{result.file.name}"
    with media_store.local_copy(result.file.name) as path:
        assert close_to(mean_colour(path), RED), "the video does not start from the frame kept in the bucket"
    assert files_under(tmp_path / "web-media") == []
    assert files_under(tmp_path / "web-data") == [], "scratch files are removed once stored"


@pytest.fixture
def members(django_user_model, demo_project):
    users = {name: django_user_model.objects.create_user(name, password="pw-Secret-123") for name in ("mira", "otto")}
    Membership.objects.create(project=demo_project, user=users["mira"], role=Role.VIEWER)
    elsewhere = Project.objects.create(name="Elsewhere", slug="elsewhere")
    Membership.objects.create(project=elsewhere, user=users["otto"], role=Role.OWNER)
    return users


def test_members_get_a_signed_link_others_get_nothing(bucket, demo_project, members, client):
    image = image_ingest(project=demo_project, data=png_bytes(RED, (64, 64)), name="red.png")
    relative = image.file.name.removeprefix(f"projects/{demo_project.pk}/")
    url = reverse("media_file", args=[demo_project.pk, relative])

    client.force_login(members["mira"])
    response = client.get(url)
    assert response.status_code == 302 and response["Cache-Control"] == "private, no-store"
    link = response["Location"]
    assert link.startswith(f"{bucket.endpoint}/{bucket.name}/") and "X-Amz-Signature=" in link
    fetched = httpx.get(link, headers={"Range": "bytes=0-7"})
    assert fetched.status_code == 206 and fetched.content == b"\x89PNG\r\n\x1a\n"
    for hostile in ["../elsewhere.png", "images/../../1/x.png", "images//x.png", "nothing-here.png"]:
        assert client.get(reverse("media_file", args=[demo_project.pk, hostile])).status_code == 404, hostile
    # Unsigned, the bucket refuses (objects are private) ... moto does not check signatures, so the test
    # checks what the studio controls: the link is signed and expires.
    assert "X-Amz-Expires=3600" in link

    client.force_login(members["otto"])
    assert client.get(url).status_code == 404


def test_a_providers_image_link_streams_from_the_bucket(bucket, demo_project, client):
    from studio.projects.image_links import signed_image_url

    image = image_ingest(project=demo_project, data=png_bytes(RED, (64, 64)), name="red.png")
    path = signed_image_url(image).split("://", 1)[1].split("/", 1)[1]
    response = client.get("/" + path)
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == bucket.read(image.file.name)


@pytest.mark.django_db(transaction=True)
def test_a_cluster_on_another_machine_sends_the_frame_and_the_web_serves_its_video(
        bucket, settings, sandbox_accounts, demo_project, members, client, tmp_path):
    image = image_ingest(project=demo_project, data=png_bytes(RED, (320, 180)), name="red.png")
    job = services.job_create(project=demo_project, user=None, account=sandbox_accounts["qingbo"], model="veo-3.0",
                              params={"prompt": "A red kite", "duration": 4}, first_frame=image)
    # The other machine: its own media folder and data folder, the same bucket.
    env = cluster_env(settings, tmp_path)
    env.update(CREDENTIALS, STUDIO_S3_BUCKET=bucket.name, STUDIO_S3_ENDPOINT_URL=bucket.endpoint,
               STUDIO_MEDIA_ROOT=str(tmp_path / "other-media"), STUDIO_DATA_DIR=str(tmp_path / "other-data"),
               # Secrets are shared by every machine (its own data folder would generate others).
               SECRET_KEY=settings.SECRET_KEY, STUDIO_ENCRYPTION_KEYS=",".join(settings.STUDIO_ENCRYPTION_KEYS))
    os.makedirs(tmp_path / "other-data", exist_ok=True)
    cluster = start_cluster(env)
    try:
        wait_until(lambda: Job.objects.get(pk=job.pk).state in (JobState.SUCCEEDED, JobState.FAILED), 60)
        wait_until(lambda: job.results.filter(processed_at__isnull=False).exists(), 60)
    finally:
        output = stop(cluster)
    job.refresh_from_db()
    assert job.state == JobState.SUCCEEDED, (job.state, job.error_message, output[-3000:])
    result = job.results.get()
    assert result.file.name in bucket.objects() and result.poster.name in bucket.objects()
    assert files_under(tmp_path / "other-media") == [] and files_under(tmp_path / "web-media") == []

    client.force_login(members["mira"])
    relative = result.file.name.removeprefix(f"projects/{demo_project.pk}/")
    response = client.get(reverse("media_file", args=[demo_project.pk, relative]))
    assert response.status_code == 302
    video = httpx.get(response["Location"])
    assert video.status_code == 200 and hashlib.sha256(video.content).hexdigest() == result.sha256


def test_health_writes_to_the_bucket_and_says_so_when_it_cannot(bucket, settings, client, db):
    answer = client.get("/healthz")
    assert answer.json()["checks"]["storage"] == "ok" and answer.json()["checks"]["database"] == "ok"
    assert bucket.objects() == {}, "the probe object is removed"
    options = settings.STORAGES["default"]["OPTIONS"]
    settings.STORAGES = {**settings.STORAGES, "default": {**settings.STORAGES["default"],
                                                          "OPTIONS": {**options, "bucket_name": "no-such-bucket"}}}
    response = client.get("/healthz")
    assert response.status_code == 503 and response.json()["checks"]["storage"] == "failing"
