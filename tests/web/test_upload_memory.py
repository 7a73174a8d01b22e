"""The web process's memory while uploads over the limit are refused, measured for real: `runserver` in its
own process on the test database, its peak resident memory (VmHWM) read from /proc before and after a
multipart body streamed from a generator, so neither side ever holds the body whole."""

import re
import secrets
import socket
import subprocess
import sys
import time
from html import unescape
from pathlib import Path

import httpx
import pytest
from django.urls import reverse

from tests.backends import studio_env
from tests.conftest import wait_for

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parents[2]
MiB = 1024**2
ALLOWED_GROWTH = 32 * MiB
BOUNDARY = "studio-upload-" + secrets.token_hex(8)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def peak_memory(pid):
    """VmHWM: the most resident memory the process has had since its start, or since reset_peak()."""
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"^VmHWM:\s+(\d+) kB$", status, re.MULTILINE).group(1)) * 1024


def reset_peak(pid):
    Path(f"/proc/{pid}/clear_refs").write_text("5")


class Server:
    def __init__(self, process, url, temp_dir):
        self.process, self.url, self.temp_dir = process, url, temp_dir

    def temp_files(self):
        return sorted(p.name for p in self.temp_dir.iterdir())


@pytest.fixture
def server(tmp_path, settings, team):
    temp_dir = tmp_path / "tmp"
    temp_dir.mkdir()
    port = free_port()
    env = studio_env(DEBUG=1, SECRET_KEY=settings.SECRET_KEY, STUDIO_MEDIA_ROOT=settings.MEDIA_ROOT,
                     TMPDIR=temp_dir)  # TMPDIR: where Django's temporary upload files go
    log = (tmp_path / "server.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "manage.py", "runserver", "--noreload", "--skip-checks", f"127.0.0.1:{port}"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _answers(url), timeout=60)
        yield Server(process, url, temp_dir)
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def _answers(url):
    try:
        return httpx.get(f"{url}/login/", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


@pytest.fixture
def editor_http(client, team, server):
    """An httpx client signed in as the project's editor (a session in the shared database), with a CSRF
    cookie and the header that matches it."""
    project, users = team
    client.force_login(users["editor"])
    token = secrets.token_hex(16)  # an unmasked 32-character secret: cookie and header must match
    cookies = {"sessionid": client.cookies["sessionid"].value, "csrftoken": token}
    headers = {"X-CSRFToken": token, "HX-Request": "true"}
    with httpx.Client(base_url=server.url, cookies=cookies, headers=headers, timeout=180) as http:
        yield http, project


def multipart(parts, chunk=MiB):
    """(content length, generator) of a multipart body. parts: (field, value) or (field, filename, size);
    a file is a PNG signature followed by zeros, produced a chunk at a time."""
    pieces = []  # (bytes before, how many zeros, bytes after)
    for part in parts:
        if len(part) == 2:
            field, value = part
            pieces.append((f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{field}"\r\n\r\n{value}'
                           .encode(), 0, b"\r\n"))
        else:
            field, filename, size = part
            head = (f"--{BOUNDARY}\r\n"
                    f'Content-Disposition: form-data; name="{field}"; filename="{filename}"\r\n'
                    "Content-Type: image/png\r\n\r\n").encode() + PNG_SIGNATURE
            pieces.append((head, size - len(PNG_SIGNATURE), b"\r\n"))
    tail = f"--{BOUNDARY}--\r\n".encode()
    length = sum(len(head) + zeros + len(after) for head, zeros, after in pieces) + len(tail)
    block = bytes(chunk)

    def body():
        for head, zeros, after in pieces:
            yield head
            while zeros:
                piece = block[:min(chunk, zeros)]
                zeros -= len(piece)
                yield piece
            yield after
        yield tail

    return length, body()


def post_streamed(http, path, parts, server=None, temp_files_seen=None):
    """POST the body as it is produced; with `server`, the number of temporary files it holds is noted before
    each piece is sent (into temp_files_seen)."""
    length, body = multipart(parts)
    if server is not None:
        body = _watching(body, server, temp_files_seen)
    headers = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}", "Content-Length": str(length)}
    return http.post(path, content=body, headers=headers)


def _watching(body, server, seen):
    for piece in body:
        seen.append(len(server.temp_files()))
        yield piece


def growth_while(server, action):
    """What `action` adds to the server's peak memory, after a first upload has loaded everything it uses."""
    pid = server.process.pid
    reset_peak(pid)
    before = peak_memory(pid)
    started = time.monotonic()
    result = action()
    seconds = time.monotonic() - started
    after = peak_memory(pid)
    growth = after - before
    print(f"\npeak memory: {before / MiB:.1f} MiB before, {after / MiB:.1f} MiB after, "
          f"+{growth / MiB:.1f} MiB, in {seconds:.1f} s")
    return growth, result


def warm_up(http, project):
    """One ordinary upload first: the modules, templates and database connection it needs are then loaded."""
    path = reverse("composer_fields", args=[project.slug])
    parts = [("prompt", "warm-up"), ("first_frame_file", "small.png", 64 * 1024)]
    response = post_streamed(http, path, parts)
    assert response.status_code == 200, response.text[:2000]


def test_a_200_mb_upload_is_refused_and_the_web_process_grows_by_less_than_32_mb(server, editor_http):
    http, project = editor_http
    warm_up(http, project)
    path = reverse("composer_fields", args=[project.slug])
    parts = [("prompt", "A harbour at dawn"), ("first_frame_file", "huge.png", 200 * MiB)]
    seen = []

    growth, response = growth_while(server, lambda: post_streamed(http, path, parts, server, seen))

    assert response.status_code == 200
    page = unescape(response.text).replace("\xa0", " ")
    assert "huge.png: The image is too large: the limit is 20.0 MB." in page
    assert growth < ALLOWED_GROWTH, f"the web process grew by {growth / MiB:.1f} MiB"
    assert max(seen) == 1  # it went to a temporary file, and that was deleted when the file passed the limit
    wait_for(lambda: server.temp_files() == [], timeout=10)


def test_twenty_files_over_the_limit_in_one_request_are_refused_with_memory_flat_and_no_temp_files(
    server, editor_http
):
    http, project = editor_http
    warm_up(http, project)
    path = reverse("composer_submit", args=[project.slug])
    parts = [("prompt", "A harbour at dawn")]
    parts += [("reference_images_file", f"ref-{n}.png", 21 * MiB) for n in range(20)]
    seen = []

    growth, response = growth_while(server, lambda: post_streamed(http, path, parts, server, seen))

    page = unescape(response.text).replace("\xa0", " ")
    assert response.status_code == 200
    assert "The image is too large: the limit is 20.0 MB." in page
    assert "Not taken: at most 8 images can be uploaded at once." in page
    assert growth < ALLOWED_GROWTH, f"the web process grew by {growth / MiB:.1f} MiB"
    assert max(seen) == 1  # one file on disk at a time: each refused file's part is deleted at once
    wait_for(lambda: server.temp_files() == [], timeout=10)
