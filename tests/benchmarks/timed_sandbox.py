"""The provider sandbox for benchmarks: the studio's own sandbox server, run as its own process, with these
differences, all made from the outside (server.py is not changed):

* every request-log entry carries `at`, the wall-clock time (time.time()) at which the request was
  routed, and video downloads (`/_files/...`, which the stock log leaves out) are logged too, as
  `{"kind": "download", "task": id, "at": ...}`. The stock `/_sandbox/requests` entries have no time,
  so without this the arrival of a status check can only be guessed.
* the listen backlog is 256 instead of socketserver's 5, and answers are sent with TCP_NODELAY (unless
  `--nagle`): the stock server's answers each stall ~40 ms on Nagle's algorithm and delayed ACKs
  (see BenchSandboxServer), which would make the sandbox, not the studio, the limit.
* `--completion-spread S` adds a random 0..S seconds to each task's running time, so the tasks of a
  benchmark that submitted them all at once do not all finish in the same few seconds.
* `--shared-clip` renders one tiny clip per (provider, model) and hands that same file to every later
  task. A tiny render still costs the sandbox ~0.09 CPU-seconds (measured: 50 renders, 4.7 s of CPU), so
  1,000 jobs would keep one of this machine's two cores busy for ~90 s, competing with the cluster
  being measured. A real provider renders on its own machines.

    python -m tests.benchmarks.timed_sandbox --port 0 --job-seconds 60 --tiny-videos --shared-clip

prints `Sandbox listening on http://127.0.0.1:PORT` once it accepts connections.
"""

import argparse
import random
import shutil
import signal
import socket
import tempfile
import threading
import time
from pathlib import Path

from studio.sandbox.server import MALFORMED, Sandbox, SandboxServer


class TimedSandbox(Sandbox):
    def __init__(self, *, shared_clip=False, completion_spread=0.0, seed=1, **options):
        super().__init__(**options)
        self.shared_clip = shared_clip
        self.completion_spread = completion_spread
        self.random = random.Random(seed)
        self.clips = {}
        self.clip_lock = threading.Lock()

    def create_task(self, *args, **kwargs):
        task = super().create_task(*args, **kwargs)
        if self.completion_spread:
            with self.lock:
                task.job_seconds += self.random.uniform(0.0, self.completion_spread)
        return task

    def record(self, request):
        entry = {
            "provider": request.provider,
            "method": request.method,
            "path": request.path,
            "query": request.query,
            "json": None if request.json is MALFORMED else request.json,
            "authorization": "Bearer ***" if request.key else "",
            "at": time.time(),
        }
        with self.lock:
            self.requests.append(entry)

    def serve_video(self, task, index):
        with self.lock:
            self.requests.append({"provider": task.provider, "method": "GET", "kind": "download", "task": task.id,
                                  "path": f"/_files/{task.id}/{index}", "at": time.time()})
        return super().serve_video(task, index)

    def _render(self, task, first_frame, last_frame):
        if not self.shared_clip:
            return super()._render(task, first_frame, last_frame)
        key = (task.provider, task.model)
        with self.clip_lock:
            if key not in self.clips:
                super()._render(task, first_frame, last_frame)
                self.clips[key] = list(task.videos), task.render_error
                return
        videos, error = self.clips[key]
        task.videos.extend(videos[:1] * task.samples)
        task.render_error = error
        task.ready.set()


class BenchSandboxServer(SandboxServer):
    # socketserver's default backlog of 5 drops SYNs when many downloads open connections at once, and the
    # client's retransmit costs a full second: an artifact of the stand-in, not of the studio.
    request_queue_size = 256
    nagle = False

    def get_request(self):
        # The stock handler writes an answer's headers and its body in two send() calls; with Nagle's
        # algorithm on, the body waits for the client's delayed ACK, so every answer on a kept-alive
        # connection takes ~40 ms (measured: status GET p50 44 ms with Nagle, about 1 ms without).
        connection, address = super().get_request()
        if not self.nagle:
            connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return connection, address


def stop_serving(signum, frame):
    raise KeyboardInterrupt


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--job-seconds", type=float, default=60.0)
    parser.add_argument("--tiny-videos", action="store_true")
    parser.add_argument("--shared-clip", action="store_true")
    parser.add_argument("--completion-spread", type=float, default=0.0)
    parser.add_argument("--nagle", action="store_true", help="leave Nagle's algorithm on, as the stock sandbox does")
    parser.add_argument("--media-dir", type=Path)
    options = parser.parse_args()
    media_dir = options.media_dir or Path(tempfile.mkdtemp(prefix="bench-sandbox-"))
    sandbox = TimedSandbox(job_seconds=options.job_seconds, media_dir=media_dir, tiny_videos=options.tiny_videos,
                           shared_clip=options.shared_clip, completion_spread=options.completion_spread)
    server = BenchSandboxServer((options.host, options.port), sandbox)
    server.nagle = options.nagle
    signal.signal(signal.SIGTERM, stop_serving)
    print(f"Sandbox listening on {server.url}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        if options.media_dir is None:
            shutil.rmtree(media_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
