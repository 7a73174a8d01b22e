"""The provider sandbox for benchmarks: the studio's own sandbox server, run as its own process, with these
differences, all made from the outside:

* video downloads (`/_files/...`, which the stock request log leaves out) are logged too, as
  `{"kind": "download", "task": id, "at": ...}`, so a benchmark sees when each video was fetched.
* the listen backlog is 256 instead of the stock 128. `--nagle` turns Nagle's algorithm back on (the
  stock server turns it off), to measure what it cost: ~40 ms per answer on a kept-alive connection.
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
import tempfile
import threading
import time
from pathlib import Path

from studio.sandbox.server import Handler, Sandbox, SandboxServer


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


class NagleHandler(Handler):
    """The handler with Nagle's algorithm left on, as the sandbox first shipped: each answer's body then waits
    for the client's delayed ACK (~40 ms on a kept-alive connection). For `--nagle` comparisons only."""

    disable_nagle_algorithm = False


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
    parser.add_argument("--nagle", action="store_true", help="leave Nagle's algorithm on, as the sandbox first did")
    parser.add_argument("--media-dir", type=Path)
    options = parser.parse_args()
    media_dir = options.media_dir or Path(tempfile.mkdtemp(prefix="bench-sandbox-"))
    sandbox = TimedSandbox(job_seconds=options.job_seconds, media_dir=media_dir, tiny_videos=options.tiny_videos,
                           shared_clip=options.shared_clip, completion_spread=options.completion_spread)
    server = BenchSandboxServer((options.host, options.port), sandbox)
    if options.nagle:
        server.RequestHandlerClass = NagleHandler
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
