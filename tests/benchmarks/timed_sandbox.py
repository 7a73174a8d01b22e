"""The provider sandbox for benchmarks: the studio's own sandbox server, run as its own process, with these
differences, all made from the outside:

* where the stock sandbox has no download log (`GET /_sandbox/downloads`, added with the engine that
  moved probes to django-q2's workers), video downloads are put in the request log instead, as
  `{"kind": "download", "task": id, "at": ...}`, so a benchmark sees when each video was fetched either way.
* the listen backlog is 256 instead of the stock 128. `--nagle` turns Nagle's algorithm back on (the
  stock server turns it off), to measure what it cost: ~40 ms per answer on a kept-alive connection.
* `--completion-spread S` adds a random 0..S seconds to each task's running time, so the tasks of a
  benchmark that submitted them all at once do not all finish in the same few seconds.
* `--shared-clip` renders one tiny clip per (provider, model) and hands that same file to every later
  task. A tiny render still costs the sandbox ~0.09 CPU-seconds (measured: 50 renders, 4.7 s of CPU), so
  1,000 jobs would keep one of this machine's two cores busy for ~90 s, competing with the cluster
  being measured. A real provider renders on its own machines.
* `--heavy-provider P` (e.g. modelmax): P's tasks deliver a full-size clip (the size, length and sound
  the request asked for), rendered once per model when its first task is created (the log then says
  `heavy clip rendered`) and shared by the later ones, and they are held unfinished (status "running")
  until the process gets SIGUSR1, which completes every held task at that moment (the log says
  `released N heavy tasks at <unix time>`). A benchmark submits them before polling starts and releases
  them all at once, so that many full-size videos reach the studio's probe and poster together.

    python -m tests.benchmarks.timed_sandbox --port 0 --job-seconds 60 --tiny-videos --shared-clip \
        [--heavy-provider modelmax]

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

from studio.sandbox import video
from studio.sandbox.server import Handler, Sandbox, SandboxServer

STOCK_DOWNLOAD_LOG = hasattr(Sandbox, "downloads_for")


class TimedSandbox(Sandbox):
    def __init__(self, *, shared_clip=False, completion_spread=0.0, heavy_providers=(), seed=1, **options):
        super().__init__(**options)
        self.shared_clip = shared_clip
        self.completion_spread = completion_spread
        self.heavy_providers = set(heavy_providers)
        self.random = random.Random(seed)
        self.clips = {}
        self.clip_lock = threading.Lock()

    def create_task(self, provider, *args, **kwargs):
        task = super().create_task(provider, *args, **kwargs)
        with self.lock:
            if provider in self.heavy_providers:
                task.never_finish = True  # until release_heavy()
            elif self.completion_spread:
                task.job_seconds += self.random.uniform(0.0, self.completion_spread)
        return task

    def release_heavy(self):
        """Complete every held task of a heavy provider now (SIGUSR1)."""
        with self.lock:
            held = [task for task in self.tasks.values() if task.provider in self.heavy_providers and task.never_finish]
            released_at = time.time()
            for task in held:
                task.job_seconds = task.elapsed()
                task.never_finish = False
        print(f"released {len(held)} heavy tasks at {released_at:.3f}", flush=True)

    def serve_video(self, task, index):
        if not STOCK_DOWNLOAD_LOG:
            with self.lock:
                self.requests.append({"provider": task.provider, "method": "GET", "kind": "download",
                                      "task": task.id, "path": f"/_files/{task.id}/{index}", "at": time.time()})
        return super().serve_video(task, index)

    def _render(self, task, first_frame, last_frame):
        heavy = task.provider in self.heavy_providers
        if not (self.shared_clip or heavy):
            return super()._render(task, first_frame, last_frame)
        key = (task.provider, task.model)
        with self.clip_lock:
            if key not in self.clips:
                if heavy:
                    self._render_full_size(task)
                    print(f"heavy clip rendered: {task.provider} {task.model} {task.render['width']}×"
                          f"{task.render['height']}, {task.render['duration']} s, audio {task.render['audio']}",
                          flush=True)
                else:
                    super()._render(task, first_frame, last_frame)
                self.clips[key] = list(task.videos), task.render_error
                return
        videos, error = self.clips[key]
        task.videos.extend(videos[:1] * task.samples)
        task.render_error = error
        task.ready.set()

    def _render_full_size(self, task):
        """The clip as the request asked for it, whatever --tiny-videos says (first frames are ignored)."""
        try:
            path = self.media_dir / f"heavy-{task.provider}-{task.model}.mp4"
            video.render_video(path, **{**task.render, "seed": None})
            task.videos.extend([path] * task.samples)
        except Exception as error:  # noqa: BLE001 - as the stock render: the job fails with the reason
            task.render_error = f"Video generation failed: {error}"
        finally:
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
    parser.add_argument("--heavy-provider", action="append", default=[],
                        help="this provider's tasks deliver a full-size clip and are held until SIGUSR1")
    parser.add_argument("--media-dir", type=Path)
    options = parser.parse_args()
    media_dir = options.media_dir or Path(tempfile.mkdtemp(prefix="bench-sandbox-"))
    sandbox = TimedSandbox(job_seconds=options.job_seconds, media_dir=media_dir, tiny_videos=options.tiny_videos,
                           shared_clip=options.shared_clip, completion_spread=options.completion_spread,
                           heavy_providers=options.heavy_provider)
    server = BenchSandboxServer((options.host, options.port), sandbox)
    if options.nagle:
        server.RequestHandlerClass = NagleHandler
    signal.signal(signal.SIGTERM, stop_serving)
    signal.signal(signal.SIGUSR1, lambda signum, frame: sandbox.release_heavy())
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
