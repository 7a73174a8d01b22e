"""APIMP's generate gateway: one submit, one status poll, video URLs in the status answer.

Submit (the seed's example):

    POST api/generate/submit
    {"model": "veo-3.1-generate-preview",
     "input": {"prompt": "A drone flyover of a misty bamboo forest at dawn"}}

    {"code": 200, "data": {"task_id": "task_9YfRdLsMxC8mNzG6sJxK4tQpAr2BvCWh", "status": "not_started",
                           "created_time": "2026-06-18T09:21:26", "error_message": null}}

Errors keep the same envelope, with the HTTP status repeated in `code`:

    {"code": 400, "error": {"message": "input.prompt is required", "type": "invalid_request_error"}}

Veo options travel in `input.metadata` under Veo's own camelCase names. `input.size` ("WxH") is not
sent: the gateway maps it to aspectRatio/resolution by the short side (< 1920 -> 720p), so a
1920x1080 size would mean 720p; metadata wins over size, so the studio states both options there.
"""

from studio.providers.adapter import ProviderAdapter, excerpt, path_segment, percent, text, unix_seconds
from studio.providers.apimp.catalog import MODELS
from studio.providers.base import HttpCall, ProviderError, State, StatusUpdate, Submitted

# Our parameter name -> the VeoParameters key in input.metadata.
METADATA_FIELDS = {
    "aspect_ratio": "aspectRatio",
    "resolution": "resolution",
    "negative_prompt": "negativePrompt",
    "person_generation": "personGeneration",
    "seed": "seed",
    "audio": "generateAudio",
}


class ApimpAdapter(ProviderAdapter):
    slug = "apimp"
    label = "APIMP"
    image_transport = "url"
    # Values INFERRED from a sibling gateway of the same family; only not_started appears in the seed.
    status_table = {
        "not_started": State.QUEUED,
        "running": State.RUNNING,
        "finished": State.SUCCEEDED,
        "failed": State.FAILED,
    }
    download_needs_auth = False
    # Veo takes one to several minutes; polling sooner only spends requests.
    first_poll_seconds = 30
    poll_seconds = 10
    models = MODELS

    def build_submit(self, request):
        """Only what the request sets is sent; `metadata` is left out when no Veo option is set."""
        params = request.params
        job_input = {"prompt": request.prompt}
        if "duration" in params:
            job_input["duration"] = int(params["duration"])
        if request.first_frame is not None:
            job_input["image"] = request.first_frame.url
        metadata = {key: params[name] for name, key in METADATA_FIELDS.items() if name in params}
        if metadata:
            job_input["metadata"] = metadata
        return HttpCall("POST", "api/generate/submit", json={"model": request.model, "input": job_input})

    def parse_submit(self, body):
        raw = self.require_status(body, "data", "status")
        task_id = self.require_id(body, "data", "task_id")
        data = body["data"]
        return Submitted(
            task_id=task_id,
            raw_status=raw,
            state=self.map_status(raw),
            created_at=unix_seconds(data.get("created_time")),
        )

    def build_status(self, task_id, data):
        return HttpCall("GET", f"api/generate/status/{path_segment(task_id)}")

    def parse_status(self, body):
        """A status answer; `file_type` says "image" even for videos, so every file of a finished task is taken.

            {"code": 200, "data": {"task_id": "task_…", "status": "finished", "progress": 100,
                                   "created_time": "2026-06-18T09:21:26", "error_message": null,
                                   "files": [{"file_url": "https://…/video.mp4", "file_type": "image"}]}}
        """
        raw = self.require_status(body, "data", "status")
        data = body["data"]
        update = StatusUpdate(state=self.map_status(raw), raw_status=raw, progress=percent(data.get("progress")))
        if update.state == State.SUCCEEDED:
            update.video_urls = self.file_urls(body)
        elif update.state == State.FAILED:
            update.error = text(data.get("error_message"), "APIMP reported the task failed without a reason.")
        return update

    def file_urls(self, body):
        files = body["data"].get("files") or []
        if not isinstance(files, list):
            raise self.malformed("says the task finished but its data.files is not a list", body)
        urls = [text(item.get("file_url")) for item in files if isinstance(item, dict)]
        if not any(urls):
            # A gateway can flag the task finished a moment before it fills in the files: ask again.
            raise ProviderError(f"APIMP says the task finished but lists no files: {excerpt(body)}",
                                kind="no_video", body=body)
        return [url for url in urls if url]

    def check_body(self, status_code, body):
        """The gateway may answer HTTP 200 with an error inside: {"code": 400, "error": {...}}."""
        code = body.get("code") if isinstance(body, dict) else None
        try:
            code = int(code)
        except (TypeError, ValueError, OverflowError):  # OverflowError: an infinite float
            return
        if 200 <= code < 300 or not 0 <= code < 1000:  # a number that is no HTTP status says nothing
            return
        raise ProviderError(
            self.error_message(code, body),
            permanent=400 <= code < 500 and code != 429,
            status_code=code,
            body=body,
        )
