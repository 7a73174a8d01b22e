"""QWave (qingbo.dev): one task API for Veo 3.x. Submit, poll the task, download within 24 h.

Images are URLs the provider fetches; which images a task uses is named by `action`.
"""

from studio.providers.adapter import ProviderAdapter, excerpt, path_segment, percent, text, unix_seconds
from studio.providers.base import HttpCall, ProviderError, State, StatusUpdate, Submitted
from studio.providers.qingbo.catalog import MODELS

# Unified parameter -> QWave field, for the values sent as they are.
PLAIN_FIELDS = ("aspect_ratio", "duration", "resolution", "negative_prompt", "seed")


class QingboAdapter(ProviderAdapter):
    slug = "qingbo"
    label = "QWave"
    image_transport = "url"
    status_table = {
        "queued": State.QUEUED,
        "processing": State.RUNNING,
        "completed": State.SUCCEEDED,
        "failed": State.FAILED,
        "cancelled": State.CANCELLED,
    }
    # Result links are plain (signed) URLs; they expire after 24 h, so the job layer downloads at once.
    download_needs_auth = False
    # A Veo clip takes a minute or more; the provider suggests polling every 2–5 s once it is under way.
    first_poll_seconds = 10
    poll_seconds = 5
    models = MODELS

    def build_submit(self, request):
        """POST v1/tasks, e.g. (the provider's example)::

            {"model": "veo-3.1", "action": "generate",
             "prompt": "A golden retriever running on a beach at sunset, cinematic lighting, slow motion",
             "aspect_ratio": "16:9", "duration": 8, "resolution": "1080p"}

        Only parameters present in the (validated) request are sent; person_generation travels as
        `extra.personGeneration`, and audio is never sent because Veo 3 always makes it.
        """
        params = request.params
        body = {"model": request.model, "action": self.action_for(request), "prompt": request.prompt}
        body.update({name: params[name] for name in PLAIN_FIELDS if name in params})
        if request.callback_url:
            body["callback_url"] = request.callback_url
        if "person_generation" in params:
            body["extra"] = {"personGeneration": params["person_generation"]}
        body.update(self.image_fields(request))
        return HttpCall("POST", "v1/tasks", json=body)

    @staticmethod
    def action_for(request):
        if request.reference_images:
            return "reference"
        if request.last_frame:
            return "first_last_frame"
        if request.first_frame:
            return "image2video"
        return "generate"

    @staticmethod
    def image_fields(request):
        fields = {}
        if request.first_frame:
            fields["first_frame_image"] = request.first_frame.url
        if request.last_frame:
            fields["last_frame_image"] = request.last_frame.url
        if request.reference_images:
            fields["image_urls"] = [image.url for image in request.reference_images]
        return fields

    def parse_submit(self, body):
        """The provider's example answer::

            {"task_id": "task-wave1775285160b950328499", "model": "veo-3.1", "action": "generate",
             "status": "queued", "created_at": 1775285160040, "progress": 0}

        `created_at` is milliseconds here and seconds in another of its examples; both are accepted.
        """
        task_id = self.require_id(body, "task_id")
        # The task exists once this answer came, so a status of the wrong type reads as the default.
        raw = text(body.get("status"), "queued")
        return Submitted(
            task_id=task_id,
            raw_status=raw,
            state=self.map_status(raw),
            created_at=unix_seconds(body.get("created_at")),
        )

    def build_status(self, task_id, data):
        return HttpCall("GET", f"v1/tasks/{path_segment(task_id)}")

    def parse_status(self, body):
        """GET v1/tasks/{task_id}::

            {"task_id": "task-wave…", "model": "veo-3.1", "action": "generate", "status": "completed",
             "created_at": 1775285160040, "start_time": …, "completed_at": …, "progress": 100,
             "result": {"images": [], "videos": [{"url": "https://…", "expires_at": …}]},
             "error": {"message": "…"}}

        status: queued, processing, completed, failed or cancelled. `result` and `error` may be null
        or absent while the task runs; a completed task must list at least one video URL.
        """
        raw = self.require_status(body, "status")
        state = self.map_status(raw)
        return StatusUpdate(
            state=state,
            raw_status=raw,
            progress=percent(body.get("progress")),
            video_urls=self.video_urls(body) if state == State.SUCCEEDED else [],
            error=self.failure_text(body, raw) if state == State.FAILED else "",
            model=text(body.get("model")),
        )

    def video_urls(self, body):
        result = body.get("result")
        if not isinstance(result, dict):
            raise self.malformed("says completed but has no result object", body)
        videos = result.get("videos")
        if not isinstance(videos, list):
            raise self.malformed("says completed but its result.videos is not a list", body)
        urls = [text(video.get("url")) for video in videos if isinstance(video, dict)]
        if not any(urls):
            # Finished a moment before its links are filled in, perhaps: ask again (not a fault of the account).
            raise ProviderError(f"QWave says the task completed but lists no video URL: {excerpt(body)}",
                                kind="no_video", body=body)
        return [url for url in urls if url]

    @staticmethod
    def failure_text(body, raw):
        error = body.get("error")
        if isinstance(error, dict):
            error = error.get("message")
        return text(error, f"QWave reports the task {raw} without a reason.")

    def build_cancel(self, task_id, data):
        """Only queued tasks can be cancelled (and are refunded); later ones answer 400."""
        return HttpCall("POST", f"v1/tasks/{path_segment(task_id)}/cancel")
