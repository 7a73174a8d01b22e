"""QWave (qingbo.dev) task API, as strict as the real service.

    POST /v1/tasks                  -> {task_id, model, action, status: "queued", created_at (ms),
                                        progress: 0}
    GET  /v1/tasks/{task_id}        -> {task_id, model, action, status, created_at, start_time, completed_at,
                                        progress, result: {images, videos: [{url, expires_at}]},
                                        error: {message}}
    POST /v1/tasks/{task_id}/cancel -> queued tasks only
    Errors: {"error": {"message": "...", "code": 400}}

A task created with a callback_url is POSTed to that URL once, as the status GET shows it, when it ends.
"""

import secrets
import threading
import time

import httpx

from studio.sandbox import video
from studio.sandbox.server import Response

MODELS = {"veo-3.1", "veo-3.1-fast", "veo-3.0"}
FAMILY_31 = {"veo-3.1", "veo-3.1-fast"}
RESOLUTIONS = {
    "veo-3.1": ("720p", "1080p", "4k"),
    "veo-3.1-fast": ("720p", "1080p", "4k"),
    "veo-3.0": ("720p", "1080p"),
}
ACTIONS = ("generate", "image2video", "first_last_frame", "reference")
# The image fields each action needs; any other image field is refused.
ACTION_IMAGES = {
    "generate": set(),
    "image2video": {"first_frame_image"},
    "first_last_frame": {"first_frame_image", "last_frame_image"},
    "reference": {"image_urls"},
}
IMAGE_FIELDS = {"first_frame_image", "last_frame_image", "image_urls"}
FIELDS = {"model", "action", "prompt", "aspect_ratio", "duration", "resolution", "negative_prompt", "seed",
          "callback_url", "extra"} | IMAGE_FIELDS
PERSON_GENERATION = ("allow_all", "allow_adult", "dont_allow")
SEED_MAX = 4_294_967_295
MAX_REFERENCES = 3
LINK_LIFETIME_MS = 24 * 3600 * 1000
RAW_STATUS = {"queued": "queued", "running": "processing", "succeeded": "completed", "failed": "failed",
              "cancelled": "cancelled"}
TERMINAL = {"succeeded", "failed", "cancelled"}
CALLBACK_TIMEOUT = 5.0


class Invalid(Exception):
    pass


def error(status, message, kind=""):
    """QWave's error body carries the HTTP status as `code`; it has no field for the kind of error."""
    return Response(status, {"error": {"message": message, "code": status}})


# Handlers ----------------------------------------------------------------------------------------


def create(sandbox, request):
    body = request.json
    try:
        check_task(body)
    except Invalid as problem:
        return error(400, str(problem))
    task = sandbox.create_task(
        "qingbo", body["model"], body,
        render=render_for(body),
        first_frame=body.get("first_frame_image"),
        last_frame=body.get("last_frame_image"),
        task_id=f"task-wave{int(time.time())}{secrets.token_hex(5)}",
    )
    if body.get("callback_url"):
        notify_when_done(sandbox, request, task, body["callback_url"])
    return Response(200, {
        "task_id": task.id,
        "model": task.model,
        "action": action_of(body),
        "status": "queued",
        "created_at": millis(task.created_wall),
        "progress": 0,
    })


def status(sandbox, request):
    task = sandbox.task(request.match["task_id"], "qingbo")
    if task is None:
        return error(404, f"Task not found: {request.match['task_id']}")
    return Response(200, task_view(sandbox, request, task))


def cancel(sandbox, request):
    task = sandbox.task(request.match["task_id"], "qingbo")
    if task is None:
        return error(404, f"Task not found: {request.match['task_id']}")
    if task.state != "queued":
        return error(400, f"Only queued tasks can be cancelled; this task is {RAW_STATUS[task.state]}.")
    task.cancelled = True
    return Response(200, task_view(sandbox, request, task))


cancel.step = "cancel"

ROUTES = [
    ("POST", r"^/v1/tasks$", create),
    ("GET", r"^/v1/tasks/(?P<task_id>[^/]+)$", status),
    ("POST", r"^/v1/tasks/(?P<task_id>[^/]+)/cancel$", cancel),
]


# Checking a request ------------------------------------------------------------------------------


def check_task(body):
    """Raise Invalid naming the first field or rule the body breaks."""
    if not isinstance(body, dict):
        raise Invalid("The request body must be a JSON object.")
    if unknown := sorted(set(body) - FIELDS):
        raise Invalid(f"Unknown field: {unknown[0]}.")
    for name in ("model", "prompt"):
        if name not in body:
            raise Invalid(f"{name} is required.")
    model = body["model"]
    if model not in MODELS:
        raise Invalid(f"model must be one of {', '.join(sorted(MODELS))}; got {model!r}.")
    if not isinstance(body["prompt"], str) or not body["prompt"].strip():
        raise Invalid("prompt must be a non-empty string.")
    check_choice(body, "action", ACTIONS)
    check_choice(body, "aspect_ratio", ("16:9", "9:16"))
    check_choice(body, "resolution", RESOLUTIONS[model])
    check_choice(body, "duration", (4, 6, 8))
    check_text(body, "negative_prompt")
    check_seed(body, model)
    check_callback(body)
    check_extra(body)
    check_rules(body)
    check_images(body, model)


def check_choice(body, name, choices):
    if name not in body:
        return
    value = body[name]
    if type(value) is not type(choices[0]) or value not in choices:
        allowed = ", ".join(str(c) for c in choices)
        raise Invalid(f"{name} must be one of {allowed} for {body['model']}; got {value!r}.")


def check_text(body, name):
    if name in body and not isinstance(body[name], str):
        raise Invalid(f"{name} must be a string.")


def check_seed(body, model):
    if "seed" not in body:
        return
    if model not in FAMILY_31:
        raise Invalid("seed is only supported by the VEO 3.1 series.")
    seed = body["seed"]
    if type(seed) is not int or not 0 <= seed <= SEED_MAX:
        raise Invalid(f"seed must be an integer between 0 and {SEED_MAX}.")


def check_callback(body):
    if "callback_url" in body and not is_url(body["callback_url"]):
        raise Invalid("callback_url must be an http(s) URL.")


def check_extra(body):
    if "extra" not in body:
        return
    extra = body["extra"]
    if not isinstance(extra, dict):
        raise Invalid("extra must be an object.")
    if unknown := sorted(set(extra) - {"personGeneration"}):
        raise Invalid(f"Unknown field: extra.{unknown[0]}.")
    if "personGeneration" in extra and extra["personGeneration"] not in PERSON_GENERATION:
        raise Invalid(f"extra.personGeneration must be one of {', '.join(PERSON_GENERATION)}.")


def check_rules(body):
    resolution, duration = body.get("resolution", "720p"), body.get("duration", 8)
    if resolution in ("1080p", "4k") and duration != 8:
        raise Invalid(f"resolution {resolution} requires duration 8.")


def check_images(body, model):
    action = action_of(body)
    given = IMAGE_FIELDS & set(body)
    needed = ACTION_IMAGES[action]
    if missing := sorted(needed - given):
        raise Invalid(f"action {action} requires {missing[0]}.")
    if extra := sorted(given - needed):
        raise Invalid(f"{extra[0]} is not used by action {action}.")
    if model not in FAMILY_31 and action not in ("generate", "image2video"):
        raise Invalid(f"action {action} is only supported by the VEO 3.1 series.")
    for name in ("first_frame_image", "last_frame_image"):
        if name in body and not is_url(body[name]):
            raise Invalid(f"{name} must be an http(s) URL.")
    if action == "reference":
        check_references(body)


def check_references(body):
    urls = body["image_urls"]
    if not isinstance(urls, list) or not 1 <= len(urls) <= MAX_REFERENCES:
        raise Invalid(f"image_urls must be a list of 1 to {MAX_REFERENCES} image URLs.")
    if not all(is_url(url) for url in urls):
        raise Invalid("image_urls must contain http(s) URLs.")
    if body.get("aspect_ratio", "16:9") != "16:9" or body.get("duration", 8) != 8:
        raise Invalid("Reference images require aspect_ratio 16:9 and duration 8.")


def is_url(value):
    return isinstance(value, str) and value.startswith(("http://", "https://"))


def action_of(body):
    return body.get("action", "generate")


# Answers -----------------------------------------------------------------------------------------


def render_for(body):
    aspect_ratio, resolution = body.get("aspect_ratio", "16:9"), body.get("resolution", "720p")
    duration = body.get("duration", 8)
    width, height = video.dimensions_for(aspect_ratio, resolution)
    person_generation = (body.get("extra") or {}).get("personGeneration", "allow_all")
    lines = [
        body["prompt"],
        f"QWave sandbox · {body['model']} · action {action_of(body)}",
        f"{aspect_ratio} · {resolution} · {duration} s · audio on · seed {body.get('seed', 'random')}",
        f"personGeneration {person_generation}",
    ]
    if body.get("negative_prompt"):
        lines.append(f"negative: {body['negative_prompt']}")
    if body.get("image_urls"):
        lines.append(f"reference images: {len(body['image_urls'])}")
    return {"width": width, "height": height, "duration": duration, "fps": 24, "audio": True,
            "lines": lines, "seed": body.get("seed")}


def task_view(sandbox, request, task):
    """The task as GET /v1/tasks/{id} shows it; times in milliseconds like created_at."""
    state = task.state
    started = task.created_wall + task.job_seconds * 0.25
    if state in TERMINAL:
        task.extra.setdefault("completed_at", time.time())
    videos = None
    if state == "succeeded":
        expires_at = millis(time.time()) + LINK_LIFETIME_MS
        videos = [{"url": url, "expires_at": expires_at} for url in sandbox.video_links(request, task)]
    return {
        "task_id": task.id,
        "model": task.model,
        "action": action_of(task.body),
        "status": RAW_STATUS[state],
        "created_at": millis(task.created_wall),
        "start_time": millis(started) if state not in ("queued", "cancelled") else None,
        "completed_at": millis(task.extra["completed_at"]) if state in TERMINAL else None,
        "progress": task.progress,
        "result": {"images": [], "videos": videos} if videos is not None else None,
        "error": {"message": task.error} if state == "failed" else None,
    }


def millis(seconds):
    return int(seconds * 1000)


def notify_when_done(sandbox, request, task, url):
    """POST the finished task to its callback_url once, from the background; failures are ignored."""

    def deliver():
        task.ready.wait(timeout=60)
        # A reset sandbox (the next test) has forgotten the task: its callback would reach the wrong studio.
        if task.state not in TERMINAL or sandbox.task(task.id) is not task:
            return
        try:
            httpx.post(url, json=task_view(sandbox, request, task), timeout=CALLBACK_TIMEOUT)
        except (httpx.HTTPError, httpx.InvalidURL):
            pass  # the real service delivers once and does not retry

    timer = threading.Timer(task.job_seconds, deliver)
    timer.daemon = True
    timer.start()
