"""The sandbox: one HTTP server that speaks all five provider protocols, for the demo and the tests.

Each protocol lives under its own prefix (`/modelmax/...`, `/qingbo/...`), so a sandbox account's
base URL is e.g. http://127.0.0.1:8001/qingbo. Keys: any Bearer key starting with `sk-sandbox-`
is known; one ending in `-empty` belongs to an account with no balance (402); anything else is 401.

Jobs move through the provider's status values over `job_seconds` and end with a real MP4, served from
`/_files/<task id>/<link generation>/<index>.mp4` (modelmax serves its own, behind the key).
Faults are queued through the control API and consumed deterministically, in order:

    POST /_sandbox/faults    {"kind": "rate_limit", "provider": "qingbo", "on": "submit", "times": 2,
                              "retry_after": 1}
    GET  /_sandbox/requests  {"count": 3, "requests": [{provider, method, path, query, json, status}, ...]}
    GET  /_sandbox/downloads {"count": 1, "downloads": [{at, provider, task_id, path, status, bytes}]}
    POST /_sandbox/reset

A fault matches a provider ("" for any) and a step, `on`: submit, status, result, download (video links
and modelmax's content route), cancel or any; each matching request uses up one of its `times`.

Fault kinds, in the order a request meets them:
  latency (seconds): the answer waits first.
  rate_limit (retry_after, retry_after_date), server_error (status, message), redirect_loop (status, default
    302: Location is the very URL asked for), echo_key (status, default 401: the protocol's error, whose
    message repeats the Bearer key as sent, in Base64, and as `Authorization: Bearer <key>`): answered
    instead of the real answer, before the key is even checked; whichever was queued first wins.
  hang_after_accept (seconds: the work is done, the answer comes too late).
  malformed_json; answer (status, default 200; body, a raw string sent as-is; headers; content_type);
    huge (size: {"status": "processing", "padding": "xxx…"}, exactly that many bytes, at least 39): replace
    the real answer after the work is done, so a submit still creates its task.
  drip (seconds; headers: true to drip the status line and headers too): whatever the answer is, its body
    goes out one byte every `seconds`, after a head that announces its full Content-Length.
Job faults, which mark the next task created for the provider: fail_job (message), never_finish,
expire_link (status 403 or 404: the first video link is dead until the status is fetched again), and
task_id (value: the task gets exactly that id, however odd; its routes take it percent-encoded as one
path segment).

The request log holds each call to a protocol as it arrives (the path without the prefix; the status once
answered; a body_excerpt of a body that is not JSON). Any other request, bar the control API and video
links, is logged too, with its full path, provider "" and "unrouted": true. The download log holds every
video fetch (links, and modelmax's content route, which is an API call as well) with the bytes sent.
"""

import base64
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
from urllib.parse import parse_qs, quote, unquote, urlsplit

import httpx

from studio.sandbox import video

logger = logging.getLogger("studio.sandbox")

PROTOCOLS = ["modelmax", "qingbo", "apimp", "veoquery", "uniall"]
KEY_PREFIX = "sk-sandbox-"
MALFORMED = object()
JOB_FAULTS = {"fail_job", "never_finish", "expire_link"}
FAULT_KINDS = JOB_FAULTS | {"latency", "rate_limit", "server_error", "redirect_loop", "echo_key",
                            "hang_after_accept", "malformed_json", "answer", "huge", "drip", "task_id"}
REFUSALS = {"rate_limit", "server_error", "redirect_loop", "echo_key"}
REPLACEMENTS = {"malformed_json", "answer", "huge"}
CHUNK = 64 * 1024
EXCERPT_BYTES = 300
HUGE_HEAD, HUGE_TAIL = b'{"status": "processing", "padding": "', b'"}'


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
    target: str = ""  # the path and query as received, still percent-encoded
    entry: dict | None = None  # its line in the request log
    download: dict | None = None  # its line in the download log

    @property
    def key(self):
        auth = self.headers.get("authorization", "")
        return auth[7:].strip() if auth.lower().startswith("bearer ") else ""

    @property
    def full_path(self):
        return urlsplit(self.target).path


@dataclass
class Response:
    status: int
    body: object = None
    headers: dict = field(default_factory=dict)
    content_type: str = "application/json"
    file: Path | None = None
    chunks: object = None  # an iterable of bytes, for a body too big to hold; `length` is its size
    length: int = 0
    drip: float = 0.0  # seconds between the body's bytes
    drip_headers: bool = False  # the status line and headers drip too

    def encoded(self):
        if self.body is None:
            return b""
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode()
        return json.dumps(self.body, ensure_ascii=False).encode()

    def stream(self):
        """(length, chunks): the body's size and its bytes in pieces, single bytes when it drips."""
        if self.file is not None:
            length, chunks = self.file.stat().st_size, file_chunks(self.file)
        elif self.chunks is not None:
            length, chunks = self.length, self.chunks
        else:
            payload = self.encoded()
            length, chunks = len(payload), [payload]
        return length, (single_bytes(chunks) if self.drip else chunks)


def file_chunks(path):
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            yield chunk


def single_bytes(chunks):
    for chunk in chunks:
        for index in range(len(chunk)):
            yield chunk[index:index + 1]


@dataclass
class Fault:
    kind: str
    provider: str = ""
    on: str = "any"  # submit, status, result, download, cancel, any
    times: int = 1
    seconds: float = 0.0
    retry_after: float = 1.0
    retry_after_date: bool = False
    status: int = 0
    message: str = ""
    body: str = ""  # answer: the raw body
    headers: dict | bool | None = None  # answer: extra headers; drip: true to drip the head as well
    content_type: str = "application/json"  # answer
    size: int = 0  # huge: the body's length in bytes
    value: str = ""  # task_id: the id the next task gets

    def __post_init__(self):
        # A misspelt kind would otherwise sit in the queue and never fire.
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; kinds: {', '.join(sorted(FAULT_KINDS))}")

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
    """The state behind the server: tasks, faults, the request and download logs, where videos are kept."""

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
            self.downloads = []
            self.pending_job_faults = []
            if job_seconds is not None:
                self.job_seconds = float(job_seconds)

    def route(self, provider, method, path):
        """(handler, path parameters percent-decoded) for a call under a protocol's prefix, or None."""
        for slug, route_method, pattern, handler in self.routes:
            if slug == provider and route_method == method and (match := pattern.match(path)):
                return handler, {name: unquote(value) for name, value in match.groupdict().items()}
        return None

    # Faults ----------------------------------------------------------------------------------------

    def add_fault(self, **spec):
        fault = Fault(**spec)
        with self.lock:
            if fault.kind in JOB_FAULTS:
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
        if fault := self.take_fault(provider, "submit", {"task_id"}):
            task_id = fault.value
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
                # A task_id fault can give any id, slashes included: quoted, it stays one file name.
                path = self.media_dir / f"{task.provider}-{quote(task.id, safe='')}-{index}.mp4"
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
        folder = f"{request.host_url}/_files/{quote(task.id, safe='')}/{task.link_generation}"
        return [f"{folder}/{i}.mp4" for i in range(len(task.videos))]

    def serve_video(self, task, index):
        if not task.ready.is_set() or task.state != "succeeded" or index >= len(task.videos):
            return Response(404, {"error": "video not ready"})
        return Response(200, file=task.videos[index], content_type="video/mp4")

    # The request and download logs -------------------------------------------------------------------

    def record(self, request, *, unrouted=False):
        """Log a call as it arrives, so one that hangs is seen; its status is filled in once answered."""
        entry = {
            "at": time.time(),
            "provider": request.provider,
            "method": request.method,
            "path": request.path,
            "query": request.query,
            "json": None if request.json is MALFORMED else request.json,
            "authorization": "Bearer ***" if request.key else "",
            "status": None,
        }
        if unrouted:
            entry["unrouted"] = True
        if request.json is MALFORMED:
            entry["body_excerpt"] = request.body[:EXCERPT_BYTES].decode(errors="replace")
        request.entry = entry
        with self.lock:
            self.requests.append(entry)

    def record_download(self, request, task_id):
        request.download = {"at": time.time(), "provider": request.provider, "task_id": task_id,
                            "path": request.full_path, "status": None, "bytes": 0}
        with self.lock:
            self.downloads.append(request.download)

    def answered(self, request, status):
        """Note the status finally answered on the request's log lines."""
        with self.lock:
            for entry in (request.entry, request.download):
                if entry is not None:
                    entry["status"] = status

    def requests_for(self, provider=""):
        """The calls received for one provider, or every call (the unrouted ones too) for ""."""
        with self.lock:
            return [r for r in self.requests if not provider or r["provider"] == provider]

    def downloads_for(self, provider=""):
        with self.lock:
            return [d for d in self.downloads if not provider or d["provider"] == provider]


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
    route = sandbox.route(provider, request.method, "/" + rest) if module else None
    if route is None:
        sandbox.record(request, unrouted=True)
        if module is None:
            return Response(404, {"error": f"no protocol at /{provider}; try one of {', '.join(PROTOCOLS)}"})
        return module.error(404, f"Not found: {request.method} /{rest}", "not_found")
    handler, request.match = route
    request.provider, request.path = provider, "/" + rest
    sandbox.record(request)
    return run_handler(sandbox, module, handler, request)


def run_handler(sandbox, module, handler, request):
    """A protocol call. A download route names its task for the log: `handler.task(sandbox, request)`."""
    step = getattr(handler, "step", STEP_BY_METHOD.get(request.method, "status"))
    if step == "download":
        task = handler.task(sandbox, request)
        sandbox.record_download(request, task.id if task else "")
    return with_faults(sandbox, request, step, module.error,
                       gate=lambda: refused_caller(module, request, step),
                       respond=lambda: handler(sandbox, request))


def refused_caller(module, request, step):
    """The protocol's own refusal of the key or the body, or None."""
    key = key_status(request.key)
    if key == "unknown":
        return module.error(401, "Invalid API key.", "unauthorized")
    if request.json is MALFORMED:
        return module.error(400, "Request body is not valid JSON.", "invalid_request_error")
    if key == "empty" and step == "submit":
        return module.error(402, "Insufficient balance.", "insufficient_balance")
    return None


def serve_file(sandbox, request):
    """A video link; the download faults of the task's provider apply, as to modelmax's content route."""
    parts = request.path.strip("/").split("/")
    task_id = unquote(parts[1]) if len(parts) > 1 else ""
    task = sandbox.task(task_id) if len(parts) == 4 and parts[3].endswith(".mp4") else None
    request.provider = task.provider if task else ""
    sandbox.record_download(request, task_id)
    if task is None:
        return Response(404, {"error": "not found"})
    return with_faults(sandbox, request, "download", file_error,
                       respond=lambda: linked_video(sandbox, task, parts))


def linked_video(sandbox, task, parts):
    _, _, generation, name = parts
    generation = int(generation) if generation.isdigit() else -1
    if generation != task.link_generation or generation == task.dead_link_generation:
        return Response(task.dead_link_status, {"error": "link expired"})
    index = name[:-4]
    return sandbox.serve_video(task, int(index) if index.isdigit() else 99)


def file_error(status, message, kind=""):
    """A file host's error: it knows nothing of the provider's error shape."""
    return Response(status, {"error": message})


# Faults -----------------------------------------------------------------------------------------------


def with_faults(sandbox, request, step, error, *, respond, gate=lambda: None):
    """The answer to one provider call, with the faults queued for its provider and step.

    `error(status, message, kind)` words an error as the protocol does; `gate()` is the protocol's own
    refusal of the caller, if any; `respond()` does the work and gives the real answer.
    """
    provider = request.provider
    if fault := sandbox.take_fault(provider, step, {"latency"}):
        time.sleep(fault.seconds)
    response = refusal(sandbox, request, step, error) or gate()
    if response is None:
        response = after_work(sandbox, provider, step, respond())
    if fault := sandbox.take_fault(provider, step, {"drip"}):
        response.drip, response.drip_headers = fault.seconds, bool(fault.headers)
    return response


def refusal(sandbox, request, step, error):
    """An answer given instead of doing the work, or None."""
    fault = sandbox.take_fault(request.provider, step, REFUSALS)
    if fault is None:
        return None
    if fault.kind == "rate_limit":
        return rate_limited(fault, error)
    if fault.kind == "server_error":
        return error(fault.status or 500, fault.message or "Upstream service error.", "internal_error")
    if fault.kind == "redirect_loop":
        return Response(fault.status or 302, headers={"Location": request.host_url + request.target})
    return echoed_key(fault, request, error)


def rate_limited(fault, error):
    retry_after = (formatdate(time.time() + fault.retry_after, usegmt=True)
                   if fault.retry_after_date else str(int(fault.retry_after)))
    response = error(429, fault.message or "Too many requests, slow down.", "rate_limited")
    response.headers["Retry-After"] = retry_after
    return response


def echoed_key(fault, request, error):
    """An error that leaks the caller's key, as careless services do: a client must not log or show it."""
    key = request.key
    in_base64 = base64.b64encode(key.encode()).decode()
    message = (f"{fault.message or 'Invalid API key'}: {key} (base64 {in_base64}); "
               f"received header Authorization: Bearer {key}")
    return error(fault.status or 401, message, "unauthorized")


def after_work(sandbox, provider, step, response):
    """The real answer, unless a fault makes it late or puts another in its place."""
    if fault := sandbox.take_fault(provider, step, {"hang_after_accept"}):
        time.sleep(fault.seconds or 5)
    fault = sandbox.take_fault(provider, step, REPLACEMENTS)
    if fault is None:
        return response
    if fault.kind == "malformed_json":
        return Response(200, b'{"status": "ok", "task_id": ')
    if fault.kind == "answer":
        return Response(fault.status or 200, fault.body.encode(), headers=dict(fault.headers or {}),
                        content_type=fault.content_type)
    return huge_answer(fault.size)


def huge_answer(size):
    """A valid JSON body of `size` bytes, made while it is sent rather than held in memory."""
    padding = max(0, size - len(HUGE_HEAD) - len(HUGE_TAIL))
    return Response(200, chunks=padded_body(padding), length=len(HUGE_HEAD) + padding + len(HUGE_TAIL))


def padded_body(padding):
    yield HUGE_HEAD
    block = b"x" * CHUNK
    for _ in range(padding // CHUNK):
        yield block
    yield block[:padding % CHUNK]
    yield HUGE_TAIL


# Control API --------------------------------------------------------------------------------------------


def control(sandbox, request):
    action = request.path[len("/_sandbox/"):].strip("/")
    body = request.json if isinstance(request.json, dict) else {}
    if action == "reset" and request.method == "POST":
        sandbox.reset(job_seconds=body.get("job_seconds"))
        return Response(200, {"ok": True, "job_seconds": sandbox.job_seconds})
    if action == "faults" and request.method == "POST":
        try:
            fault = sandbox.add_fault(**body)
        except (TypeError, ValueError) as error:
            return Response(400, {"error": str(error)})
        return Response(200, {"ok": True, "fault": fault.__dict__})
    if action == "requests" and request.method == "GET":
        entries = sandbox.requests_for(request.query.get("provider", ""))
        return Response(200, {"count": len(entries), "requests": entries})
    if action == "downloads" and request.method == "GET":
        entries = sandbox.downloads_for(request.query.get("provider", ""))
        return Response(200, {"count": len(entries), "downloads": entries})
    if action == "tasks" and request.method == "GET":
        with sandbox.lock:
            tasks = [{"id": t.id, "provider": t.provider, "model": t.model, "state": t.state,
                      "result_fetches": t.result_fetches, "created_at": t.created_wall,
                      "completes_at": None if t.never_finish else t.created_wall + t.job_seconds}
                     for t in sandbox.tasks.values()]
        return Response(200, {"tasks": tasks})
    return Response(404, {"error": f"unknown control action {action}"})


# The HTTP server -----------------------------------------------------------------------------------------


class Dripping:
    """Stands in for the socket's writer: each byte goes out on its own, `seconds` after the one before."""

    def __init__(self, writer, seconds):
        self.writer, self.seconds, self.started = writer, seconds, False

    def write(self, data):
        for index in range(len(data)):
            if self.started:
                time.sleep(self.seconds)
            self.started = True
            self.writer.write(data[index:index + 1])
        return len(data)

    def flush(self):
        self.writer.flush()


class Handler(BaseHTTPRequestHandler):
    server_version = "StudioSandbox/1.0"
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; without this, Nagle's algorithm holds the body ~40 ms.
    disable_nagle_algorithm = True

    def log_message(self, format, *args):
        logger.debug("%s - %s", self.address_string(), format % args)

    def handle(self):
        try:
            super().handle()
        except ConnectionError:
            pass  # the client hung up between requests, e.g. on an answer it stopped reading

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
            target=self.path,
        )
        sandbox = self.server.sandbox
        try:
            response = dispatch(sandbox, request)
        except Exception as error:
            logger.exception("sandbox handler crashed")
            response = Response(500, {"error": {"message": f"sandbox bug: {error}", "type": "internal_error"}})
        sandbox.answered(request, response.status)
        self.send(response, request.download)

    def send(self, response, download=None):
        """Write the answer (dripping, if a fault says so); a download's log line counts the bytes."""
        length, chunks = response.stream()
        socket_writer = self.wfile
        body_writer = Dripping(socket_writer, response.drip) if response.drip else socket_writer
        try:
            if response.drip_headers:
                self.wfile = body_writer  # the head is written through self.wfile by end_headers()
            self.send_response(response.status)
            self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(length))
            for name, value in response.headers.items():
                self.send_header(name, value)
            self.end_headers()
            if self.command != "HEAD":
                for chunk in chunks:
                    # Counted before it goes out, so the log never shows less than a client has received.
                    if download is not None:
                        download["bytes"] += len(chunk)
                    body_writer.write(chunk)
        except ConnectionError:
            # The client gave up (its read timeout fired during a hang or a drip): the exchange just ends.
            self.close_connection = True
        finally:
            self.wfile = socket_writer

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
