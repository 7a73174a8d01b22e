"""The sandbox: one HTTP server that speaks all five provider protocols, for the demo and the tests.

Each protocol lives under its own prefix (`/modelmax/...`, `/qingbo/...`), so a sandbox account's
base URL is e.g. http://127.0.0.1:8001/qingbo. Keys: any Bearer key starting with `sk-sandbox-`
is known; one ending in `-empty` belongs to an account with no balance (402); anything else is 401.

Jobs move through the provider's status values over `job_seconds` and end with a real MP4.
Faults are queued through the control API and consumed deterministically, in order:

    POST /_sandbox/faults   {"kind": "rate_limit", "provider": "qingbo", "on": "submit", "times": 2,
                             "retry_after": 1}
    GET  /_sandbox/requests {"count": 3, "requests": [{provider, method, path, query, json}, ...]}
    POST /_sandbox/reset

Fault kinds: latency (seconds), rate_limit (retry_after, retry_after_date), server_error (status),
hang_after_accept (seconds: the job is created, the answer comes too late), malformed_json,
fail_job (message), never_finish, expire_link (status 403 or 404: the first video link is dead until
the status is fetched again).
"""

import importlib
import json
import logging
import re
import secrets
import tempfile
import threading
import time
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx

from studio.sandbox import video

logger = logging.getLogger("studio.sandbox")

PROTOCOLS = ["modelmax", "qingbo", "apimp", "veoquery", "uniall"]
KEY_PREFIX = "sk-sandbox-"
MALFORMED = object()


@dataclass
class Request:
    provider: str
    method: str
    path: str
    query: dict
    headers: dict
    body: bytes
    json: object = None
    match: dict = field(default_factory=dict)
    host_url: str = ""

    @property
    def key(self):
        auth = self.headers.get("authorization", "")
        return auth[7:].strip() if auth.lower().startswith("bearer ") else ""


@dataclass
class Response:
    status: int
    body: object = None
    headers: dict = field(default_factory=dict)
    content_type: str = "application/json"
    file: Path | None = None

    def encoded(self):
        if self.file is not None:
            return self.file.read_bytes()
        if self.body is None:
            return b""
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode()
        return json.dumps(self.body, ensure_ascii=False).encode()


@dataclass
class Fault:
    kind: str
    provider: str = ""
    on: str = "any"  # submit, status, result, download, any
    times: int = 1
    seconds: float = 0.0
    retry_after: float = 1.0
    retry_after_date: bool = False
    status: int = 0
    message: str = ""

    def matches(self, provider, step):
        return (not self.provider or self.provider == provider) and self.on in ("any", step)


@dataclass
class Task:
    """One generation job inside the sandbox."""

    id: str
    provider: str
    model: str
    body: dict
    render: dict
    job_seconds: float
    created: float = field(default_factory=time.monotonic)
    created_wall: float = field(default_factory=time.time)
    fail_message: str = ""
    never_finish: bool = False
    cancelled: bool = False
    samples: int = 1
    videos: list = field(default_factory=list)
    render_error: str = ""
    ready: threading.Event = field(default_factory=threading.Event)
    link_generation: int = 1
    dead_link_generation: int = 0
    dead_link_status: int = 404
    link_answers: int = 0
    result_fetches: int = 0
    extra: dict = field(default_factory=dict)

    def elapsed(self):
        return time.monotonic() - self.created

    @property
    def state(self):
        """queued, running, succeeded, failed or cancelled, from the time since submission."""
        if self.cancelled:
            return "cancelled"
        elapsed = self.elapsed()
        if elapsed < self.job_seconds * 0.25:
            return "queued"
        if self.never_finish or elapsed < self.job_seconds:
            return "running"
        if self.fail_message or self.render_error:
            return "failed"
        return "succeeded" if self.ready.is_set() else "running"

    @property
    def progress(self):
        state = self.state
        if state == "succeeded":
            return 100
        if state == "queued":
            return 0
        if state == "running":
            share = self.elapsed() / self.job_seconds if self.job_seconds else 1
            return max(1, min(95 if self.never_finish else 99, int(share * 100)))
        return 0

    @property
    def error(self):
        return self.fail_message or self.render_error


class Sandbox:
    """The state behind the server: tasks, faults, the request log, and where videos are kept."""

    def __init__(self, *, job_seconds=6.0, media_dir=None, tiny_videos=False):
        self.job_seconds = job_seconds
        # For load tests: every job delivers a tiny clip (160×90, 1 s), so rendering does not dominate.
        self.tiny_videos = tiny_videos
        self.media_dir = Path(media_dir or tempfile.mkdtemp(prefix="studio-sandbox-"))
        self.media_dir.mkdir(parents=True, exist_ok=True)
        self.lock = threading.RLock()
        self.protocols = {slug: importlib.import_module(f"studio.sandbox.protocols.{slug}") for slug in PROTOCOLS}
        self.routes = [
            (slug, method, re.compile(pattern), handler)
            for slug, module in self.protocols.items()
            for method, pattern, handler in module.ROUTES
        ]
        self.reset()

    def reset(self, job_seconds=None):
        with self.lock:
            self.tasks = {}
            self.faults = []
            self.requests = []
            self.pending_job_faults = []
            if job_seconds is not None:
                self.job_seconds = float(job_seconds)

    # Faults ----------------------------------------------------------------------------------------

    def add_fault(self, **spec):
        fault = Fault(**spec)
        with self.lock:
            if fault.kind in ("fail_job", "never_finish", "expire_link"):
                self.pending_job_faults.append(fault)
            else:
                self.faults.append(fault)
        return fault

    def take_fault(self, provider, step, kinds):
        with self.lock:
            for fault in self.faults:
                if fault.kind in kinds and fault.matches(provider, step) and fault.times > 0:
                    fault.times -= 1
                    if fault.times == 0:
                        self.faults.remove(fault)
                    return fault
        return None

    def take_job_fault(self, provider):
        with self.lock:
            for fault in self.pending_job_faults:
                if fault.matches(provider, "submit"):
                    fault.times -= 1
                    if fault.times <= 0:
                        self.pending_job_faults.remove(fault)
                    return fault
        return None

    # Tasks -----------------------------------------------------------------------------------------

    def create_task(self, provider, model, body, *, render, task_id=None, first_frame=None, last_frame=None, samples=1):
        """Record a job and start rendering its video(s) in the background.

        `first_frame` / `last_frame` are image bytes or a URL the sandbox fetches, as the real
        service would; a fetch that fails fails the job with the reason.
        """
        task = Task(
            id=task_id or secrets.token_hex(8),
            provider=provider,
            model=model,
            body=body,
            render=render,
            job_seconds=self.job_seconds,
            samples=samples,
        )
        fault = self.take_job_fault(provider)
        if fault and fault.kind == "fail_job":
            task.fail_message = fault.message or "The job failed upstream."
        elif fault and fault.kind == "never_finish":
            task.never_finish = True
        elif fault and fault.kind == "expire_link":
            task.dead_link_generation = 1
            task.dead_link_status = fault.status or 404
        with self.lock:
            self.tasks[task.id] = task
        threading.Thread(target=self._render, args=(task, first_frame, last_frame), daemon=True).start()
        return task

    def task(self, task_id, provider=None):
        with self.lock:
            task = self.tasks.get(task_id)
        if task is None or (provider and task.provider != provider):
            return None
        return task

    def _render(self, task, first_frame, last_frame):
        try:
            first = self._image_bytes(first_frame)
            last = self._image_bytes(last_frame)
            for index in range(task.samples):
                path = self.media_dir / f"{task.provider}-{task.id}-{index}.mp4"
                seed = task.render.get("seed")
                render = {**task.render, "seed": (seed or 0) + index if seed is not None else None}
                if self.tiny_videos:
                    render.update(width=160, height=90, duration=1.0)
                video.render_video(path, **render, first_frame=first, last_frame=last)
                task.videos.append(path)
        except Exception as error:  # a failed render is the job's failure, reported in the provider's words
            task.render_error = f"Video generation failed: {error}"
            logger.warning("sandbox render failed for %s: %s", task.id, error)
        finally:
            task.ready.set()

    @staticmethod
    def _image_bytes(source):
        if source is None or isinstance(source, bytes):
            return source
        response = httpx.get(source, timeout=10.0, follow_redirects=True)
        if response.status_code != 200:
            raise ValueError(f"could not fetch image {source[:80]}: HTTP {response.status_code}")
        return response.content

    def video_links(self, request, task):
        """Download links for a finished task's videos, for protocols that answer with URLs.

        When an expire_link fault hit this task, the links in the first answer are dead; the next
        status fetch hands out fresh ones, as a provider re-signs an expired URL.
        """
        task.link_answers += 1
        if task.dead_link_generation and task.link_answers > 1 and task.link_generation == task.dead_link_generation:
            task.link_generation += 1
        return [f"{request.host_url}/_files/{task.id}/{task.link_generation}/{i}.mp4" for i in range(len(task.videos))]

    def serve_video(self, task, index):
        if not task.ready.is_set() or task.state != "succeeded" or index >= len(task.videos):
            return Response(404, {"error": "video not ready"})
        return Response(200, file=task.videos[index], content_type="video/mp4")

    # The request log ---------------------------------------------------------------------------------

    def record(self, request):
        entry = {
            "at": time.time(),
            "provider": request.provider,
            "method": request.method,
            "path": request.path,
            "query": request.query,
            "json": None if request.json is MALFORMED else request.json,
            "authorization": "Bearer ***" if request.key else "",
        }
        with self.lock:
            self.requests.append(entry)

    def requests_for(self, provider=""):
        with self.lock:
            return [r for r in self.requests if not provider or r["provider"] == provider]


def key_status(key):
    """ok, empty (no balance) or unknown."""
    if not key.startswith(KEY_PREFIX):
        return "unknown"
    return "empty" if key.endswith("-empty") else "ok"


STEP_BY_METHOD = {"POST": "submit", "GET": "status"}


def dispatch(sandbox, request):
    """Route one request: control API, video files, or a protocol handler with faults applied."""
    if request.path.startswith("/_sandbox/"):
        return control(sandbox, request)
    if request.path.startswith("/_files/"):
        return serve_file(sandbox, request)
    provider, _, rest = request.path.lstrip("/").partition("/")
    module = sandbox.protocols.get(provider)
    if module is None:
        return Response(404, {"error": f"no protocol at /{provider}; try one of {', '.join(PROTOCOLS)}"})
    request.provider, request.path = provider, "/" + rest
    for slug, method, pattern, handler in sandbox.routes:
        if slug == provider and method == request.method and (match := pattern.match(request.path)):
            request.match = match.groupdict()
            sandbox.record(request)
            return run_handler(sandbox, module, handler, request)
    sandbox.record(request)
    return module.error(404, f"Not found: {request.method} {request.path}", "not_found")


def run_handler(sandbox, module, handler, request):
    step = getattr(handler, "step", STEP_BY_METHOD.get(request.method, "status"))
    if fault := sandbox.take_fault(request.provider, step, {"latency"}):
        time.sleep(fault.seconds)
    if fault := sandbox.take_fault(request.provider, step, {"rate_limit"}):
        retry_after = (formatdate(time.time() + fault.retry_after, usegmt=True)
                       if fault.retry_after_date else str(int(fault.retry_after)))
        response = module.error(429, fault.message or "Too many requests, slow down.", "rate_limited")
        response.headers["Retry-After"] = retry_after
        return response
    if fault := sandbox.take_fault(request.provider, step, {"server_error"}):
        return module.error(fault.status or 500, fault.message or "Upstream service error.", "internal_error")
    key = key_status(request.key)
    if key == "unknown":
        return module.error(401, "Invalid API key.", "unauthorized")
    if request.json is MALFORMED:
        return module.error(400, "Request body is not valid JSON.", "invalid_request_error")
    if key == "empty" and step == "submit":
        return module.error(402, "Insufficient balance.", "insufficient_balance")
    response = handler(sandbox, request)
    if fault := sandbox.take_fault(request.provider, step, {"hang_after_accept"}):
        time.sleep(fault.seconds or 5)
    if sandbox.take_fault(request.provider, step, {"malformed_json"}):
        return Response(200, b'{"status": "ok", "task_id": ', content_type="application/json")
    return response


def serve_file(sandbox, request):
    parts = request.path.strip("/").split("/")
    if len(parts) != 4 or not parts[3].endswith(".mp4"):
        return Response(404, {"error": "not found"})
    _, task_id, generation, name = parts
    task = sandbox.task(task_id)
    if task is None:
        return Response(404, {"error": "not found"})
    generation = int(generation) if generation.isdigit() else -1
    if generation != task.link_generation or generation == task.dead_link_generation:
        return Response(task.dead_link_status, {"error": "link expired"})
    index = name[:-4]
    return sandbox.serve_video(task, int(index) if index.isdigit() else 99)


def control(sandbox, request):
    action = request.path[len("/_sandbox/"):].strip("/")
    body = request.json if isinstance(request.json, dict) else {}
    if action == "reset" and request.method == "POST":
        sandbox.reset(job_seconds=body.get("job_seconds"))
        return Response(200, {"ok": True, "job_seconds": sandbox.job_seconds})
    if action == "faults" and request.method == "POST":
        try:
            fault = sandbox.add_fault(**body)
        except TypeError as error:
            return Response(400, {"error": str(error)})
        return Response(200, {"ok": True, "fault": fault.__dict__})
    if action == "requests" and request.method == "GET":
        provider = request.query.get("provider", "")
        entries = sandbox.requests_for(provider)
        return Response(200, {"count": len(entries), "requests": entries})
    if action == "tasks" and request.method == "GET":
        with sandbox.lock:
            tasks = [{"id": t.id, "provider": t.provider, "model": t.model, "state": t.state,
                      "result_fetches": t.result_fetches, "created_at": t.created_wall,
                      "completes_at": None if t.never_finish else t.created_wall + t.job_seconds}
                     for t in sandbox.tasks.values()]
        return Response(200, {"tasks": tasks})
    return Response(404, {"error": f"unknown control action {action}"})


class Handler(BaseHTTPRequestHandler):
    server_version = "StudioSandbox/1.0"
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; without this, Nagle's algorithm holds the body ~40 ms.
    disable_nagle_algorithm = True

    def log_message(self, format, *args):
        logger.debug("%s - %s", self.address_string(), format % args)

    def handle_any(self):
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        parsed = None
        if body:
            try:
                parsed = json.loads(body)
            except (json.JSONDecodeError, UnicodeDecodeError):
                parsed = MALFORMED
        request = Request(
            provider="",
            method=self.command,
            path=parts.path,
            query={k: v[0] for k, v in parse_qs(parts.query).items()},
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
            json=parsed,
            host_url=f"http://{self.headers.get('Host') or '%s:%s' % self.server.server_address[:2]}",
        )
        try:
            response = dispatch(self.server.sandbox, request)
        except Exception as error:
            logger.exception("sandbox handler crashed")
            response = Response(500, {"error": {"message": f"sandbox bug: {error}", "type": "internal_error"}})
        self.send(response)

    def send(self, response):
        payload = response.encoded()
        try:
            self.send_response(response.status)
            self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(len(payload)))
            for name, value in response.headers.items():
                self.send_header(name, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (e.g. its read timeout fired during a hang fault)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = handle_any


class SandboxServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address, sandbox):
        super().__init__(address, Handler)
        self.sandbox = sandbox

    @property
    def url(self):
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"


def start_in_thread(host="127.0.0.1", port=0, **options):
    """Start a sandbox on a background thread (for tests); returns the server, `server.url` tells where."""
    server = SandboxServer((host, port), Sandbox(**options))
    threading.Thread(target=server.serve_forever, name="sandbox", daemon=True).start()
    return server
