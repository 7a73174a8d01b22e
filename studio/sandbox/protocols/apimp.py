"""APIMP's generate gateway in the sandbox: submit a Veo job, poll its status, fetch the files.

    POST /api/generate/submit        {"model": "veo-3.1-generate-preview", "input": {"prompt": "…", …}}
    GET  /api/generate/status/<id>   {"code": 200, "data": {"task_id", "status", "progress", "created_time",
                                                             "error_message", "files": [{file_url, file_type}]}}

As strict as the gateway documents: only `model` and `input` at the top, only prompt, size, image,
images, duration, seconds and metadata inside `input`; Veo options in `input.metadata`, which wins over
`input.size`. Finished videos are listed with file_type "image", as the real gateway does.
"""

import re
import secrets
import string
from datetime import datetime, timezone

from studio.sandbox import video
from studio.sandbox.server import Response

PROVIDER = "apimp"
MODELS_WITH_4K = ("veo-3.1-generate-preview", "veo-3.1-fast-generate-preview")
MODELS = ("veo-3.0-generate-001", "veo-3.0-fast-generate-001", *MODELS_WITH_4K)
TOP_FIELDS = ("model", "input")
INPUT_FIELDS = ("prompt", "size", "image", "images", "duration", "seconds", "metadata")
ASPECT_RATIOS = ("16:9", "9:16")
RESOLUTIONS = ("720p", "1080p", "4k")
DURATIONS = (4, 6, 8)
PERSON_GENERATION = ("allow_all", "allow_adult", "dont_allow")
SEED_MAX = 4_294_967_295
# The VeoParameters the docs list; other metadata keys are passed upstream untouched ([key: string]: any).
METADATA_TYPES = {
    "durationSeconds": int,
    "aspectRatio": str,
    "resolution": str,
    "negativePrompt": str,
    "personGeneration": str,
    "storageUri": str,
    "compressionQuality": str,
    "resizeMode": str,
    "seed": int,
    "generateAudio": bool,
}
METADATA_CHOICES = {"aspectRatio": ASPECT_RATIOS, "resolution": RESOLUTIONS, "personGeneration": PERSON_GENERATION}
TYPE_NAMES = {str: "a string", int: "an integer", bool: "a boolean", dict: "an object", list: "an array"}
# The gateway has no cancel endpoint; "cancelled" is listed only so every sandbox state has an answer.
RAW_STATUS = {"queued": "not_started", "running": "running", "succeeded": "finished", "failed": "failed",
              "cancelled": "failed"}
# The sandbox core names its errors generically; the gateway has its own types.
ERROR_TYPES = {"unauthorized": "authentication_error", "insufficient_balance": "insufficient_quota",
               "rate_limited": "rate_limit_error", "internal_error": "server_error"}
TASK_ID_ALPHABET = string.ascii_letters + string.digits
SIZE_PATTERN = re.compile(r"([1-9][0-9]*)x([1-9][0-9]*)")


def error(status, message, kind):
    return Response(status, {"code": status, "error": {"message": message, "type": ERROR_TYPES.get(kind, kind)}})


class Refused(Exception):
    """A request the gateway answers with 400; the message names the field or rule."""


# Handlers ------------------------------------------------------------------------------------------


def submit(sandbox, request):
    try:
        job = read_submit(request.json)
    except Refused as refusal:
        return error(400, str(refusal), "invalid_request_error")
    width, height = video.dimensions_for(job["aspect_ratio"], job["resolution"])
    task = sandbox.create_task(
        PROVIDER,
        job["model"],
        request.json,
        render={"width": width, "height": height, "duration": job["duration"], "fps": 24,
                "audio": job["audio"], "lines": picture_lines(job), "seed": job["seed"]},
        first_frame=job["image"],
        task_id=new_task_id(),
    )
    data = {"task_id": task.id, "status": "not_started", "created_time": created_time(task), "error_message": None}
    return Response(200, {"code": 200, "data": data})


def status(sandbox, request):
    task = sandbox.task(request.match["task_id"], PROVIDER)
    if task is None:
        return error(404, "task not found", "not_found")
    state = task.state
    files = []
    if state == "succeeded":
        files = [{"file_url": url, "file_type": "image"} for url in sandbox.video_links(request, task)]
    data = {
        "task_id": task.id,
        "status": RAW_STATUS[state],
        "progress": task.progress,
        "created_time": created_time(task),
        "error_message": (task.error or "cancelled") if state in ("failed", "cancelled") else None,
        "files": files,
    }
    return Response(200, {"code": 200, "data": data})


ROUTES = [
    ("POST", r"^/api/generate/submit$", submit),
    ("GET", r"^/api/generate/status/(?P<task_id>[^/]+)$", status),
]


def new_task_id():
    return "task_" + "".join(secrets.choice(TASK_ID_ALPHABET) for _ in range(32))


def created_time(task):
    """ISO time without a zone, as the gateway writes it (UTC)."""
    return datetime.fromtimestamp(task.created_wall, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")


def picture_lines(job):
    audio = "audio on" if job["audio"] else "silent"
    lines = [job["prompt"], f"APIMP · {job['model']}",
             f"{job['aspect_ratio']} · {job['resolution']} · {job['duration']} s · {audio}",
             f"seed {job['seed']}" if job["seed"] is not None else "seed: random"]
    for key in ("negativePrompt", "personGeneration"):
        if key in job["metadata"]:
            lines.append(f"{key}: {job['metadata'][key]}")
    if job["image"]:
        lines.append("first frame: input image")
    return lines


# Reading a submit ---------------------------------------------------------------------------------


def read_submit(body):
    """The job a submit asks for, or Refused naming the first thing the gateway would reject."""
    if not isinstance(body, dict):
        raise Refused("request body must be a JSON object")
    reject_unknown(body, TOP_FIELDS, "")
    model = required(body, "model", str, "model")
    if model not in MODELS:
        raise Refused(f"model must be one of {', '.join(MODELS)}")
    job_input = required(body, "input", dict, "input")
    reject_unknown(job_input, INPUT_FIELDS, "input.")
    prompt = job_input.get("prompt")
    if prompt is None or isinstance(prompt, str) and not prompt.strip():
        raise Refused("input.prompt is required")
    expect(prompt, str, "input.prompt")
    metadata = read_metadata(job_input)
    job = {"model": model, "prompt": prompt, "metadata": metadata, "image": read_first_frame(job_input),
           "duration": read_duration(job_input, metadata), "audio": metadata.get("generateAudio", True),
           "seed": metadata.get("seed")}
    job["aspect_ratio"], job["resolution"], resolution_source = read_shape(job_input, metadata)
    check_rules(job, resolution_source)
    return job


def reject_unknown(mapping, allowed, prefix):
    for key in mapping:
        if key not in allowed:
            raise Refused(f"unknown field {prefix}{key}; allowed: {', '.join(allowed)}")


def required(mapping, key, kind, name):
    if mapping.get(key) is None:
        raise Refused(f"{name} is required")
    return expect(mapping[key], kind, name)


def expect(value, kind, name):
    if not isinstance(value, kind) or kind is int and isinstance(value, bool):
        raise Refused(f"{name} must be {TYPE_NAMES[kind]}")
    return value


def read_metadata(job_input):
    if "metadata" not in job_input:
        return {}
    metadata = expect(job_input["metadata"], dict, "input.metadata")
    for key, kind in METADATA_TYPES.items():
        if key in metadata:
            expect(metadata[key], kind, f"input.metadata.{key}")
    for key, choices in METADATA_CHOICES.items():
        if key in metadata and metadata[key] not in choices:
            raise Refused(f"input.metadata.{key} must be one of {', '.join(choices)}")
    if "seed" in metadata and not 0 <= metadata["seed"] <= SEED_MAX:
        raise Refused(f"input.metadata.seed must be between 0 and {SEED_MAX}")
    return metadata


def read_first_frame(job_input):
    """input.image, or the first of input.images (at most one): a URL the gateway fetches."""
    frames = []
    if "image" in job_input:
        frames.append(("input.image", expect(job_input["image"], str, "input.image")))
    if "images" in job_input:
        images = expect(job_input["images"], list, "input.images")
        if len(images) > 1:
            raise Refused(f"input.images takes at most 1 item, got {len(images)}")
        frames += [("input.images[0]", expect(url, str, "input.images[0]")) for url in images]
    if len({url for _, url in frames}) > 1:
        raise Refused("input.image and input.images name different first frames")
    for name, url in frames:
        if not url.startswith(("http://", "https://")):
            raise Refused(f"{name} must be an http(s) URL")
    return frames[0][1] if frames else None


def read_duration(job_input, metadata):
    """metadata.durationSeconds wins over input.duration, which is the same as input.seconds."""
    given = [(f"input.{key}", expect(job_input[key], int, f"input.{key}"))
             for key in ("duration", "seconds") if key in job_input]
    if len({seconds for _, seconds in given}) > 1:
        raise Refused("input.duration and input.seconds disagree")
    if "durationSeconds" in metadata:
        given.insert(0, ("input.metadata.durationSeconds", metadata["durationSeconds"]))
    name, seconds = given[0] if given else ("duration", 8)
    if seconds not in DURATIONS:
        raise Refused(f"{name} must be 4, 6 or 8 seconds, got {seconds}")
    return seconds


def read_shape(job_input, metadata):
    """(aspectRatio, resolution, where the resolution came from): metadata first, else inferred from input.size."""
    inferred = size_shape(job_input["size"]) if "size" in job_input else {}
    aspect = metadata.get("aspectRatio") or inferred.get("aspectRatio") or "16:9"
    if "resolution" in metadata:
        return aspect, metadata["resolution"], "input.metadata.resolution"
    if inferred:
        return aspect, inferred["resolution"], f"input.size {job_input['size']}"
    return aspect, "720p", "default resolution"


def size_shape(size):
    """The documented mapping: short side < 1920 -> 720p, [1920, 3840) -> 1080p, >= 3840 -> 4k; H > W -> 9:16."""
    match = SIZE_PATTERN.fullmatch(expect(size, str, "input.size"))
    if match is None:
        raise Refused("input.size must be WxH in pixels, e.g. 1280x720")
    width, height = int(match[1]), int(match[2])
    short_side = min(width, height)
    resolution = "720p" if short_side < 1920 else "1080p" if short_side < 3840 else "4k"
    return {"aspectRatio": "9:16" if height > width else "16:9", "resolution": resolution}


def check_rules(job, resolution_source):
    if job["resolution"] == "4k" and job["model"] not in MODELS_WITH_4K:
        raise Refused(f"resolution 4k ({resolution_source}) is only supported by {' and '.join(MODELS_WITH_4K)}")
    if job["resolution"] in ("1080p", "4k") and job["duration"] != 8:
        raise Refused(f"resolution {job['resolution']} requires a duration of 8 seconds, got {job['duration']}")
