"""The studio under gunicorn as `make run` serves it (deploy/gunicorn.conf.py, DEBUG off, media sent by the
studio itself): the run command's server shows no debug pages and signs in over plain HTTP, videos watched slowly
do not hold up pages, a download outlasts the worker timeout, and the bytes sent with sendfile are the ones
asked for."""

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time

import httpx
import pytest
from django.contrib.auth.hashers import PBKDF2PasswordHasher

from tests.backends import studio_env
from tests.conftest import wait_for
from tests.web.servers import (  # noqa: F401 (a fixture)
    ROOT,
    collected_static_fixture,
    ends_with_this_process,
    gunicorn,
    session_cookie,
)
from tests.web.test_run_command import answer, free_port, processes_started_with

pytestmark = pytest.mark.django_db(transaction=True)

MiB = 1024**2


@pytest.fixture
def video(team, media_root):
    """A 64 MiB video in the team's project (a sparse file: far more than the kernel buffers between a server
    and a slow reader), and the path members ask for."""
    project, _ = team
    folder = media_root / "projects" / str(project.pk) / "videos"
    folder.mkdir(parents=True)
    path = folder / "long.mp4"
    with path.open("wb") as handle:
        handle.truncate(64 * MiB)
    return path, f"/media/projects/{project.pk}/videos/long.mp4"


class SlowReader(threading.Thread):
    """A client that asks for a file and reads it at `rate` bytes per second with a small receive buffer, as a
    video player on a slow link does: the server's thread stays busy sending for as long as it reads."""

    def __init__(self, url, path, cookie, rate):
        super().__init__(daemon=True)
        self.url, self.path, self.cookie, self.rate = url, path, cookie, rate
        self.head, self.received, self.error, self.stop = b"", 0, None, threading.Event()

    def run(self):
        host, port = self.url.removeprefix("http://").split(":")
        try:
            with socket.socket() as sock:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
                sock.connect((host, int(port)))
                sock.sendall(f"GET {self.path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
                             f"Cookie: sessionid={self.cookie}\r\nConnection: close\r\n\r\n".encode())
                started, piece, read = time.monotonic(), self.rate // 8, 0
                while not self.stop.is_set():
                    data = sock.recv(piece)
                    if not data:
                        break
                    read += len(data)
                    if b"\r\n\r\n" in self.head:
                        self.received += len(data)
                    else:
                        self.head += data
                        if b"\r\n\r\n" in self.head:
                            self.head, body = self.head.split(b"\r\n\r\n", 1)
                            self.head += b"\r\n\r\n"
                            self.received = len(body)
                    ahead = read / self.rate - (time.monotonic() - started)
                    if ahead > 0:
                        time.sleep(ahead)
        except OSError as error:
            self.error = error


def page_latencies(url, seconds, interval=0.25):
    """How long /login/ takes, asked every `interval` for `seconds`, each time on a new connection."""
    latencies, deadline = [], time.monotonic() + seconds
    while time.monotonic() < deadline:
        started = time.monotonic()
        response = httpx.get(f"{url}/login/", timeout=30)
        latencies.append(time.monotonic() - started)
        assert response.status_code == 200
        time.sleep(interval)
    return latencies


def test_pages_answer_within_a_second_while_ten_clients_download_a_video_slowly(tmp_path, collected_static,
                                                                               team, video):
    _, users = team
    _, path = video
    cookie = session_cookie(users["viewer"])
    with gunicorn(tmp_path, collected_static) as server:
        readers = [SlowReader(server.url, path, cookie, rate=64 * 1024) for _ in range(10)]
        for reader in readers:
            reader.start()
        wait_for(lambda: all(reader.received for reader in readers), timeout=20)
        before = [reader.received for reader in readers]

        latencies = page_latencies(server.url, seconds=8)

        still_reading = [reader.is_alive() and reader.received > seen for reader, seen in zip(readers, before)]
        for reader in readers:
            reader.stop.set()
        output = server.output()
    print(f"\n/login/ under 10 slow downloads: {len(latencies)} requests, "
          f"median {sorted(latencies)[len(latencies) // 2] * 1000:.0f} ms, max {max(latencies) * 1000:.0f} ms")
    assert all(reader.head.startswith(b"HTTP/1.1 200 ") for reader in readers), [r.head for r in readers]
    assert all(still_reading), "every download is still going while pages are asked for"
    assert max(latencies) < 1.0, latencies
    assert "WORKER TIMEOUT" not in output


def test_a_download_that_outlasts_the_worker_timeout_is_not_cut(tmp_path, collected_static, team, media_root):
    project, users = team
    folder = media_root / "projects" / str(project.pk) / "videos"
    folder.mkdir(parents=True)
    content = os.urandom(16 * MiB)
    (folder / "clip.mp4").write_bytes(content)
    cookie = session_cookie(users["viewer"])
    # 16 MiB at 2 MiB/s: 8 s, four times the worker timeout, and far more than the kernel's send buffer (at most
    # 4 MiB) takes at once, so the server is still sending long after the timeout.
    with gunicorn(tmp_path, collected_static, "--timeout", "2") as server:
        reader = SlowReader(server.url, f"/media/projects/{project.pk}/videos/clip.mp4", cookie, rate=2 * MiB)
        started = time.monotonic()
        reader.start()
        reader.join(timeout=60)
        seconds = time.monotonic() - started
        output = server.output()
    assert reader.error is None and not reader.is_alive()
    assert reader.head.startswith(b"HTTP/1.1 200 ")
    assert reader.received == len(content), f"{reader.received} of {len(content)} bytes\n{output}"
    assert "WORKER TIMEOUT" not in output
    assert seconds > 6, "the download took longer than the worker timeout"


def test_ranges_and_validators_hold_when_the_kernel_sends_the_file(tmp_path, collected_static, team, media_root):
    project, users = team
    folder = media_root / "projects" / str(project.pk) / "videos"
    folder.mkdir(parents=True)
    content = os.urandom(5 * MiB + 123)
    (folder / "clip.mp4").write_bytes(content)
    path = f"/media/projects/{project.pk}/videos/clip.mp4"
    with gunicorn(tmp_path, collected_static) as server:
        with httpx.Client(base_url=server.url, cookies={"sessionid": session_cookie(users["viewer"])}) as http:
            whole = http.get(path)
            part = http.get(path, headers={"Range": "bytes=3000000-3999999"})
            tail = http.get(path, headers={"Range": "bytes=-100"})
            again = http.get(path, headers={"If-None-Match": whole.headers["ETag"]})
            since = http.get(path, headers={"If-Modified-Since": whole.headers["Last-Modified"]})
        with httpx.Client(base_url=server.url, cookies={"sessionid": session_cookie(users["outsider"])}) as http:
            outsider = http.get(path)
    assert whole.status_code == 200 and whole.content == content
    assert whole.headers["Content-Type"] == "video/mp4" and whole.headers["Accept-Ranges"] == "bytes"
    assert part.status_code == 206 and part.content == content[3000000:4000000]
    assert part.headers["Content-Range"] == f"bytes 3000000-3999999/{len(content)}"
    assert tail.status_code == 206 and tail.content == content[-100:]
    assert again.status_code == 304 and again.content == b"" and again.headers["ETag"] == whole.headers["ETag"]
    assert since.status_code == 304
    assert outsider.status_code == 404 and content[:1000] not in outsider.content


def test_the_run_command_serves_with_debug_off_and_signs_in_over_plain_http(tmp_path, collected_static, team):
    """`make run` on a shared address (HOST=0.0.0.0): a stranger's wrong URL gets a plain 404, not the debug page
    listing every URL, and a member signs in over HTTP (no Secure cookies the browser would not send back)."""
    _, users = team
    with_production_password(users["viewer"])
    env = studio_env(STUDIO_DATA_DIR=tmp_path, STUDIO_STATIC_ROOT=collected_static)
    for name in ("DEBUG", "ALLOWED_HOSTS", "STUDIO_PUBLIC_URL", "SECRET_KEY", "STUDIO_ENCRYPTION_KEYS",
                 "STUDIO_LOCAL_SECRETS", "STUDIO_MEDIA_HANDOFF", "STUDIO_WEB_WORKERS", "STUDIO_WEB_THREADS"):
        env.pop(name, None)
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "manage.py", "runstudio", "--no-sandbox", "--host", "0.0.0.0", "--port", str(port)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
        preexec_fn=ends_with_this_process)
    url = f"http://127.0.0.1:{port}"
    try:
        missing = answer(f"{url}/no-such-page/")
        form, signed_in, projects = sign_in(url, "viewer")
    finally:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.communicate(timeout=30)
        finally:
            # honcho starts each process in its own session: whatever outlived the stop is found by its environment.
            for pid in processes_started_with(f"STUDIO_DATA_DIR={tmp_path}"):
                os.kill(pid, signal.SIGKILL)
    assert missing.status_code == 404
    assert "URLconf" not in missing.text and "login/" not in missing.text, missing.text[:2000]
    assert missing.headers["Server"].startswith("gunicorn")
    assert_signed_in_over_http(form, signed_in, projects)


def test_a_staging_host_on_plain_http_signs_in_with_debug_off(tmp_path, collected_static, team):
    """DEBUG off with an http:// public address (a staging host without TLS): cookies the browser sends back over
    HTTP. With an https:// one (production) they are Secure and plain HTTP is redirected."""
    _, users = team
    with_production_password(users["viewer"])
    with gunicorn(tmp_path, collected_static) as server:  # STUDIO_PUBLIC_URL is the server's http:// address
        form, signed_in, projects = sign_in(server.url, "viewer")
    with gunicorn(tmp_path, collected_static, STUDIO_PUBLIC_URL="https://studio.example.com",
                  ALLOWED_HOSTS="127.0.0.1", SECURE_PROXY_SSL_HEADER_ENABLED=1) as server:
        plain = httpx.get(f"{server.url}/login/", timeout=30)
        behind_tls = httpx.get(f"{server.url}/login/", headers={"X-Forwarded-Proto": "https"}, timeout=30)
    assert_signed_in_over_http(form, signed_in, projects)
    assert plain.status_code == 301 and plain.headers["Location"].startswith("https://")
    assert behind_tls.status_code == 200 and "; secure" in behind_tls.headers["Set-Cookie"].lower()


def with_production_password(user, password="pw-Secret-123"):
    """Servers check passwords with production's hasher, not the fast one the tests' settings use."""
    hasher = PBKDF2PasswordHasher()
    user.password = hasher.encode(password, hasher.salt())
    user.save(update_fields=["password"])


def sign_in(url, username, password="pw-Secret-123"):
    """What a browser does over plain HTTP: the form, the form sent back with its CSRF token, the projects page
    (cookies that are Secure it keeps but does not send back)."""
    with httpx.Client(base_url=url, timeout=30) as browser:
        form = browser.get("/login/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text)
        signed_in = browser.post("/login/", data={"csrfmiddlewaretoken": token and token.group(1),
                                                  "username": username, "password": password})
        projects = browser.get("/", follow_redirects=True)
    return form, signed_in, projects


def assert_signed_in_over_http(form, signed_in, projects):
    assert form.status_code == 200 and "secure" not in form.headers["Set-Cookie"].lower()
    assert signed_in.status_code == 302, signed_in.text[:2000]
    assert "secure" not in signed_in.headers["Set-Cookie"].lower()
    assert projects.status_code == 200 and "Harbour" in projects.text


@pytest.mark.parametrize("handoff", ["x-sendfile", "x-accel-redirect"])
def test_a_handed_off_file_is_named_to_the_front_server_only_for_members(client, settings, team, media_root,
                                                                         handoff):
    """Apache's mod_xsendfile and lighttpd read X-Sendfile (the file's absolute path), nginx X-Accel-Redirect (its
    internal location): the studio sends no bytes, and nothing at all names a file to someone not allowed it."""
    settings.STUDIO_MEDIA_HANDOFF = handoff
    project, users = team
    folder = media_root / "projects" / str(project.pk) / "videos"
    folder.mkdir(parents=True)
    (folder / "clip.mp4").write_bytes(b"video bytes")
    path = f"/media/projects/{project.pk}/videos/clip.mp4"
    client.force_login(users["viewer"])
    member = client.get(path)
    client.force_login(users["outsider"])
    outsider = client.get(path)
    header = {"x-sendfile": "X-Sendfile", "x-accel-redirect": "X-Accel-Redirect"}[handoff]
    expected = {"x-sendfile": str(folder.resolve() / "clip.mp4"),
                "x-accel-redirect": f"/protected-media/projects/{project.pk}/videos/clip.mp4"}[handoff]
    assert member.status_code == 200 and member.content == b"" and member[header] == expected
    assert member["Content-Type"] == "video/mp4"
    assert outsider.status_code == 404 and header not in outsider
