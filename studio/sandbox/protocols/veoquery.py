"""Sandbox double of the Veo reseller template: `POST /v1/video/create`, `GET /v1/video/query?id=…`.

Strict like the resellers: a closed set of fields, models and values, JSON booleans, image URLs in
`images[]` counted per model. Query answers carry a `detail` record shaped like the upstream one in
the seed, including its quirk: a completed task still holds failure text from an earlier retry.
"""

import secrets
import string
import time

from studio.sandbox import video
from studio.sandbox.server import Response

PROVIDER = "veoquery"

FIRST_ONLY, FRAMES, REFERENCES = "first frame", "first and last frame", "reference images"
MODELS = {
    "veo2": FIRST_ONLY,
    "veo2-fast": FIRST_ONLY,
    "veo2-fast-frames": FRAMES,
    "veo2-fast-components": REFERENCES,
    "veo2-pro": FIRST_ONLY,
    "veo3": FIRST_ONLY,
    "veo3-fast": FIRST_ONLY,
    "veo3-pro": FIRST_ONLY,
    "veo3-pro-frames": FRAMES,
    "veo3.1": FRAMES,
    "veo3.1-fast": FRAMES,
    "veo3.1-pro": FRAMES,
    "veo3.1-4k": FRAMES,
    "veo3.1-components": REFERENCES,
}
MAX_IMAGES = {FIRST_ONLY: 1, FRAMES: 2, REFERENCES: 3}
FIELDS = ("model", "prompt", "images", "enhance_prompt", "enable_upsample", "aspect_ratio")
ASPECT_RATIOS = ("16:9", "9:16")
SECONDS = 8
ID_CHARACTERS = string.ascii_letters + string.digits
RAW_STATUS = {"queued": "pending", "running": "processing", "succeeded": "completed", "failed": "failed",
              "cancelled": "failed"}
# What the seed's completed example still carries in detail.error_message.
STALE_ERROR = ("[403] Request failed with status code 403 | Message: reCAPTCHA evaluation failed | "
               "Code: 403 | Status: PERMISSION_DENIED")


def error(status, message, kind):
    return Response(status, {"error": {"message": message, "type": kind}})


class Invalid(ValueError):
    pass


def create(sandbox, request):
    body = request.json
    try:
        check_create(body)
    except Invalid as problem:
        return error(400, str(problem), "invalid_request_error")
    model, images = body["model"], body.get("images", [])
    frames = images if MODELS[model] != REFERENCES else []
    enhanced = enhanced_prompt(body)
    task = sandbox.create_task(
        PROVIDER, model, body, render=render_for(body, enhanced), task_id=new_task_id(model),
        first_frame=frames[0] if frames else None, last_frame=frames[1] if len(frames) > 1 else None,
    )
    task.extra["enhanced_prompt"] = enhanced
    return Response(200, {
        "id": task.id,
        "status": "pending",
        "status_update_time": milliseconds(task.created_wall),
        "enhanced_prompt": enhanced,
    })


def query(sandbox, request):
    task_id = request.query.get("id", "")
    if not task_id:
        return error(400, "The query parameter id is required.", "invalid_request_error")
    task = sandbox.task(task_id, PROVIDER)
    if task is None:
        return error(404, f"Task {task_id} not found.", "not_found")
    state = task.state
    video_url = sandbox.video_links(request, task)[0] if state == "succeeded" else None
    return Response(200, {
        "id": task.id,
        "status": RAW_STATUS[state],
        "video_url": video_url,
        "enhanced_prompt": task.extra["enhanced_prompt"],
        "status_update_time": updated_at(task, state),
        "detail": upstream_record(task, state, video_url),
    })


ROUTES = [
    ("POST", r"^/v1/video/create$", create),
    ("GET", r"^/v1/video/query$", query),
]


# Checking a create body ---------------------------------------------------------------------------


def check_create(body):
    if not isinstance(body, dict):
        raise Invalid("The request body must be a JSON object.")
    if unknown := [key for key in body if key not in FIELDS]:
        raise Invalid(f"Unknown field(s): {', '.join(unknown)}. Allowed fields: {', '.join(FIELDS)}.")
    model = body.get("model")
    if not isinstance(model, str) or model not in MODELS:
        raise Invalid(f"model must be one of {', '.join(MODELS)}; got {model!r}.")
    if not isinstance(body.get("prompt"), str) or not body["prompt"].strip():
        raise Invalid("prompt is required and must be a non-empty string.")
    for name in ("enhance_prompt", "enable_upsample"):
        if name in body and not isinstance(body[name], bool):
            raise Invalid(f"{name} must be a boolean (true or false); got {body[name]!r}.")
    if "enable_upsample" in body and model == "veo3.1-4k":
        raise Invalid("enable_upsample is not supported by veo3.1-4k: it already delivers 4k.")
    check_aspect_ratio(model, body)
    check_images(model, body.get("images", []))


def check_aspect_ratio(model, body):
    if "aspect_ratio" not in body:
        return
    if model.startswith("veo2"):
        raise Invalid(f"aspect_ratio is not supported by {model}: Veo 2 models are 16:9 only.")
    if body["aspect_ratio"] not in ASPECT_RATIOS:
        allowed = ", ".join(ASPECT_RATIOS)
        raise Invalid(f"aspect_ratio must be one of {allowed}; got {body['aspect_ratio']!r}.")


def check_images(model, images):
    if not isinstance(images, list):
        raise Invalid("images must be an array of image URLs.")
    for index, url in enumerate(images):
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise Invalid(f"images[{index}] must be an http(s) image URL; got {str(url)[:80]!r}.")
    kind, most = MODELS[model], MAX_IMAGES[MODELS[model]]
    if kind == REFERENCES and not 1 <= len(images) <= most:
        raise Invalid(f"{model} needs 1 to {most} reference images in images; got {len(images)}.")
    if len(images) > most:
        raise Invalid(f"{model} takes at most {most} image(s) ({kind}); got {len(images)}.")


# Building the job and its answers ------------------------------------------------------------------


def enhanced_prompt(body):
    return f"Cinematic, detailed: {body['prompt']}" if body.get("enhance_prompt") else body["prompt"]


def render_for(body, prompt):
    model, aspect = body["model"], body.get("aspect_ratio", "16:9")
    # veo3.1-4k is rendered at 1080p so sandbox jobs stay quick; the picture says so.
    resolution = "1080p" if body.get("enable_upsample") or model == "veo3.1-4k" else "720p"
    audio = not model.startswith("veo2")
    width, height = video.dimensions_for(aspect, resolution)
    lines = [
        prompt,
        f"veoquery · {model} · {MODELS[model]} model",
        f"{aspect} · {resolution} · {SECONDS} s · audio {'on' if audio else 'off'}",
        f"enhance_prompt={body.get('enhance_prompt', False)}",
        f"enable_upsample={body.get('enable_upsample', False)}",
        f"images: {len(body.get('images', []))}",
    ]
    if model == "veo3.1-4k":
        lines.append("4k requested: rendered at 1080p in the sandbox")
    return {"width": width, "height": height, "duration": SECONDS, "fps": 24, "audio": audio, "lines": lines,
            "seed": None}


def new_task_id(model):
    """Like the seed's `veo3.1-fast:1770350082-trii1OXZc3`."""
    suffix = "".join(secrets.choice(ID_CHARACTERS) for _ in range(10))
    return f"{model}:{int(time.time())}-{suffix}"


def milliseconds(seconds):
    return int(seconds * 1000)


def updated_at(task, state):
    if state in ("succeeded", "failed"):
        return milliseconds(task.created_wall + task.job_seconds)
    return milliseconds(time.time())


def upstream_record(task, state, video_url):
    """The reseller's record of the upstream job, as in the seed's `detail`."""
    raw, body = RAW_STATUS[state], task.body
    record = {
        "id": task.id,
        "req": body,
        "images": [{"url": url, "status": "completed"} for url in body.get("images", [])],
        "status": raw,
        "running": state == "running",
        "video_url": video_url,
        "created_at": milliseconds(task.created_wall),
        "completed_at": updated_at(task, state) if state in ("succeeded", "failed") else None,
        "error_message": None,
        "max_retries": 3,
        "retry_count": 0,
        "enhanced_prompt": task.extra["enhanced_prompt"],
        "status_update_time": updated_at(task, state),
    }
    if state == "succeeded":
        # The quirk the seed shows: a retry's failure text survives the eventual success.
        record.update(error_message=STALE_ERROR, retry_count=1,
                      video_generation_status="MEDIA_GENERATION_STATUS_SUCCESSFUL")
        if body.get("enable_upsample"):
            record.update(upsample_video_url=video_url, upsample_status="MEDIA_GENERATION_STATUS_SUCCESSFUL")
    elif state == "failed":
        record.update(error_message=task.error, video_generation_error=task.error,
                      video_generation_status="MEDIA_GENERATION_STATUS_FAILED")
    return record
