"""The studio behind nginx with deploy/nginx/studio-locations.conf, as production runs it: the studio checks who
asks (STUDIO_MEDIA_HANDOFF=x-accel-redirect) and nginx sends the file, with ranges and validators. nginx is
Debian's (`make test-packages` installs it), started on a loopback port with everything under a temporary prefix."""

import os
import shutil
import subprocess
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from django.conf import settings

from tests.conftest import wait_for
from tests.web.servers import (  # noqa: F401 (a fixture)
    ROOT,
    collected_static_fixture,
    ends_with_this_process,
    gunicorn,
    session_cookie,
    stop,
)
from tests.web.test_run_command import free_port
from tests.web.test_web_server import SlowReader, page_latencies

pytestmark = pytest.mark.django_db(transaction=True)

MiB = 1024**2
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def nginx_conf(prefix, *, port, upstream, media_root):
    """A whole nginx.conf around the repository's locations file: what deploy/nginx/studio.conf sets up, on plain
    HTTP, with every file nginx writes under `prefix`."""
    temp = {name: prefix / name for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi")}
    for folder in temp.values():
        folder.mkdir()
    # As root, nginx's workers would run as nobody, who cannot read pytest's private temporary folders.
    user = "user root root;" if os.geteuid() == 0 else ""
    return f"""
        {user}
        daemon off;
        worker_processes 1;
        pid {prefix}/nginx.pid;
        error_log {prefix}/error.log info;
        events {{ worker_connections 256; }}
        http {{
            include /etc/nginx/mime.types;
            access_log {prefix}/access.log;
            client_body_temp_path {temp["body"]};
            proxy_temp_path {temp["proxy"]};
            fastcgi_temp_path {temp["fastcgi"]};
            uwsgi_temp_path {temp["uwsgi"]};
            scgi_temp_path {temp["scgi"]};
            upstream studio_web {{ server {upstream}; keepalive 8; }}
            server {{
                listen 127.0.0.1:{port};
                set $studio_media_root {media_root};
                include {ROOT / "deploy" / "nginx" / "studio-locations.conf"};
            }}
        }}
    """


@contextmanager
def nginx(tmp_path, studio):
    """nginx in front of the `studio` server, on a free loopback port, stopped at the end."""
    if not Path(NGINX).exists():
        pytest.fail("nginx is missing: `make test-packages` installs it (Debian's nginx-light)")
    prefix = tmp_path / "nginx"
    prefix.mkdir()
    port = free_port()
    conf = prefix / "nginx.conf"
    conf.write_text(nginx_conf(prefix, port=port, upstream=studio.url.removeprefix("http://"),
                               media_root=settings.MEDIA_ROOT))
    log = prefix / "output.log"
    with log.open("w") as out:
        process = subprocess.Popen([NGINX, "-p", str(prefix), "-c", str(conf), "-e", str(prefix / "error.log")],
                                   stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                                   preexec_fn=ends_with_this_process)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: process.poll() is not None or _listens(port), timeout=20)
        assert process.poll() is None, log.read_text() + (prefix / "error.log").read_text()
        yield url
    finally:
        stop(process)


def _listens(port):
    try:
        httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
        return True
    except httpx.TransportError:
        return False


@pytest.fixture
def clip(team, media_root):
    """A 5 MiB video in the team's project (a space in its name, as a URI must escape it) and its address."""
    project, _ = team
    folder = media_root / "projects" / str(project.pk) / "videos"
    folder.mkdir(parents=True)
    content = os.urandom(5 * MiB + 123)
    (folder / "take one.mp4").write_bytes(content)
    return content, f"/media/projects/{project.pk}/videos/take%20one.mp4"


@pytest.fixture
def studio_behind_nginx(tmp_path, collected_static):
    with gunicorn(tmp_path, collected_static, STUDIO_MEDIA_HANDOFF="x-accel-redirect") as studio:
        with nginx(tmp_path, studio) as url:
            yield studio, url


def test_nginx_sends_a_members_video_with_ranges_and_validators(studio_behind_nginx, team, clip):
    studio, url = studio_behind_nginx
    _, users = team
    content, path = clip
    cookies = {"sessionid": session_cookie(users["viewer"])}
    with httpx.Client(base_url=url, cookies=cookies, timeout=30) as http:
        whole = http.get(path)
        part = http.get(path, headers={"Range": "bytes=3000000-3999999"})
        tail = http.get(path, headers={"Range": "bytes=-100"})
        again = http.get(path, headers={"If-None-Match": whole.headers["ETag"]})
        since = http.get(path, headers={"If-Modified-Since": whole.headers["Last-Modified"]})
    with httpx.Client(base_url=studio.url, cookies=cookies, timeout=30) as http:
        handed_off = http.get(path)
    assert whole.status_code == 200 and whole.content == content
    assert whole.headers["Content-Type"] == "video/mp4"
    assert whole.headers["Cache-Control"] == "private, max-age=3600"
    assert whole.headers["X-Content-Type-Options"] == "nosniff"
    assert part.status_code == 206 and part.content == content[3000000:4000000]
    assert part.headers["Content-Range"] == f"bytes 3000000-3999999/{len(content)}"
    assert tail.status_code == 206 and tail.content == content[-100:]
    assert again.status_code == 304 and again.content == b""
    assert since.status_code == 304
    # The studio itself sent no bytes, only where nginx finds them; nginx's ETag is the one the studio sends when
    # it serves the file itself, so a browser's copy stays valid when STUDIO_MEDIA_HANDOFF changes.
    assert handed_off.content == b""
    assert handed_off.headers["X-Accel-Redirect"].endswith("/videos/take%20one.mp4")
    stat = (settings.MEDIA_ROOT / path.removeprefix("/media/").replace("%20", " ")).stat()
    assert whole.headers["ETag"] == f'"{int(stat.st_mtime):x}-{stat.st_size:x}"'


def test_nginx_serves_no_file_the_studio_has_not_allowed(studio_behind_nginx, team, clip):
    studio, url = studio_behind_nginx
    project, users = team
    content, path = clip
    with httpx.Client(base_url=url, cookies={"sessionid": session_cookie(users["outsider"])}, timeout=30) as http:
        outsider = http.get(path)
        # The location nginx reads files from after the hand-off, asked for directly (and spelled as the studio
        # writes it), by someone signed in but not a member.
        direct = http.get(f"/protected-media/projects/{project.pk}/videos/take%20one.mp4")
        climbing = http.get(f"/protected-media/../media/projects/{project.pk}/videos/take%20one.mp4")
    with httpx.Client(base_url=url, timeout=30) as http:
        anonymous = http.get(path)
        anonymous_direct = http.get(f"/protected-media/projects/{project.pk}/videos/take%20one.mp4")
    for response in (outsider, direct, climbing, anonymous_direct):
        assert response.status_code == 404, response
        assert content[:1000] not in response.content
    assert anonymous.status_code == 302 and anonymous.headers["Location"].startswith("/login/")
    assert content[:1000] not in anonymous.content


def test_videos_watched_through_nginx_hold_no_studio_thread(tmp_path, collected_static, team, video_file):
    """One worker with two threads: without the hand-off, ten slow viewers would hold them both."""
    _, users = team
    cookie = session_cookie(users["viewer"])
    with gunicorn(tmp_path, collected_static, STUDIO_MEDIA_HANDOFF="x-accel-redirect", STUDIO_WEB_WORKERS=1,
                  STUDIO_WEB_THREADS=2) as studio, nginx(tmp_path, studio) as url:
        readers = [SlowReader(url, video_file, cookie, rate=64 * 1024) for _ in range(10)]
        for reader in readers:
            reader.start()
        wait_for(lambda: all(reader.received for reader in readers), timeout=20)
        before = [reader.received for reader in readers]
        latencies = page_latencies(url, seconds=5)
        still_reading = [reader.is_alive() and reader.received > seen for reader, seen in zip(readers, before)]
        for reader in readers:
            reader.stop.set()
    print(f"\n/login/ through nginx under 10 slow downloads, 1 worker x 2 threads: {len(latencies)} requests, "
          f"max {max(latencies) * 1000:.0f} ms")
    assert all(reader.head.startswith(b"HTTP/1.1 200 ") for reader in readers), [r.head for r in readers]
    assert all(still_reading)
    assert max(latencies) < 1.0, latencies


@pytest.fixture
def video_file(team, media_root):
    """A 64 MiB video (a sparse file), far more than nginx and the kernel buffer for a slow reader."""
    project, _ = team
    folder = media_root / "projects" / str(project.pk) / "videos"
    folder.mkdir(parents=True)
    with (folder / "long.mp4").open("wb") as handle:
        handle.truncate(64 * MiB)
    return f"/media/projects/{project.pk}/videos/long.mp4"


def test_the_shipped_site_passes_nginx_own_check(tmp_path):
    """deploy/nginx/studio.conf as an admin installs it (snippets/ beside it), certificates aside."""
    if not Path(NGINX).exists():
        pytest.fail("nginx is missing: `make test-packages` installs it (Debian's nginx-light)")
    (tmp_path / "snippets").mkdir()
    shutil.copy(ROOT / "deploy" / "nginx" / "studio-locations.conf", tmp_path / "snippets")
    site = (ROOT / "deploy" / "nginx" / "studio.conf").read_text()
    for name in ("fullchain.pem", "privkey.pem"):
        site = site.replace(f"/etc/letsencrypt/live/studio.example.com/{name}", str(tmp_path / name))
    (tmp_path / "studio.conf").write_text(site)
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=studio.example.com",
                    "-keyout", tmp_path / "privkey.pem", "-out", tmp_path / "fullchain.pem", "-days", "1"],
                   check=True, capture_output=True)
    (tmp_path / "nginx.conf").write_text(
        f"pid {tmp_path}/nginx.pid; events {{}} http {{ include /etc/nginx/mime.types; "
        f"include {tmp_path}/studio.conf; }}")
    check = subprocess.run([NGINX, "-t", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf"),
                            "-e", str(tmp_path / "error.log")], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
