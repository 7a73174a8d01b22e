"""UniAll: a New-API gateway in front of Vidu Q3, speaking `/v1/video/generations`.

Submit (from UniAll's page "创建视频任务"):

    POST /v1/video/generations
    {"model": "viduq3p-720p", "prompt": "电影感航拍镜头,日出时分掠过未来海滨城市,光线柔和,镜头缓慢推进。",
     "aspect_ratio": "16:9", "duration": 5, "extra_body": {"audio": false, "seed": 42, "bgm": false}}

    {"id": "task_xxxxx", "task_id": "task_xxxxx", "object": "video.generation.job", "model": "viduq3p-540p",
     "status": "queued", "progress": 0, "created_at": 1774507626}

The mode follows from the fields: `image` alone is image-to-video, `image` + `last_image` is first/last
frame, `reference_image_urls` (mix models) is reference-to-video. We never send `bgm`: Vidu Q3 does not
support it, so the seed's `"bgm": false` is left out.

Query (not on UniAll's page; inferred from New-API and its sibling pages), in either of two shapes:

    GET /v1/video/generations/{task_id}
    {"id": "task_xxxxx", "task_id": "task_xxxxx", "object": "video.generation.job", "model": "viduq3p-540p",
     "status": "completed", "progress": 100, "video_url": "https://…/video.mp4",
     "result": {"outputs": ["https://…/video.mp4"], "video_url": "https://…/video.mp4"},
     "error": null, "created_at": 1774507626, "thumbnail_url": "https://…/cover.jpg"}

    {"code": "success", "message": "", "data": {"task_id": "task_xxxxx", "action": "textGenerate",
     "status": "SUCCESS", "progress": "100%", "result_url": "https://…/video.mp4", "fail_reason": ""}}

Errors are OpenAI-like: {"error": {"message": "...", "type": "...", "code": "..."}}; New-API's own task
errors are {"code": "task_not_exist", "message": "...", "data": null}.
"""

from studio.providers.adapter import (
    ERROR_MESSAGE_CHARS,
    ProviderAdapter,
    excerpt,
    identifier,
    path_segment,
    percent,
    text,
    unix_seconds,
)
from studio.providers.base import HttpCall, ProviderError, State, StatusUpdate, Submitted
from studio.providers.uniall.catalog import MODELS

GENERATIONS_PATH = "v1/video/generations"
NEW_API_SUCCESS = "success"
EXTRA_BODY_PARAMS = ("audio", "seed")


class UniAllAdapter(ProviderAdapter):
    slug = "uniall"
    label = "UniAll"
    image_transport = "url"
    status_table = {
        # The flat, OpenAI-video-like shape.
        "queued": State.QUEUED,
        "in_progress": State.RUNNING,
        "completed": State.SUCCEEDED,
        "failed": State.FAILED,
        # New-API's task wrapper.
        "NOT_START": State.QUEUED,
        "SUBMITTED": State.QUEUED,
        "QUEUED": State.QUEUED,
        "IN_PROGRESS": State.RUNNING,
        "SUCCESS": State.SUCCEEDED,
        "FAILURE": State.FAILED,
    }
    download_needs_auth = False
    # Vidu Q3 takes a minute or more; an early first poll would only see "queued".
    first_poll_seconds = 15
    poll_seconds = 5
    models = MODELS

    # Requests ------------------------------------------------------------------------------------

    def build_submit(self, request):
        """Send exactly the parameters the request has; `extra_body` only when it carries something."""
        params = request.params
        body = {"model": request.model, "prompt": request.prompt}
        if request.first_frame:
            body["image"] = image_url(request.first_frame)
        if request.last_frame:
            body["last_image"] = image_url(request.last_frame)
        if request.reference_images:
            body["reference_image_urls"] = [image_url(image) for image in request.reference_images]
        for name in ("aspect_ratio", "duration"):
            if params.get(name) is not None:
                body[name] = params[name]
        extra = {name: params[name] for name in EXTRA_BODY_PARAMS if params.get(name) is not None}
        if extra:
            body["extra_body"] = extra
        return HttpCall("POST", GENERATIONS_PATH, json=body)

    def build_status(self, task_id, data):
        return HttpCall("GET", f"{GENERATIONS_PATH}/{path_segment(task_id)}")

    # Answers -------------------------------------------------------------------------------------

    def parse_submit(self, body):
        job, _ = unwrap(body)
        job = job if isinstance(job, dict) else {}
        task_id = identifier(job.get("task_id")) or identifier(job.get("id"))
        if task_id is None:
            # The gateway answered 200, so a job may exist that we cannot track: never resend on our own.
            raise ProviderError(f"UniAll accepted the request but gave no task id: {excerpt(body)}",
                                ambiguous=True, kind="malformed", body=body)
        # The job exists once this answer came, so a status of the wrong type reads as the default.
        raw = text(job.get("status"), "queued")
        return Submitted(task_id=task_id, raw_status=raw, state=self.map_status(raw),
                         created_at=unix_seconds(job.get("created_at")))

    def parse_status(self, body):
        job, where = unwrap(body)
        raw = self.require_status(body, *where, "status")
        state = self.map_status(raw)
        update = StatusUpdate(state=state, raw_status=raw, progress=percent(job.get("progress")))
        if state == State.SUCCEEDED:
            update.video_urls = video_urls(job)
            if not update.video_urls:
                message = f"UniAll reports {raw} but gives no video URL: {excerpt(body)}"
                raise ProviderError(message, kind="no_video", body=body)
        elif state == State.FAILED:
            update.error = failure_reason(job) or f"UniAll reports the job {raw} without a reason."
        return update

    def error_message(self, status_code, body):
        if isinstance(body, dict):
            error = body.get("error")
            if isinstance(error, dict) and error.get("message"):
                return excerpt(error["message"], ERROR_MESSAGE_CHARS)
            if is_new_api_wrapper(body) and (body.get("message") or body.get("code")):
                return excerpt(body.get("message") or body["code"], ERROR_MESSAGE_CHARS)
        return super().error_message(status_code, body)

    def check_body(self, status_code, body):
        """New-API reports some errors as a 200 wrapper whose `code` is not "success"."""
        if is_new_api_wrapper(body) and body["code"] != NEW_API_SUCCESS:
            raise ProviderError(self.error_message(status_code, body), permanent=True,
                                status_code=status_code, body=body)


def image_url(image):
    if not image.url:
        raise ProviderError("UniAll fetches images by URL, but this image has none.", permanent=True)
    return image.url


def is_new_api_wrapper(body):
    return isinstance(body, dict) and "code" in body and ("data" in body or "message" in body)


def unwrap(body):
    """The job and the keys to it, whether flat or inside New-API's {"code": "success", "data": {...}}."""
    if is_new_api_wrapper(body) and isinstance(body.get("data"), dict):
        return body["data"], ("data",)
    return body, ()


def video_urls(job):
    """`video_url`, else `result.video_url`, else `result.outputs` (strings or {url}), else `result_url`.

    Only strings count: a field of another type is passed over like an absent one.
    """
    if url := text(job.get("video_url")):
        return [url]
    result = job.get("result") if isinstance(job.get("result"), dict) else {}
    if url := text(result.get("video_url")):
        return [url]
    outputs = result.get("outputs") if isinstance(result.get("outputs"), list) else []
    urls = [text(item.get("url") if isinstance(item, dict) else item) for item in outputs]
    if urls := [url for url in urls if url]:
        return urls
    return [url] if (url := text(job.get("result_url"))) else []


def failure_reason(job):
    error = job.get("error")
    if isinstance(error, dict):
        error = text(error.get("message")) or text(error.get("code"))
    return text(error) or text(job.get("fail_reason"))
