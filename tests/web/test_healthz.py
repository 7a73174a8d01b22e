"""/healthz, as a load balancer sees it: no sign-in, any Host, plain HTTP; 200 when the database, the media folder
and the task broker all work, 503 naming the one that does not, and never a path, host or error text.

The failures are real, each in a process of its own: a broker on a closed port, a broker that never answers,
a media folder the process cannot write to, a database that cannot be opened."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.backends import studio_env

ROOT = Path(__file__).resolve().parents[2]
ALL_OK = {"status": "ok", "checks": {"database": "ok", "storage": "ok", "broker": "ok"}}

PROBE = """
import json, time
import django
django.setup()
from django.test import Client
client = Client()
answers = []
for _ in range({probes}):
    started = time.monotonic()
    response = client.get("/healthz", HTTP_HOST="10.0.0.7")
    answers.append({{"status": response.status_code, "body": response.content.decode(),
                     "type": response["Content-Type"], "seconds": time.monotonic() - started}})
print(json.dumps(answers))
"""


def probe(*, probes=1, prefix=(), **env):
    """/healthz asked `probes` times by a fresh studio process with these settings, by the address a load
    balancer would use as Host."""
    result = subprocess.run([*prefix, sys.executable, "-c", PROBE.format(probes=probes)], cwd=ROOT,
                            env=studio_env(DJANGO_SETTINGS_MODULE="studio.settings", **env), capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    answers = json.loads(result.stdout.splitlines()[-1])
    for answer in answers:
        answer["json"] = json.loads(answer["body"])
    return answers if probes > 1 else answers[0], result.stderr


def closed_port():
    with socket.socket() as probe_socket:
        probe_socket.bind(("127.0.0.1", 0))
        return probe_socket.getsockname()[1]


def without_file_privileges():
    """Root writes into read-only folders all the same: the probe runs without that privilege."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv, so no folder can be read-only for the probe")
    return [setpriv, "--bounding-set=-dac_override,-dac_read_search", "--"]


def assert_nothing_revealed(answer, *secrets):
    assert answer["type"] == "application/json"
    assert set(answer["json"]) == {"status", "checks"}
    for secret in secrets:
        assert secret not in answer["body"]


@pytest.mark.django_db
def test_healthz_answers_without_sign_in_whatever_the_host(client):
    response = client.get("/healthz", HTTP_HOST="10.0.0.7")
    assert response.status_code == 200
    assert response.json() == ALL_OK
    assert response["Cache-Control"] == "no-store"
    assert client.head("/healthz", HTTP_HOST="10.0.0.7").status_code == 200
    assert client.post("/healthz").status_code == 405


@pytest.mark.django_db
def test_healthz_is_not_redirected_to_https_in_production(client, settings):
    settings.SECURE_SSL_REDIRECT = True
    assert client.get("/healthz").status_code == 200
    assert client.get("/login/").status_code == 301


@pytest.mark.django_db
def test_healthz_is_503_naming_the_broker_when_redis_is_on_a_closed_port(media_root):
    port = closed_port()
    answer, log = probe(REDIS_URL=f"redis://127.0.0.1:{port}/0", STUDIO_MEDIA_ROOT=media_root)
    assert answer["status"] == 503
    assert answer["json"] == {"status": "failing", "checks": {"database": "ok", "storage": "ok", "broker": "failing"}}
    assert_nothing_revealed(answer, str(port), "127.0.0.1", "redis")
    assert "health check failed: broker: ConnectionError" in log


@pytest.mark.django_db
def test_a_broker_that_never_answers_holds_no_probe_past_its_time(media_root):
    silent = socket.create_server(("127.0.0.1", 0))  # connections are taken, and never answered
    try:
        port = silent.getsockname()[1]
        started = time.monotonic()
        answers, _ = probe(probes=3, REDIS_URL=f"redis://127.0.0.1:{port}/0", STUDIO_MEDIA_ROOT=media_root,
                           STUDIO_HEALTH_BROKER_SECONDS=0.5)
        assert time.monotonic() - started < 15  # and the process exits, its ping still waiting
    finally:
        silent.close()
    assert [answer["json"]["checks"]["broker"] for answer in answers] == ["failing"] * 3
    assert all(answer["status"] == 503 and answer["seconds"] < 2 for answer in answers)


@pytest.mark.django_db
def test_healthz_is_503_naming_storage_when_the_media_folder_is_read_only(tmp_path):
    media = tmp_path / "media-read-only"
    media.mkdir()
    media.chmod(0o555)
    try:
        answer, log = probe(prefix=without_file_privileges(), STUDIO_MEDIA_ROOT=media)
    finally:
        media.chmod(0o755)
    assert answer["status"] == 503
    assert answer["json"]["checks"] == {"database": "ok", "storage": "failing", "broker": "ok"}
    assert_nothing_revealed(answer, str(tmp_path), "Permission")
    assert "health check failed: storage: PermissionError" in log
    assert list(media.iterdir()) == []


@pytest.mark.django_db
def test_healthz_is_503_naming_the_database_when_it_cannot_be_opened(tmp_path, media_root):
    if os.environ.get("DATABASE_URL"):
        pytest.skip("this way of breaking the database is SQLite's")
    missing = tmp_path / "no-such-folder" / "studio.sqlite3"
    answer, _ = probe(STUDIO_SQLITE_PATH=missing, STUDIO_MEDIA_ROOT=media_root)
    assert answer["status"] == 503
    assert answer["json"]["checks"]["database"] == "failing"
    assert_nothing_revealed(answer, str(tmp_path), "sqlite")


@pytest.mark.django_db
def test_the_storage_check_leaves_nothing_behind_and_makes_a_missing_media_folder(settings, tmp_path, client):
    settings.MEDIA_ROOT = tmp_path / "not-yet"
    assert client.get("/healthz").status_code == 200
    assert list(settings.MEDIA_ROOT.iterdir()) == []


@pytest.mark.django_db
def test_healthz_over_http_from_gunicorn_in_production(tmp_path, media_root, settings):
    """The production server, as a load balancer meets it: by its address, over plain HTTP, while the site itself
    is https-only and answers only to its name."""
    port = closed_port()
    env = studio_env(DEBUG=0, SECRET_KEY=settings.SECRET_KEY, STUDIO_ENCRYPTION_KEYS=",".join(
        settings.STUDIO_ENCRYPTION_KEYS), STUDIO_DATA_DIR=tmp_path, STUDIO_MEDIA_ROOT=media_root,
        STUDIO_STATIC_ROOT=tmp_path / "static", ALLOWED_HOSTS="studio.example.com",
        STUDIO_PUBLIC_URL="https://studio.example.com", STUDIO_LOG_FORMAT="json", STUDIO_WEB_WORKERS=1,
        STUDIO_WEB_THREADS=2)
    env.pop("GUNICORN_CMD_ARGS", None)
    log = tmp_path / "gunicorn.log"
    with log.open("w") as out:
        server = subprocess.Popen([sys.executable, "-m", "gunicorn", "--config", "deploy/gunicorn.conf.py", "--bind",
                                   f"127.0.0.1:{port}"], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                  start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and server.poll() is None:
            try:
                first = httpx.get(f"{url}/healthz", timeout=5)
                break
            except httpx.TransportError:
                time.sleep(0.2)
        assert server.poll() is None, log.read_text()
        probe_by_address = httpx.get(f"{url}/healthz", headers={"Host": "10.0.0.7"}, timeout=5)
        posted = httpx.post(f"{url}/healthz", timeout=5)
        site = httpx.get(f"{url}/login/", headers={"Host": "studio.example.com"}, timeout=5)
        stranger = httpx.get(f"{url}/login/", headers={"Host": "10.0.0.7"}, timeout=5)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    for answer in (first, probe_by_address):
        assert answer.status_code == 200 and answer.json() == ALL_OK
        assert answer.headers["Content-Type"] == "application/json"
    assert posted.status_code == 405
    assert site.status_code == 301 and site.headers["Location"] == "https://studio.example.com/login/"
    assert stranger.status_code == 400
    # Every line is JSON, gunicorn's own about its workers too.
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert {"Starting gunicorn", "Booting worker"} <= {entry["message"].split(" ", 2)[0] + " " +
                                                       entry["message"].split(" ", 2)[1] for entry in lines
                                                       if entry["logger"] == "gunicorn.error"}
    studio_lines = [entry for entry in lines if not entry["logger"].startswith("gunicorn.")]
    assert [entry["logger"] for entry in studio_lines] == ["py.warnings", "django.request",
                                                           "django.security.DisallowedHost"]
    assert "No directory at" in studio_lines[0]["message"]  # the static folder, deliberately missing
