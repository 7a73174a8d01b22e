"""Downloading a 200 MB result must raise the process's peak memory by less than 32 MB.

    .venv/bin/python -m tests.benchmarks.download_memory [--megabytes 200]

This process writes a file of that size that starts with an MP4 `ftyp` box (random bytes after it),
serves it from a local HTTP server on loopback (Content-Length set, sent in 1 MiB pieces), and starts a
fresh Python process to do the download, so that nothing this process holds counts. That process sets
Django up with its own data directory (MEDIA_ROOT inside it, STUDIO_DOWNLOAD_ALLOW_HOSTS=127.0.0.1),
imports `studio.jobs.media` (which brings in httpx, PyAV and Pillow), and reads its peak resident set
size, `resource.getrusage(RUSAGE_SELF).ru_maxrss`: that is the baseline. It then calls
`studio.jobs.media.download_video()` exactly as the studio does (a streaming GET opened on the guarded
client, the file written under MEDIA_ROOT, hashed as it streams, fsynced) and reads the peak again.
The increase is peak − baseline. The sha256 and size that download_video reports, and the sha256 of the
file it left on disk, must match the file served.
"""

import argparse
import hashlib
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from tests.benchmarks import harness

LIMIT_MB = 32
PIECE = 1024 * 1024
FTYP = (24).to_bytes(4, "big") + b"ftypisom" + (512).to_bytes(4, "big") + b"isommp41"


def make_file(path, megabytes):
    digest = hashlib.sha256()
    with open(path, "wb") as handle:
        remaining = megabytes * 1024 * 1024
        first = True
        while remaining:
            piece = os.urandom(min(PIECE, remaining))
            if first:
                piece = FTYP + piece[len(FTYP):]
                first = False
            digest.update(piece)
            handle.write(piece)
            remaining -= len(piece)
    return digest.hexdigest()


class FileHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        path = self.server.video
        if self.path != "/video.mp4":
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "video/mp4")
        self.send_header("Content-Length", str(path.stat().st_size))
        self.end_headers()
        with open(path, "rb") as handle:
            while piece := handle.read(PIECE):
                self.wfile.write(piece)

    def log_message(self, *args):
        pass


def peak_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux


def current_mb():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return None


def child(url):
    """Runs in the fresh process: baseline, download, peak; prints one JSON line."""
    import django

    django.setup()
    import httpx
    from django.conf import settings

    from studio.jobs import media
    from studio.providers.http import BoundedTransport

    baseline, baseline_now = peak_mb(), current_mb()
    began = time.perf_counter()
    http = httpx.Client(transport=BoundedTransport(), follow_redirects=False, trust_env=False)
    stored = media.download_video(lambda link: http.stream("GET", link), url, "videos")
    seconds = time.perf_counter() - began
    peak, after_now = peak_mb(), current_mb()
    on_disk = hashlib.sha256()
    with open(Path(settings.MEDIA_ROOT) / stored.relative_path, "rb") as handle:
        while piece := handle.read(PIECE):
            on_disk.update(piece)
    print(json.dumps({"baseline_mb": baseline, "baseline_rss_mb": baseline_now, "peak_mb": peak,
                      "rss_after_mb": after_now, "seconds": seconds, "sha256": stored.sha256, "bytes": stored.bytes,
                      "sha256_on_disk": on_disk.hexdigest()}))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=int, default=200)
    parser.add_argument("--child", metavar="URL", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.child:
        return child(options.child)

    began = time.perf_counter()
    signal.signal(signal.SIGTERM, harness.raise_keyboard_interrupt)
    work = Path(tempfile.mkdtemp(prefix="studio-bench-download-"))
    server = process = None
    try:
        video = work / "served.mp4"
        expected = make_file(video, options.megabytes)
        server = ThreadingHTTPServer(("127.0.0.1", 0), FileHandler)
        server.video = video
        threading.Thread(target=server.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{server.server_address[1]}/video.mp4"
        env = harness.studio_env(work / "data", STUDIO_MEDIA_ROOT=work / "media")
        argv = [sys.executable, "-m", "tests.benchmarks.download_memory", "--child", url]
        process = subprocess.Popen(argv, cwd=harness.ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   text=True)
        out, err = process.communicate(timeout=600)
        if process.returncode != 0:
            print(err[-3000:], file=sys.stderr)
            return 1
        figures = json.loads(out.strip().splitlines()[-1])
    finally:
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()
        if server is not None:
            server.shutdown()
            server.server_close()
        shutil.rmtree(work, ignore_errors=True)

    size = options.megabytes * 1024 * 1024
    increase = figures["peak_mb"] - figures["baseline_mb"]
    intact = figures["sha256"] == expected == figures["sha256_on_disk"] and figures["bytes"] == size
    print(f"downloaded {options.megabytes} MB in {figures['seconds']:.2f} s "
          f"({options.megabytes / figures['seconds']:.0f} MB/s, including the fsync)")
    print(f"peak RSS after django.setup() and imports (baseline): {figures['baseline_mb']:.1f} MB "
          f"(RSS then {figures['baseline_rss_mb']:.1f} MB)")
    print(f"peak RSS after download_video():                   {figures['peak_mb']:.1f} MB "
          f"(RSS then {figures['rss_after_mb']:.1f} MB)")
    print(f"increase: {increase:.1f} MB   target < {LIMIT_MB} MB: {'PASS' if increase < LIMIT_MB else 'FAIL'}")
    print(f"sha256 {figures['sha256'][:16]}… size {figures['bytes']} bytes; matches the served file and the file "
          f"on disk: {'PASS' if intact else 'FAIL'}")
    print(f"run took {time.perf_counter() - began:.1f} s")
    return 0 if intact and increase < LIMIT_MB else 1


if __name__ == "__main__":
    sys.exit(main())
