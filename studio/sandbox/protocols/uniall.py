"""UniAll in the sandbox: New-API's `/v1/video/generations` in front of Vidu Q3.

Status answers come in the flat, OpenAI-video-like shape; a Bearer key containing "-newapi" gets
New-API's own task wrapper instead ({"code": "success", "data": {"status": "SUCCESS", ...}}), so both
shapes the studio must read can be exercised.
"""

import re
import secrets

from studio.sandbox import video
from studio.sandbox.server import Response

MODELS = {
    "viduq3p-540p", "viduq3p-720p", "viduq3p-1080p",
    "viduq3t-540p", "viduq3t-720p", "viduq3t-1080p",
    "viduq3p-1080p-offpeak", "viduq3p-mix-720p",
}
FIELDS = {
    "model", "prompt", "image", "last_image", "reference_image_urls",
    "aspect_ratio", "duration", "extra_body",
}
EXTRA_FIELDS = {"audio", "seed", "bgm"}
ASPECT_RATIOS = ("16:9", "9:16", "1:1")
MIN_DURATION, MAX_DURATION, DEFAULT_DURATION = 1, 16, 5
MAX_REFERENCES = 4
SEED_MAX = 2**32 - 1

FLAT_STATUS = {"queued": "queued", "running": "in_progress", "succeeded": "completed",
               "failed": "failed", "cancelled": "failed"}
NEW_API_STATUS = {"queued": "QUEUED", "running": "IN_PROGRESS", "succeeded": "SUCCESS",
                  "failed": "FAILURE", "cancelled": "FAILURE"}


class Invalid(Exception):
    pass


def error(status, message, kind):
    return Response(status, {"error": {"message": message, "type": kind, "code": kind}})


def new_api_error(status, code):
    return Response(status, {"code": code, "message": code, "data": None})


def uses_new_api_shape(request):
    return "-newapi" in request.key


# Submit ----------------------------------------------------------------------------------------------


def submit(sandbox, request):
    try:
        job = checked(request.json)
    except Invalid as problem:
        return error(400, str(problem), "invalid_request_error")
    task = sandbox.create_task(
        "uniall", job["model"], request.json, render=render_settings(job),
        first_frame=job["image"], last_frame=job["last_image"], task_id=f"task_{secrets.token_hex(12)}",
    )
    task.extra["action"] = job["action"]
    return Response(200, {
        "id": task.id, "task_id": task.id, "object": "video.generation.job", "model": task.model,
        "status": "queued", "progress": 0, "created_at": int(task.created_wall),
    })


def checked(body):
    """The submit body with defaults filled in, or Invalid naming the field or rule it breaks."""
    if not isinstance(body, dict):
        raise Invalid("The request body must be a JSON object")
    if unknown := sorted(set(body) - FIELDS):
        raise Invalid(f"Unknown field(s): {', '.join(unknown)}")
    model = body.get("model")
    if not isinstance(model, str) or model not in MODELS:
        raise Invalid(f"model {model!r} is not supported; use one of {', '.join(sorted(MODELS))}")
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise Invalid("prompt is required and must be a non-empty string")
    job = {"model": model, "prompt": prompt, **images(body, model), **extra(body.get("extra_body"))}
    job["aspect_ratio"] = body.get("aspect_ratio", "16:9")
    if job["aspect_ratio"] not in ASPECT_RATIOS:
        raise Invalid(f"aspect_ratio must be one of {', '.join(ASPECT_RATIOS)}")
    job["duration"] = duration(body.get("duration", DEFAULT_DURATION))
    return job


def images(body, model):
    image, last_image = body.get("image"), body.get("last_image")
    references = body.get("reference_image_urls")
    for name, value in (("image", image), ("last_image", last_image)):
        if value is not None and not is_url(value):
            raise Invalid(f"{name} must be an http(s) image URL")
    if last_image is not None and image is None:
        raise Invalid("last_image requires image")
    if "-mix-" not in model:
        if references is not None:
            raise Invalid(f"reference_image_urls is only supported on mix models, not {model}")
        action = "textGenerate" if image is None else "firstTailGenerate" if last_image else "generate"
        return {"image": image, "last_image": last_image, "references": [], "action": action}
    if image is not None or last_image is not None:
        raise Invalid(f"{model} takes reference_image_urls, not image or last_image")
    if not isinstance(references, list) or not 1 <= len(references) <= MAX_REFERENCES:
        raise Invalid(f"{model} needs reference_image_urls: a list of 1–{MAX_REFERENCES} image URLs")
    if not all(is_url(url) for url in references):
        raise Invalid("reference_image_urls must hold http(s) image URLs")
    return {"image": None, "last_image": None, "references": references, "action": "referenceGenerate"}


def extra(extra_body):
    if extra_body is None:
        extra_body = {}
    if not isinstance(extra_body, dict):
        raise Invalid("extra_body must be an object")
    if unknown := sorted(set(extra_body) - EXTRA_FIELDS):
        raise Invalid(f"Unknown extra_body field(s): {', '.join(unknown)}")
    audio, seed, bgm = extra_body.get("audio", True), extra_body.get("seed"), extra_body.get("bgm", False)
    if not isinstance(audio, bool):
        raise Invalid("extra_body.audio must be true or false")
    if seed is not None and (not is_int(seed) or not 0 <= seed <= SEED_MAX):
        raise Invalid(f"extra_body.seed must be an integer from 0 to {SEED_MAX}")
    if not isinstance(bgm, bool):
        raise Invalid("extra_body.bgm must be true or false")
    if bgm:
        raise Invalid("bgm is not supported on Vidu Q3")
    return {"audio": audio, "seed": seed}


def duration(value):
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if not is_int(value) or not MIN_DURATION <= value <= MAX_DURATION:
        raise Invalid(f"duration must be a whole number of seconds from {MIN_DURATION} to {MAX_DURATION}")
    return value


def is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def is_url(value):
    return isinstance(value, str) and value.startswith(("http://", "https://"))


def render_settings(job):
    resolution = re.search(r"(540p|720p|1080p)", job["model"]).group(1)
    width, height = video.dimensions_for(job["aspect_ratio"], resolution)
    mode = {
        "textGenerate": "text-to-video",
        "generate": "image-to-video",
        "firstTailGenerate": "first/last frame",
        "referenceGenerate": f"reference mix ({len(job['references'])} images)",
    }[job["action"]]
    lines = [
        job["prompt"],
        f"UniAll · {job['model']} · {mode}",
        f"{width}x{height} · {job['aspect_ratio']} · {job['duration']} s",
        f"audio {'on' if job['audio'] else 'off'}",
        f"seed {job['seed']}" if job["seed"] is not None else "seed: random",
    ]
    return {"width": width, "height": height, "duration": job["duration"], "fps": 24,
            "audio": job["audio"], "lines": lines, "seed": job["seed"]}


# Status ----------------------------------------------------------------------------------------------


def status(sandbox, request):
    task = sandbox.task(request.match["task_id"], "uniall")
    if task is None:
        if uses_new_api_shape(request):
            return new_api_error(404, "task_not_exist")
        return error(404, f"Task {request.match['task_id']} not found.", "not_found")
    # The state moves with the clock: read it once so the status and the links agree.
    state, progress = task.state, task.progress
    urls = sandbox.video_links(request, task) if state == "succeeded" else []
    if uses_new_api_shape(request):
        return Response(200, {"code": "success", "message": "", "data": new_api_job(task, state, progress, urls)})
    return Response(200, flat_job(task, state, progress, urls))


def flat_job(task, state, progress, urls):
    failed = state in ("failed", "cancelled")
    return {
        "id": task.id, "task_id": task.id, "object": "video.generation.job", "model": task.model,
        "status": FLAT_STATUS[state], "progress": progress,
        "video_url": urls[0] if urls else None,
        "result": {"outputs": urls, "video_url": urls[0] if urls else None},
        "error": {"message": task.error or "cancelled", "code": "generation_failed"} if failed else None,
        "created_at": int(task.created_wall), "thumbnail_url": None,
    }


def new_api_job(task, state, progress, urls):
    return {
        "task_id": task.id, "platform": "vidu", "action": task.extra.get("action", "generate"),
        "status": NEW_API_STATUS[state], "progress": f"{progress}%",
        "result_url": urls[0] if urls else "", "fail_reason": task.error,
        "submit_time": int(task.created_wall),
    }


ROUTES = [
    ("POST", r"^/v1/video/generations/?$", submit),
    ("GET", r"^/v1/video/generations/(?P<task_id>[^/]+)/?$", status),
]
