"""The Veo reseller template: `POST v1/video/create`, then `GET v1/video/query?id=…`.

The seed documents only the query; the create call is INFERRED from sibling resellers on the same
template. Images travel as URLs in `images[]`: first frame then last frame on frame models, 1–3
reference images on the components models.
"""

import logging

from studio.providers.adapter import ProviderAdapter, excerpt, percent, text, unix_seconds
from studio.providers.base import HttpCall, ProviderError, State, StatusUpdate, Submitted
from studio.providers.veoquery.catalog import MODELS

logger = logging.getLogger(__name__)

# Our unified parameter name -> the create body's field.
FIELDS = {"aspect_ratio": "aspect_ratio", "enhance_prompt": "enhance_prompt", "upsample": "enable_upsample"}


class VeoQueryAdapter(ProviderAdapter):
    slug = "veoquery"
    label = "Veo reseller"
    image_transport = "url"
    status_table = {
        "pending": State.QUEUED,
        "processing": State.RUNNING,
        # Only with a video_url: see parse_status.
        "completed": State.SUCCEEDED,
        "failed": State.FAILED,
    }
    download_needs_auth = False
    # The seed's example took about four minutes from created_at to completed_at.
    first_poll_seconds = 30
    poll_seconds = 10
    models = MODELS

    def build_submit(self, request) -> HttpCall:
        """The create body, as shown in the seed's `detail.req`:

        {"model": "veo3.1-fast",
         "images": ["https://filesystem.site/cdn/20250702/w8AauvxxPhYoqqkFWdMippJpb9zBxN.png"],
         "prompt": "make animate", "aspect_ratio": "16:9", "enhance_prompt": true, "enable_upsample": true}
        """
        body = {"model": request.model}
        if images := self.image_urls(request):
            body["images"] = images
        body["prompt"] = request.prompt
        for name, field in FIELDS.items():
            if name in request.params:
                body[field] = request.params[name]
        return HttpCall("POST", "v1/video/create", json=body)

    @staticmethod
    def image_urls(request):
        """Frames in order (first, then last), or the reference images; the catalog never allows both."""
        frames = [image.url for image in (request.first_frame, request.last_frame) if image is not None]
        return frames + [image.url for image in request.reference_images]

    def parse_submit(self, body) -> Submitted:
        """{"id": "veo3.1-fast:1770350082-trii1OXZc3", "status": "pending",
        "status_update_time": 1770350082099, "enhanced_prompt": "…"}
        """
        task_id = self.require_id(body, "id")
        # The task exists once this answer came, so a status of the wrong type reads as the default.
        raw = text(body.get("status"), "pending")
        return Submitted(
            task_id=task_id,
            raw_status=raw,
            state=self.map_status(raw),
            created_at=unix_seconds(body.get("status_update_time")),
        )

    def build_status(self, task_id, data) -> HttpCall:
        return HttpCall("GET", "v1/video/query", params={"id": task_id})

    def parse_status(self, body) -> StatusUpdate:
        """The seed's example of a finished task (detail shortened):

        {"id": "veo3.1-fast:1770350082-trii1OXZc3", "status": "completed",
         "video_url": "https://pro.filesystem.site/cdn/20260206/1b50395bad4c6c7bc22e6ada144951.mp4",
         "status_update_time": 1770350329098,
         "detail": {
           "status": "completed",
           "video_url": "https://pro.filesystem.site/cdn/20260206/9ddbd3bdc67f75a02f766363ebf8eb.mp4",
           "upsample_video_url": "https://pro.filesystem.site/cdn/20260206/1b50395bad4c6c7bc22e6ada144951.mp4",
           "error_message": "[403] Request failed with status code 403 | Message: reCAPTCHA evaluation failed …",
           "video_generation_error": "your request contains unsafe prompt or images, … has been rejected by
                                      google, please change your prompt or images and try again",
           "enhanced_prompt": "Create a vibrant and whimsical animation …", …}}

        The record keeps failure text from retries even when the task succeeded, so success is
        `completed` with a video_url, never the absence of error fields. The top-level video_url is the
        one to fetch (the upsampled file when upsampling was asked for). A video_url that is there but is
        not a string makes the answer malformed.
        """
        raw = self.require_status(body, "status")
        video_url = body.get("video_url")
        state = self.map_status(raw)
        if state == State.SUCCEEDED and video_url is not None and not isinstance(video_url, str):
            raise self.malformed("says completed but its video_url is not a string", body)
        if state == State.SUCCEEDED and not text(video_url):
            task = excerpt(body.get("id"), 80)
            logger.warning("%s: task %s is %r without a video_url, treated as running", self.slug, task, raw)
            state = State.RUNNING
        return StatusUpdate(
            state=state,
            raw_status=raw,
            progress=100 if state == State.SUCCEEDED else percent(body.get("progress")),
            video_urls=[video_url] if state == State.SUCCEEDED else [],
            error=self.failure_text(body) if state == State.FAILED else "",
            enhanced_prompt=self.enhanced_prompt(body),
        )

    @staticmethod
    def failure_text(body):
        """Every distinct reason the answer gives, upstream record first, in the provider's words."""
        detail = body.get("detail") if isinstance(body.get("detail"), dict) else {}
        error = body.get("error")
        if isinstance(error, dict):
            error = error.get("message")
        candidates = (
            detail.get("error_message"), detail.get("video_generation_error"), error, body.get("message")
        )
        reasons = list(dict.fromkeys(text(reason).strip() for reason in candidates if text(reason)))
        return " | ".join(reasons) or "The provider reported the task as failed without a reason."

    @staticmethod
    def enhanced_prompt(body):
        """Documented at the top level; the seed's own example has it only inside `detail`."""
        detail = body.get("detail") if isinstance(body.get("detail"), dict) else {}
        return text(body.get("enhanced_prompt")) or text(detail.get("enhanced_prompt"))

    def check_body(self, status_code, body):
        """Resellers on this template sometimes answer 200 with an error and no task id (INFERRED)."""
        if isinstance(body, dict) and body.get("error") and "id" not in body:
            raise ProviderError(
                self.error_message(status_code, body), permanent=True, status_code=status_code, body=body
            )
