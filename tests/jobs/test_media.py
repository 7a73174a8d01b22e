"""Keeping videos: the guarded download, the probe, the poster and strip, and the mismatch check.

Downloads go to a small HTTP server on loopback started by this module; its handler serves a real MP4
(made by the sandbox renderer), redirects, HTML, over-size and chunked bodies, a body cut halfway, and
error statuses. Nothing here touches the outside network: public addresses are only given to
check_address (or refused by a stand-in check), never connected to.
"""

import hashlib
import os
import socket
import threading
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from studio.jobs.media import (
    DownloadError,
    Probe,
    StoredFile,
    download_video,
    make_poster_and_strip,
    mismatches,
    probe_video,
)
from studio.providers.http import AddressRefused, BoundedTransport, check_address, guarded_transport
from studio.providers.registry import model_spec
from studio.sandbox.video import render_video

DEST = "videos/job-1"


@contextmanager
def open_stream(url):
    """What the provider client hands download_video: a streaming GET on the guarded transport. A fresh client
    each time, as a test changes the allow list: a kept-alive connection was checked when it opened."""
    with httpx.Client(transport=guarded_transport(), follow_redirects=False, trust_env=False) as client:
        with client.stream("GET", url) as response:
            yield response


# Test videos -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def video_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("rendered")


@pytest.fixture(scope="module")
def small_mp4(video_dir):
    """320x180, 1 s, no audio: the file the server hands out."""
    path = video_dir / "small.mp4"
    render_video(path, width=320, height=180, duration=1.0, fps=24, audio=False, lines=["media test"])
    return path


@pytest.fixture(scope="module")
def hd_mp4_with_audio(video_dir):
    path = video_dir / "hd-audio.mp4"
    render_video(path, width=1280, height=720, duration=4.0, fps=24, audio=True, lines=["probe test"])
    return path


# The local server ---------------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        self.server.requests.append(self.path)
        parts = urlsplit(self.path)
        route, query = parts.path, parse_qs(parts.query)
        mp4 = self.server.mp4
        if route == "/video.mp4":
            self._send(200, mp4, "video/mp4")
        elif route.startswith("/hop/"):
            # /hop/N redirects N more times before landing on the video.
            remaining = int(route.rsplit("/", 1)[1])
            self._redirect(f"/hop/{remaining - 1}" if remaining > 0 else "/video.mp4")
        elif route == "/redirect":
            self._redirect(query["to"][0])
        elif route == "/page.html":
            self._send(200, b"<!doctype html><html><body>Not a video</body></html>", "text/html")
        elif route == "/chunked.mp4":
            self._send_chunked(mp4 + b"\0" * self.server.padding)
        elif route == "/cut.mp4":
            self._send_cut(mp4)
        elif route.startswith("/status/"):
            self._send(int(route.rsplit("/", 1)[1]), b"no", "text/plain")
        else:
            self._send(404, b"unknown", "text/plain")

    def _send(self, status, body, content_type):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _redirect(self, location):
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _send_chunked(self, body, piece=16 * 1024):
        """No Content-Length: the size is only known by counting what arrives."""
        self.send_response(200)
        self.send_header("Content-Type", "video/mp4")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for start in range(0, len(body), piece):
            chunk = body[start:start + piece]
            self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
        self.wfile.write(b"0\r\n\r\n")

    def _send_cut(self, body):
        """Promise the whole file, send half of it, then drop the connection."""
        self.send_response(200)
        self.send_header("Content-Type", "video/mp4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body[: len(body) // 2])
        self.wfile.flush()
        self.close_connection = True

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server(small_mp4):
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    httpd.mp4 = small_mp4.read_bytes()
    httpd.padding = 0
    httpd.requests = []
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def origin(server):
    server.requests.clear()
    server.padding = 0
    return f"http://127.0.0.1:{server.server_address[1]}"


@pytest.fixture
def allow_loopback(settings):
    settings.STUDIO_DOWNLOAD_ALLOW_HOSTS = ["127.0.0.1"]


def dest_files(media_root):
    """Every name in the destination directory, hidden temporary files included."""
    directory = Path(media_root) / DEST
    return sorted(os.listdir(directory)) if directory.exists() else []


# 1. A successful download ---------------------------------------------------------------------------


def test_allowed_loopback_mp4_is_stored_under_media_root_with_its_sha256(allow_loopback, origin, server, media_root):
    stored = download_video(open_stream, f"{origin}/video.mp4", DEST)

    assert isinstance(stored, StoredFile)
    directory, name = stored.relative_path.rsplit("/", 1)
    assert directory == DEST
    assert name.endswith(".mp4") and len(name) == len("0" * 32 + ".mp4")
    on_disk = (Path(media_root) / stored.relative_path).read_bytes()
    assert on_disk == server.mp4
    assert stored.sha256 == hashlib.sha256(server.mp4).hexdigest()
    assert stored.bytes == len(server.mp4)
    assert dest_files(media_root) == [name]  # no .partial-* left behind


def test_each_download_gets_a_new_random_name(allow_loopback, origin, media_root):
    first = download_video(open_stream, f"{origin}/video.mp4", DEST)
    second = download_video(open_stream, f"{origin}/video.mp4", DEST)

    assert first.relative_path != second.relative_path
    assert first.sha256 == second.sha256
    assert len(dest_files(media_root)) == 2


# 2. Address checks ----------------------------------------------------------------------------------


def test_loopback_is_refused_unless_allowed(settings, origin, server, media_root):
    settings.STUDIO_DOWNLOAD_ALLOW_HOSTS = []

    with pytest.raises(DownloadError) as caught:
        download_video(open_stream, f"{origin}/video.mp4", DEST)

    assert caught.value.permanent is True
    assert caught.value.expired is False
    assert "127.0.0.1" in caught.value.message
    assert server.requests == []  # refused before any connection
    assert dest_files(media_root) == []


def test_loopback_is_allowed_by_cidr(settings, origin, server, media_root):
    settings.STUDIO_DOWNLOAD_ALLOW_HOSTS = ["127.0.0.0/8"]

    stored = download_video(open_stream, f"{origin}/video.mp4", DEST)

    assert (Path(media_root) / stored.relative_path).read_bytes() == server.mp4


@pytest.mark.parametrize(
    "address",
    ["10.0.0.1", "192.168.1.1", "172.16.0.1", "169.254.169.254", "0.0.0.0", "::1", "::ffff:127.0.0.1", "fc00::1",
     "fe80::1"],
)
def test_check_address_refuses_non_public_addresses(settings, address):
    settings.STUDIO_DOWNLOAD_ALLOW_HOSTS = []

    with pytest.raises(AddressRefused) as caught:
        check_address("videos.example.com", 443, address)

    assert address in str(caught.value)


@pytest.mark.parametrize("address", ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"])
def test_check_address_accepts_public_addresses(settings, address):
    settings.STUDIO_DOWNLOAD_ALLOW_HOSTS = []

    assert check_address("videos.example.com", 443, address) is None


def test_check_address_exempts_listed_host_names_case_insensitively(settings):
    settings.STUDIO_DOWNLOAD_ALLOW_HOSTS = ["sandbox.local"]

    assert check_address("Sandbox.LOCAL", 80, "10.0.0.5") is None
    with pytest.raises(AddressRefused):
        check_address("other.local", 80, "10.0.0.5")


def test_cidr_allow_list_does_not_open_other_private_ranges(settings):
    settings.STUDIO_DOWNLOAD_ALLOW_HOSTS = ["127.0.0.0/8"]

    assert check_address("anything", 80, "127.5.6.7") is None
    with pytest.raises(AddressRefused):
        check_address("anything", 80, "10.0.0.1")


@pytest.mark.parametrize("address", ["100.100.100.200", "100.64.0.1"])
def test_check_address_refuses_shared_address_space(settings, address):
    settings.STUDIO_DOWNLOAD_ALLOW_HOSTS = []

    with pytest.raises(AddressRefused):
        check_address("metadata.example", 80, address)


def test_a_name_is_resolved_once_and_the_connection_goes_to_the_checked_address(settings, server, origin, media_root,
                                                                               monkeypatch):
    """DNS rebinding: a name that answers a public address to the check and loopback a moment later must not
    get a request to loopback. The studio resolves once and connects to the very address it checked."""
    settings.STUDIO_DOWNLOAD_ALLOW_HOSTS = []
    port = server.server_address[1]
    answers = iter(["203.0.113.10", "127.0.0.1", "127.0.0.1"])  # the public one first, then the rebind
    lookups, connected = [], []
    real_getaddrinfo = socket.getaddrinfo

    def rebinding_dns(host, *args, **kwargs):
        if host != "rebind.example":
            return real_getaddrinfo(host, *args, **kwargs)
        address = next(answers)
        lookups.append(address)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    def refuse_public(host, port_, address):
        connected.append(address)
        if address == "203.0.113.10":  # stands in for a public host that is down: no real network here
            raise AddressRefused("test: the public address is not reachable from the test")
        check_address(host, port_, address)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding_dns)
    client = httpx.Client(transport=BoundedTransport(guard=refuse_public), follow_redirects=False, trust_env=False)
    with pytest.raises(DownloadError):
        download_video(lambda url: client.stream("GET", url), f"http://rebind.example:{port}/video.mp4", DEST)
    assert lookups == ["203.0.113.10"], "resolved exactly once"
    assert connected == ["203.0.113.10"]
    assert server.requests == [], "loopback never received a request"
    assert dest_files(media_root) == []


def test_a_name_that_resolves_to_loopback_is_refused_before_anything_is_sent(settings, server, origin, media_root):
    settings.STUDIO_DOWNLOAD_ALLOW_HOSTS = []
    port = server.server_address[1]

    with pytest.raises(DownloadError) as caught:
        download_video(open_stream, f"http://localhost:{port}/video.mp4", DEST)

    assert caught.value.permanent is True and "loopback" in caught.value.message
    assert server.requests == []


def test_a_host_and_port_entry_allows_that_port_only(settings, server, origin, media_root):
    port = server.server_address[1]
    settings.STUDIO_DOWNLOAD_ALLOW_HOSTS = [f"127.0.0.1:{port + 1}"]
    with pytest.raises(DownloadError):
        download_video(open_stream, f"http://127.0.0.1:{port}/video.mp4", DEST)
    assert server.requests == []

    settings.STUDIO_DOWNLOAD_ALLOW_HOSTS = [f"127.0.0.1:{port}"]
    stored = download_video(open_stream, f"http://127.0.0.1:{port}/video.mp4", DEST)
    assert stored.sha256 == hashlib.sha256(server.mp4).hexdigest()


# 3. Schemes -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/video.mp4", "file:///etc/passwd", "gopher://127.0.0.1:70/1"])
def test_only_http_and_https_are_followed(settings, media_root, url):
    settings.STUDIO_DOWNLOAD_ALLOW_HOSTS = ["127.0.0.1", "localhost"]

    with pytest.raises(DownloadError) as caught:
        download_video(open_stream, url, DEST)

    assert caught.value.permanent is True
    assert "only http and https" in caught.value.message
    assert dest_files(media_root) == []


# 4. Redirects -------------------------------------------------------------------------------------------


def test_redirect_to_a_disallowed_address_is_refused(settings, server, origin, media_root):
    settings.STUDIO_DOWNLOAD_ALLOW_HOSTS = ["localhost"]
    port = server.server_address[1]
    target = f"http://127.0.0.1:{port}/video.mp4"

    with pytest.raises(DownloadError) as caught:
        download_video(open_stream, f"http://localhost:{port}/redirect?to={target}", DEST)

    assert caught.value.permanent is True
    assert "127.0.0.1" in caught.value.message
    assert server.requests == [f"/redirect?to={target}"]  # the first hop was fetched, the second never
    assert dest_files(media_root) == []


def test_relative_redirects_up_to_the_limit_are_followed(allow_loopback, origin, server, media_root):
    stored = download_video(open_stream, f"{origin}/hop/4", DEST)  # five redirects, then the video

    assert stored.sha256 == hashlib.sha256(server.mp4).hexdigest()
    assert server.requests == ["/hop/4", "/hop/3", "/hop/2", "/hop/1", "/hop/0", "/video.mp4"]


def test_more_than_five_redirects_fail(allow_loopback, origin, server, media_root):
    with pytest.raises(DownloadError) as caught:
        download_video(open_stream, f"{origin}/hop/5", DEST)  # six redirects

    assert "Too many redirects" in caught.value.message
    assert "/video.mp4" not in server.requests
    assert dest_files(media_root) == []


# 5. Content and size ------------------------------------------------------------------------------------


def test_non_mp4_content_is_refused_and_nothing_is_kept(allow_loopback, origin, media_root):
    with pytest.raises(DownloadError) as caught:
        download_video(open_stream, f"{origin}/page.html", DEST)

    assert caught.value.permanent is True
    assert "not an MP4" in caught.value.message
    assert dest_files(media_root) == []


def test_declared_length_over_the_limit_is_refused(allow_loopback, origin, server, media_root):
    with pytest.raises(DownloadError) as caught:
        download_video(open_stream, f"{origin}/video.mp4", DEST, max_bytes=len(server.mp4) - 1)

    assert caught.value.permanent is True
    assert str(len(server.mp4)) in caught.value.message
    assert dest_files(media_root) == []


def test_default_limit_comes_from_settings(allow_loopback, settings, origin, server, media_root):
    settings.STUDIO_MAX_VIDEO_BYTES = len(server.mp4) - 1

    with pytest.raises(DownloadError) as caught:
        download_video(open_stream, f"{origin}/video.mp4", DEST)

    assert "limit" in caught.value.message
    assert dest_files(media_root) == []


def test_chunked_body_over_the_limit_is_refused_while_streaming(allow_loopback, origin, server, media_root):
    # A real MP4 start (passes the ftyp check) padded to ~600 KB with no Content-Length; the limit is
    # above the first 256 KB read, so the refusal must come from counting the stream.
    server.padding = 600 * 1024
    limit = 300 * 1024

    with pytest.raises(DownloadError) as caught:
        download_video(open_stream, f"{origin}/chunked.mp4", DEST, max_bytes=limit)

    assert caught.value.permanent is True
    assert f"over the {limit}-byte limit" in caught.value.message
    assert dest_files(media_root) == []


def test_chunked_body_under_the_limit_is_kept(allow_loopback, origin, server, media_root):
    stored = download_video(open_stream, f"{origin}/chunked.mp4", DEST)

    assert stored.bytes == len(server.mp4)
    assert (Path(media_root) / stored.relative_path).read_bytes() == server.mp4


# 6. Interrupted downloads -----------------------------------------------------------------------------


def test_connection_cut_halfway_leaves_no_file(allow_loopback, origin, media_root):
    with pytest.raises(DownloadError, match="The download broke off") as caught:
        download_video(open_stream, f"{origin}/cut.mp4", DEST)

    assert not caught.value.permanent and not caught.value.expired, "a broken download is retried"
    assert dest_files(media_root) == []


# 7. Dead links --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [403, 404, 410])
def test_gone_links_are_reported_as_expired(allow_loopback, origin, media_root, status):
    with pytest.raises(DownloadError) as caught:
        download_video(open_stream, f"{origin}/status/{status}", DEST)

    assert caught.value.expired is True
    assert str(status) in caught.value.message
    assert dest_files(media_root) == []


def test_server_error_is_not_expired_nor_permanent(allow_loopback, origin, media_root):
    with pytest.raises(DownloadError) as caught:
        download_video(open_stream, f"{origin}/status/500", DEST)

    assert caught.value.expired is False
    assert caught.value.permanent is False
    assert "500" in caught.value.message


# 8. Probing ------------------------------------------------------------------------------------------------


def test_probe_reads_size_duration_rate_codec_and_audio(hd_mp4_with_audio):
    probe = probe_video(hd_mp4_with_audio)

    assert (probe.width, probe.height) == (1280, 720)
    assert probe.duration == pytest.approx(4.0, abs=0.05)
    assert probe.fps == 24
    assert probe.video_codec == "h264"
    assert probe.has_audio is True


def test_probe_reports_a_silent_video(small_mp4):
    probe = probe_video(small_mp4)

    assert (probe.width, probe.height) == (320, 180)
    assert probe.duration == pytest.approx(1.0, abs=0.05)
    assert probe.has_audio is False


def test_probe_refuses_a_file_that_is_not_a_video(tmp_path):
    path = tmp_path / "page.mp4"
    path.write_bytes(b"<!doctype html><html><body>Not a video</body></html>" * 20)

    with pytest.raises(DownloadError) as caught:
        probe_video(path)

    assert caught.value.permanent is True


# 9. Poster and strip ---------------------------------------------------------------------------------------


def test_poster_and_strip_are_jpegs_with_ten_thumbnails(small_mp4, media_root):
    from PIL import Image

    poster_name, strip_name, count = make_poster_and_strip(small_mp4, "posters/job-1", stem="clip")

    assert count == 10
    assert poster_name.startswith("posters/job-1/") and strip_name.startswith("posters/job-1/")
    with Image.open(Path(media_root) / poster_name) as poster:
        assert poster.format == "JPEG"
        assert poster.size == (320, 180)
    with Image.open(Path(media_root) / strip_name) as strip:
        assert strip.format == "JPEG"
        thumb_width = round(320 * 90 / 180)
        assert strip.size == (10 * thumb_width, 90)


# 10. Mismatches --------------------------------------------------------------------------------------------


def _probe(width, height, duration, has_audio=True):
    return Probe(duration=duration, width=width, height=height, fps=24.0, video_codec="h264", has_audio=has_audio)


VEO_PARAMS = {"resolution": "1080p", "duration": 8, "aspect_ratio": "16:9"}


def test_lower_resolution_than_asked_is_one_mismatch():
    found = mismatches(model_spec("qingbo", "veo-3.1"), VEO_PARAMS, _probe(1280, 720, 8.0))

    assert len(found) == 1
    assert "1080p" in found[0] and "1280×720" in found[0]


def test_shorter_duration_than_asked_is_a_mismatch():
    found = mismatches(model_spec("qingbo", "veo-3.1"), VEO_PARAMS, _probe(1920, 1080, 4.0))

    assert len(found) == 1
    assert "8 s" in found[0] and "4.00 s" in found[0]


def test_missing_audio_is_a_mismatch():
    spec = model_spec("uniall", "viduq3p-720p")
    params = {"aspect_ratio": "16:9", "duration": 5, "audio": True}

    found = mismatches(spec, params, _probe(1280, 720, 5.0, has_audio=False))

    assert len(found) == 1
    assert "audio" in found[0].lower()


def test_matching_video_has_no_mismatches():
    assert mismatches(model_spec("qingbo", "veo-3.1"), VEO_PARAMS, _probe(1920, 1080, 8.0)) == []
    spec = model_spec("uniall", "viduq3p-720p")
    assert mismatches(spec, {"aspect_ratio": "16:9", "duration": 5, "audio": True}, _probe(1280, 720, 5.0)) == []


def test_upsampled_veo_at_1080p_is_not_a_resolution_mismatch():
    spec = model_spec("veoquery", "veo3")

    assert mismatches(spec, {"upsample": True}, _probe(1920, 1080, 8.0)) == []
    # Without upsampling the same file is more than the fixed 720p asked for.
    assert any("720p" in m for m in mismatches(spec, {}, _probe(1920, 1080, 8.0)))
