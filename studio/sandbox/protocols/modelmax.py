"""ModelMax's queue API, as strict as the real service.

    POST /v1/queue/{model}                            submit: 202 {request_id, status, status_url, response_url}
    GET  /v1/queue/{model}/requests/{id}/status       the free status
    GET  /v1/queue/{model}/requests/{id}              the result (fetching it bills; counted per task)
    GET  /v1/queue/{model}/requests/{cid}/content/{i} the MP4 bytes, for the submitting account's key only

Request ids look like the documented one: Base64 of "gemini:<model>:<seconds>:<resolution>:<samples>:op-<n>".
Content ids are separate ids, so a client can only reach the bytes through the result's URLs.
"""

import base64
import binascii
import io
import secrets
from urllib.parse import quote

from PIL import Image, UnidentifiedImageError

from studio.sandbox.server import Response
from studio.sandbox.video import dimensions_for

PROVIDER = "modelmax"
VIDEO_MODELS = {"veo-3": "Veo 3", "veo-3-fast": "Veo 3 Fast"}
TOP_LEVEL_FIELDS = {"prompt", "parameters"}
PARAMETER_TYPES = {
    "aspect_ratio": str,
    "resolution": str,
    "duration_seconds": int,
    "generate_audio": bool,
    "sample_count": int,
    "negative_prompt": str,
    "image": str,
}
TYPE_NAMES = {str: "a string", int: "an integer", bool: "a boolean"}
ASPECT_RATIOS = ("16:9", "9:16")
RESOLUTIONS = ("720p", "1080p", "4k")
DURATIONS = (4, 6, 8)
RAW_STATUS = {
    "queued": "IN_QUEUE",
    "running": "IN_PROGRESS",
    "succeeded": "COMPLETED",
    "failed": "FAILED",
    "cancelled": "FAILED",
}
ERROR_TYPES = {400: "bad_request", 401: "unauthorized", 402: "insufficient_balance", 404: "not_found",
               429: "rate_limited", 502: "bad_gateway"}


class BadRequest(Exception):
    pass


def error(status, message, kind):
    """{"error": {"message": "…", "type": "bad_request"}}: the type follows the status, as ModelMax documents."""
    kind = ERROR_TYPES.get(status, "internal_error" if status >= 500 else kind)
    return Response(status, {"error": {"message": message, "type": kind}})


# Submit --------------------------------------------------------------------------------------------


def submit(sandbox, request):
    model = request.match["model"]
    try:
        prompt, parameters, image = read_submit(model, request.json)
    except BadRequest as refusal:
        return error(400, str(refusal), "bad_request")
    resolution = parameters.get("resolution", "720p")
    aspect_ratio = parameters.get("aspect_ratio", "16:9")
    seconds = parameters.get("duration_seconds", 8)
    samples = parameters.get("sample_count", 1)
    audio = parameters.get("generate_audio", True)
    width, height = dimensions_for(aspect_ratio, resolution)
    lines = [
        prompt,
        f"ModelMax · {VIDEO_MODELS[model]} ({model})",
        f"{aspect_ratio} · {resolution} · {seconds} s · audio {'on' if audio else 'off'} · {samples} sample(s)",
        f"negative: {parameters['negative_prompt']}" if parameters.get("negative_prompt") else "",
        "image-to-video (first frame)" if image else "text-to-video",
    ]
    task = sandbox.create_task(
        PROVIDER, model, request.json,
        render={"width": width, "height": height, "duration": seconds, "fps": 24, "audio": audio,
                "lines": [line for line in lines if line], "seed": None},
        first_frame=image, samples=samples, task_id=request_id(model, seconds, resolution, samples),
    )
    task.extra.update(content_id=secrets.token_hex(12), key=request.key, resolution=resolution, seconds=seconds,
                      audio=audio)
    queue_path = f"/v1/queue/{model}/requests/{quote(task.id, safe='')}"  # a task_id fault's id may need it
    return Response(202, {"request_id": task.id, "status": "IN_QUEUE",
                          "status_url": f"{queue_path}/status", "response_url": queue_path})


submit.step = "submit"


def read_submit(model, body):
    """(prompt, parameters, first-frame bytes) from a submit body, or BadRequest naming what is wrong."""
    if model not in VIDEO_MODELS:
        raise BadRequest(f"model '{model}' is not a video model; video models: {', '.join(VIDEO_MODELS)}")
    if not isinstance(body, dict):
        raise BadRequest("request body must be a JSON object")
    if unknown := sorted(set(body) - TOP_LEVEL_FIELDS):
        raise BadRequest(f"unknown field(s): {', '.join(unknown)}; allowed: prompt, parameters")
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise BadRequest("prompt is required")
    parameters = body.get("parameters", {})
    if not isinstance(parameters, dict):
        raise BadRequest("parameters must be an object")
    check_parameters(model, parameters)
    image = decode_image(parameters["image"]) if "image" in parameters else None
    return prompt, parameters, image


def check_parameters(model, parameters):
    for name, value in parameters.items():
        expected = PARAMETER_TYPES.get(name)
        if expected is None:
            raise BadRequest(f"unknown parameter '{name}'; allowed: {', '.join(PARAMETER_TYPES)}")
        if type(value) is not expected:  # a bool is not an integer here, nor 8.0
            raise BadRequest(f"parameters.{name} must be {TYPE_NAMES[expected]}")
    check_choice(parameters, "aspect_ratio", ASPECT_RATIOS)
    check_choice(parameters, "resolution", RESOLUTIONS)
    seconds = parameters.get("duration_seconds", 8)
    if seconds > 8:
        raise BadRequest(f"parameters.duration_seconds must be at most 8, got {seconds}")
    check_choice(parameters, "duration_seconds", DURATIONS)
    count = parameters.get("sample_count", 1)
    if not 1 <= count <= 4:
        raise BadRequest(f"parameters.sample_count must be between 1 and 4, got {count}")
    resolution = parameters.get("resolution", "720p")
    if resolution == "4k":
        raise BadRequest(f"resolution 4k is not supported by {model}; 4k needs Veo 3.1")
    if resolution == "1080p" and seconds != 8:
        raise BadRequest(f"resolution 1080p requires duration_seconds 8, got {seconds}")


def check_choice(parameters, name, allowed):
    if name in parameters and parameters[name] not in allowed:
        raise BadRequest(
            f"parameters.{name} must be one of {', '.join(str(a) for a in allowed)}, got {parameters[name]!r}"
        )


def decode_image(text):
    try:
        content = base64.b64decode(text, validate=True)
        Image.open(io.BytesIO(content)).verify()
    except (binascii.Error, ValueError, SyntaxError, UnidentifiedImageError, OSError):
        raise BadRequest("parameters.image must be a Base64-encoded image (PNG, JPEG or WebP)") from None
    return content


def request_id(model, seconds, resolution, samples):
    operation = f"gemini:{model}:{seconds}:{resolution}:{samples}:op-{secrets.randbelow(10**10)}"
    return base64.urlsafe_b64encode(operation.encode()).decode().rstrip("=")


# Status, result, content ------------------------------------------------------------------------------


def find_task(sandbox, request):
    task = sandbox.task(request.match["request_id"], PROVIDER)
    return task if task is not None and task.model == request.match["model"] else None


def not_found(request):
    return error(404, f"request {request.match['request_id']} not found", "not_found")


def status(sandbox, request):
    task = find_task(sandbox, request)
    if task is None:
        return not_found(request)
    raw = RAW_STATUS[task.state]
    body = {"request_id": task.id, "status": raw}
    if raw == "FAILED":
        body["error"] = task.error or "cancelled"
    return Response(200, body)


status.step = "status"


def result(sandbox, request):
    task = find_task(sandbox, request)
    if task is None:
        return not_found(request)
    task.result_fetches += 1
    raw = RAW_STATUS[task.state]
    body = {"request_id": task.id, "status": raw, "model": task.model}
    if raw == "FAILED":
        return Response(200, {**body, "error": task.error or "cancelled"})
    if raw != "COMPLETED":
        return error(400, f"request {task.id} is {raw}; fetch the result once its status is COMPLETED", "bad_request")
    content_path = f"/v1/queue/{task.model}/requests/{task.extra['content_id']}/content"
    usage = {"video_seconds": task.extra["seconds"] * len(task.videos),
             "video_resolution": task.extra["resolution"], "video_has_audio": task.extra["audio"]}
    return Response(200, {**body, "data": [{"url": f"{content_path}/{i}"} for i in range(len(task.videos))],
                          "usage": usage})


result.step = "result"


def content_task(sandbox, request):
    """The task whose videos a content URL serves, or None."""
    content_id = request.match["content_id"]
    with sandbox.lock:
        task = next((t for t in sandbox.tasks.values()
                     if t.provider == PROVIDER and t.extra.get("content_id") == content_id), None)
    return task if task is not None and task.model == request.match["model"] else None


def content(sandbox, request):
    task = content_task(sandbox, request)
    if task is None:
        return error(404, f"content {request.match['content_id']} not found", "not_found")
    if request.key != task.extra["key"]:
        return error(401, "This content belongs to another API key.", "unauthorized")
    return sandbox.serve_video(task, int(request.match["index"]))


content.step = "download"
content.task = content_task  # so the download log names the task even when a fault answers instead

QUEUE = r"/v1/queue/(?P<model>[^/]+)"
ROUTES = [
    ("POST", QUEUE + r"$", submit),
    ("GET", QUEUE + r"/requests/(?P<request_id>[^/]+)/status$", status),
    ("GET", QUEUE + r"/requests/(?P<request_id>[^/]+)$", result),
    ("GET", QUEUE + r"/requests/(?P<content_id>[^/]+)/content/(?P<index>\d+)$", content),
]
