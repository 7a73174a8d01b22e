"""Keeping videos: a guarded download straight to disk, a probe, a poster and a thumbnail strip.

Downloads follow only http(s) and refuse private, loopback and link-local addresses: the opener's transport
(studio.providers.http.guarded_transport) resolves the host, checks every address and connects to the
checked one, for the link and for every redirect. Hosts, networks or host:port pairs listed in
STUDIO_DOWNLOAD_ALLOW_HOSTS are exempt (the sandbox, in development). A file is written to a temporary
name in its final directory, hashed while streaming, fsynced and renamed: an interrupted download leaves
nothing behind under a real name.
"""

import hashlib
import os
import tempfile
import time
import uuid
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import av
import httpx
from django.conf import settings
from PIL import Image

from studio.core import media_store
from studio.core.failpoints import failpoint
from studio.core.redaction import public_text
from studio.providers.http import AddressRefused, call_budget

MAX_REDIRECTS = 5
CHUNK = 256 * 1024
MP4_BRANDS = {b"ftyp"}
STRIP_FRAMES = 10
STRIP_HEIGHT = 90


class DownloadError(Exception):
    """The video could not be kept. `expired` means the link is dead (ask the provider for a fresh one)."""

    def __init__(self, message, *, expired=False, permanent=False):
        super().__init__(message)
        self.message = message
        self.expired = expired
        self.permanent = permanent


@dataclass
class StoredFile:
    relative_path: str
    sha256: str
    bytes: int


# Links -----------------------------------------------------------------------------------------------


def check_url(url):
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise DownloadError(f"Refusing to download {url[:80]}: only http and https links are followed.", permanent=True)


# Downloading ---------------------------------------------------------------------------------------


def download_video(open_stream, url, destination_dir, *, max_bytes=None, cancel=None):
    """Stream a video to a new random name in `destination_dir` (a storage name's folder, core.media_store).

    `open_stream(url)` is a context manager yielding a streaming response; the provider client supplies
    it so that the right headers (a Bearer key, for ModelMax) go with the request. The download has a time
    budget: a grace period for the first bytes, then it must keep up a minimum average rate, and it never
    runs longer than a total cap; `cancel` (an Event) abandons it at once.
    """
    max_bytes = max_bytes or settings.STUDIO_MAX_VIDEO_BYTES
    directory = media_store.scratch_dir(destination_dir)
    with call_budget(settings.STUDIO_DOWNLOAD_GRACE_SECONDS, cancel=cancel) as budget:
        for _ in range(MAX_REDIRECTS + 1):
            check_url(url)
            try:
                with open_stream(url) as response:
                    if response.is_redirect:
                        url = urljoin(url, response.headers["Location"])
                        continue
                    _raise_for_status(response)
                    return _write_stream(response, directory, destination_dir, max_bytes, budget)
            except AddressRefused as refused:
                raise DownloadError(str(refused), permanent=True) from None
            except httpx.TimeoutException:
                raise DownloadError(_too_slow(budget)) from None
            except httpx.HTTPError as error:
                detail = public_text(error, 200) or type(error).__name__
                raise DownloadError(f"The download broke off: {detail}") from None
    raise DownloadError(f"Too many redirects (more than {MAX_REDIRECTS}) while downloading the video.")


def _too_slow(budget):
    received = getattr(budget, "received", 0)
    return (f"The download was too slow: {received:,} bytes in {budget.elapsed():.0f} s (it must keep up "
            f"{settings.STUDIO_DOWNLOAD_MIN_RATE:,} bytes/s after {settings.STUDIO_DOWNLOAD_GRACE_SECONDS:.0f} s, "
            f"and end within {settings.STUDIO_DOWNLOAD_MAX_SECONDS:.0f} s).")


def sweep_abandoned_partials(root=None):
    """Remove temporary files of downloads killed mid-way (kill -9 leaves them); a live download writes
    often, so a partial file untouched for an hour (or twice the download cap) belongs to no one."""
    stale_before = time.time() - max(3600, 2 * settings.STUDIO_DOWNLOAD_MAX_SECONDS)
    removed = 0
    partials = []
    if root is not None or media_store.is_local():
        partials += Path(root or media_store.local_root()).glob("projects/*/videos/.partial-*")
    partials += (Path(settings.DATA_DIR) / "partials").glob(".*-*")  # an object store's scratch folder
    for partial in partials:
        try:
            if partial.stat().st_mtime < stale_before:
                partial.unlink()
                removed += 1
        except FileNotFoundError:
            continue
    return removed


def _raise_for_status(response):
    if response.status_code in (403, 404, 410):
        raise DownloadError(f"The video link has expired or is gone (HTTP {response.status_code}).", expired=True)
    if response.status_code != 200:
        raise DownloadError(f"The video download failed with HTTP {response.status_code}.")


def _write_stream(response, directory, relative_dir, max_bytes, budget):
    length = response.headers.get("Content-Length") or ""
    declared = int(length) if length.isascii() and length.isdigit() and len(length) <= 18 else 0
    if declared > max_bytes:
        raise DownloadError(f"The video is {declared} bytes, over the {max_bytes}-byte limit.", permanent=True)
    grace, rate = settings.STUDIO_DOWNLOAD_GRACE_SECONDS, settings.STUDIO_DOWNLOAD_MIN_RATE
    cap = settings.STUDIO_DOWNLOAD_MAX_SECONDS
    digest, size = hashlib.sha256(), 0
    handle = tempfile.NamedTemporaryFile(dir=directory, prefix=".partial-", suffix=".mp4", delete=False)
    try:
        with handle:
            for chunk in response.iter_bytes():
                size += len(chunk)
                # Each byte received earns time at the minimum rate: a drip runs out of budget, a steady
                # download never does, and nothing runs past the cap.
                budget.received = size
                budget.extend_to(min(cap, grace + size / rate))
                if size > max_bytes:
                    raise DownloadError(f"The video is over the {max_bytes}-byte limit.", permanent=True)
                if size == len(chunk) and len(chunk) >= 8 and chunk[4:8] not in MP4_BRANDS:
                    raise DownloadError("The provider's file is not an MP4 video.", permanent=True)
                digest.update(chunk)
                handle.write(chunk)
                failpoint("during_download")
            handle.flush()
            os.fsync(handle.fileno())
        if size < 8:
            raise DownloadError("The provider's file is empty.")
        stored = media_store.keep(handle.name, f"{relative_dir}/{uuid.uuid4().hex}.mp4")
    except BaseException:
        Path(handle.name).unlink(missing_ok=True)
        raise
    return StoredFile(relative_path=stored, sha256=digest.hexdigest(), bytes=size)


# Probing -------------------------------------------------------------------------------------------


@dataclass
class Probe:
    duration: float | None
    width: int | None
    height: int | None
    fps: float | None
    video_codec: str
    has_audio: bool


def probe_video(path):
    """What the file really is, read with PyAV (FFmpeg)."""
    try:
        with av.open(str(path)) as container:
            video = next((s for s in container.streams if s.type == "video"), None)
            if video is None:
                raise DownloadError("The file has no video stream.", permanent=True)
            has_audio = any(s.type == "audio" for s in container.streams)
            duration = None
            if video.duration is not None and video.time_base:
                duration = float(video.duration * video.time_base)
            elif container.duration:
                duration = container.duration / av.time_base
            rate = video.average_rate or video.guessed_rate
            return Probe(
                duration=round(duration, 3) if duration is not None else None,
                width=video.codec_context.width,
                height=video.codec_context.height,
                fps=round(float(Fraction(rate)), 3) if rate else None,
                video_codec=video.codec_context.name or "",
                has_audio=has_audio,
            )
    except av.error.FFmpegError as error:
        raise DownloadError(f"The file is not a readable video: {error}", permanent=True) from None


def _frames_at(path, fractions):
    """Decoded frames nearest to the given fractions of the duration, as PIL images."""
    images = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        total = float(stream.duration * stream.time_base) if stream.duration else (container.duration or 0) / av.time_base
        for fraction in fractions:
            target = int(max(0.0, total * fraction) / stream.time_base)
            container.seek(target, stream=stream, any_frame=False, backward=True)
            frame = None
            for frame in container.decode(stream):
                if frame.pts is not None and frame.pts >= target:
                    break
            if frame is not None:
                images.append(frame.to_image())
    return images


def make_poster_and_strip(path, poster_dir, *, stem):
    """A JPEG poster (at 10% of the clip, past any fade-in) and a strip of STRIP_FRAMES thumbnails, named
    after `stem` so that making them twice writes the same two files."""
    fractions = [0.1] + [(i + 0.5) / STRIP_FRAMES for i in range(STRIP_FRAMES)]
    frames = _frames_at(path, fractions)
    if not frames:
        return "", "", 0
    poster_name = f"{poster_dir}/{stem}.jpg"
    media_store.save_jpeg(frames[0].convert("RGB"), poster_name, quality=85)
    thumbs = [f.convert("RGB") for f in frames[1:]]
    width = max(1, round(thumbs[0].width * STRIP_HEIGHT / thumbs[0].height))
    strip = Image.new("RGB", (width * len(thumbs), STRIP_HEIGHT))
    for index, thumb in enumerate(thumbs):
        strip.paste(thumb.resize((width, STRIP_HEIGHT), Image.Resampling.LANCZOS), (index * width, 0))
    strip_name = f"{poster_dir}/{stem}-strip.jpg"
    media_store.save_jpeg(strip, strip_name, quality=80)
    return poster_name, strip_name, len(thumbs)


RESOLUTION_SHORT_SIDE = {"540p": 540, "720p": 720, "1080p": 1080, "4k": 2160}


def mismatches(spec, params, probe):
    """Where the delivered file differs from what was asked: each a short sentence for the reviewer."""
    return list(mismatches_by_field(spec, params, probe).values())


def mismatches_by_field(spec, params, probe):
    """The same differences keyed by what differs ("resolution", "aspect_ratio", "duration", "audio"), so a
    page can flag the row of each."""
    found = {}
    # Upsampling (veoquery's enable_upsample) delivers 1080p whatever the model's base resolution.
    resolution = "1080p" if params.get("upsample") else spec.effective(params, "resolution")
    if resolution in RESOLUTION_SHORT_SIDE and probe.width and probe.height:
        short = min(probe.width, probe.height)
        if short != RESOLUTION_SHORT_SIDE[resolution]:
            found["resolution"] = f"Asked for {resolution}; delivered {probe.width}×{probe.height}."
    aspect = spec.effective(params, "aspect_ratio")
    if aspect and probe.width and probe.height:
        w, h = (int(x) for x in aspect.split(":"))
        if abs(probe.width / probe.height - w / h) > 0.02:
            found["aspect_ratio"] = f"Asked for {aspect}; delivered {probe.width}×{probe.height}."
    duration = spec.effective(params, "duration")
    if duration and probe.duration is not None and abs(probe.duration - float(duration)) > 0.5:
        found["duration"] = f"Asked for {duration} s; delivered {probe.duration:.2f} s."
    audio = spec.effective(params, "audio")
    if audio is True and not probe.has_audio:
        found["audio"] = "Asked for audio; the video has no sound track."
    if audio is False and probe.has_audio:
        found["audio"] = "Asked for no audio; the video has a sound track."
    return found
