"""ModelMax: a fal.ai-style queue in front of Veo 3.

Four calls per job: submit, poll the free status until COMPLETED, fetch the result once (that fetch is
what bills the job, so the job layer makes it exactly once), then download the bytes with the Bearer
header. Every path after the submit contains the model id, so Submitted.data keeps it.
"""

import re

from studio.providers.adapter import ProviderAdapter, excerpt, identifier, path_segment, text
from studio.providers.base import HttpCall, ProviderError, State, StatusUpdate, Submitted
from studio.providers.modelmax.catalog import MODELS

# Unified parameter -> ModelMax's name inside "parameters".
PARAMETER_NAMES = {
    "aspect_ratio": "aspect_ratio",
    "resolution": "resolution",
    "duration": "duration_seconds",
    "audio": "generate_audio",
    "samples": "sample_count",
    "negative_prompt": "negative_prompt",
}
MODEL_IN_QUEUE_URL = re.compile(r"/?v1/queue/(?P<model>.+?)/requests/")


class ModelMaxAdapter(ProviderAdapter):
    slug = "modelmax"
    label = "ModelMax"
    image_transport = "base64"
    status_table = {
        "IN_QUEUE": State.QUEUED,
        "IN_PROGRESS": State.RUNNING,
        "COMPLETED": State.SUCCEEDED,
        "FAILED": State.FAILED,
    }
    download_needs_auth = True
    first_poll_seconds = 15
    poll_seconds = 5  # the provider's own examples poll every 5 s; status polls are free
    models = MODELS

    def build_submit(self, request):
        """POST v1/queue/{model}

        {"prompt": "A drone shot flying over a coral reef at sunset",
         "parameters": {"aspect_ratio": "16:9", "resolution": "1080p", "duration_seconds": 8,
                        "generate_audio": true}}

        A parameter is sent when the request's params hold it (validation fills the catalog defaults in);
        "parameters" is left out when there is nothing to put in it.
        """
        parameters = {
            theirs: request.params[ours]
            for ours, theirs in PARAMETER_NAMES.items()
            if request.params.get(ours) not in (None, "")
        }
        if request.first_frame is not None:
            parameters["image"] = self.base64_image(request.first_frame)
        body = {"prompt": request.prompt}
        if parameters:
            body["parameters"] = parameters
        return HttpCall("POST", f"v1/queue/{path_segment(request.model)}", json=body)

    def parse_submit(self, body):
        """202 {"request_id": "Z2VtaW5pOnZlby0zOjg6NzIwcDoxOm9wLTEyMzQ1", "status": "IN_QUEUE",
                "status_url": "/v1/queue/veo-3/requests/Z2Vt.../status",
                "response_url": "/v1/queue/veo-3/requests/Z2Vt..."}
        """
        task_id = self.require_id(body, "request_id")
        # The job exists once this answer came, so a status of the wrong type reads as the default.
        raw = text(body.get("status"), "IN_QUEUE")
        status_url, response_url = text(body.get("status_url")), text(body.get("response_url"))
        data = {"model": model_from_queue_urls(body, status_url, response_url),
                "status_url": status_url, "response_url": response_url}
        return Submitted(task_id=task_id, raw_status=raw, state=self.map_status(raw), data=data)

    def build_status(self, task_id, data):
        """GET v1/queue/{model}/requests/{id}/status (free).

        Built from the model and id rather than taken from status_url: that URL is host-rooted
        ("/v1/…") and would drop a base URL's path prefix.
        """
        return HttpCall("GET", f"{request_path(task_id, data)}/status")

    def parse_status(self, body):
        """{"request_id": "…", "status": "IN_QUEUE" | "IN_PROGRESS" | "COMPLETED" | "FAILED", "error": "…"}

        COMPLETED carries no URLs: they come from the billed result call.
        """
        raw = self.require_status(body, "status")
        state = self.map_status(raw)
        if state == State.FAILED:
            return StatusUpdate(state, raw_status=raw, error=failure_text(body))
        return StatusUpdate(state, raw_status=raw, needs_result=state == State.SUCCEEDED)

    def build_result(self, task_id, data):
        """GET v1/queue/{model}/requests/{id}: this call bills the job; the job layer makes it once."""
        return HttpCall("GET", request_path(task_id, data))

    def parse_result(self, body):
        """{"request_id": "…", "status": "COMPLETED", "model": "veo-3",
            "data": [{"url": "/v1/queue/veo-3/requests/<content-id>/content/0"}],
            "usage": {"video_seconds": 8, "video_resolution": "720p", "video_has_audio": true}}
        or {"request_id": "…", "status": "FAILED", "error": "content policy violation"}
        """
        raw = self.require_status(body, "status")
        state = self.map_status(raw)
        if state == State.FAILED:
            return StatusUpdate(state, raw_status=raw, error=failure_text(body))
        if state != State.SUCCEEDED:
            return StatusUpdate(state, raw_status=raw)
        urls = self.video_urls(body)
        if not urls:
            # The result is already billed; fetching it again would not bring videos back.
            error = "ModelMax reported COMPLETED but returned no videos."
            return StatusUpdate(State.FAILED, raw_status=raw, error=error)
        return StatusUpdate(state, raw_status=raw, progress=100, video_urls=urls)

    def video_urls(self, body):
        """Every data[].url; a COMPLETED answer whose data is not that list of URLs cannot be read."""
        items = self.require(body, "data")
        if not isinstance(items, list):
            raise self.malformed("has a data that is not a list of videos", body)
        urls = [text(item.get("url")) if isinstance(item, dict) else "" for item in items]
        if not all(urls):
            raise self.malformed("lists a video without a url", body)
        return urls


def request_path(task_id, data):
    return f"v1/queue/{path_segment(data['model'])}/requests/{path_segment(task_id)}"


def model_from_queue_urls(body, *urls):
    """The submit answer does not name the model except inside its queue URLs."""
    for url in urls:
        if (match := MODEL_IN_QUEUE_URL.search(url)) and identifier(match["model"]):
            return match["model"]
    # The job exists at ModelMax but cannot be followed; resending it would pay twice.
    raise ProviderError(f"ModelMax accepted the job but its answer names no queue URL: {excerpt(body)}",
                        ambiguous=True, kind="malformed", body=body)


def failure_text(body):
    error = body.get("error")
    if isinstance(error, dict):
        error = error.get("message")
    return text(error, "ModelMax reported the job as failed without a reason.")
