"""The Veo reseller template (veoquery): the seed's payloads, a sandbox job per image mode, faults, rules."""

import logging
import time

import av
import pytest
from PIL import ImageStat

from studio.providers import catalog
from studio.providers.base import GenerationRequest, HttpCall, ImageInput, ProviderError, State, ValidationFailed
from studio.providers.catalog import ImagesGiven
from studio.providers.veoquery import adapter
from studio.providers.veoquery.catalog import MODELS
from studio.sandbox.video import probe
from tests.conftest import SANDBOX_JOB_SECONDS, sandbox_key
from tests.helpers import png_bytes
from tests.providers.support import client_for_sandbox, download, run_to_end

SLUG = "veoquery"
RED, BLUE = (220, 20, 20), (20, 40, 220)

SEED_IMAGE = "https://filesystem.site/cdn/20250702/w8AauvxxPhYoqqkFWdMippJpb9zBxN.png"
SEED_CREATE_BODY = {
    "model": "veo3.1-fast",
    "images": [SEED_IMAGE],
    "prompt": "make animate",
    "aspect_ratio": "16:9",
    "enhance_prompt": True,
    "enable_upsample": True,
}
# The seed's "成功示例" for GET /v1/video/query, verbatim.
SEED_QUERY_EXAMPLE = {
    "id": "veo3.1-fast:1770350082-trii1OXZc3",
    "detail": {
        "id": "veo3.1-fast:1770350082-trii1OXZc3",
        "req": {
            "model": "veo3.1-fast",
            "images": ["https://filesystem.site/cdn/20250702/w8AauvxxPhYoqqkFWdMippJpb9zBxN.png"],
            "prompt": "make animate",
            "aspect_ratio": "16:9",
            "enhance_prompt": True,
            "enable_upsample": True,
        },
        "images": [
            {
                "url": "https://filesystem.site/cdn/20250702/w8AauvxxPhYoqqkFWdMippJpb9zBxN.png",
                "status": "completed",
                "mediaId": "CAMaJGUwOTE4MTA4LWQ3MTgtNDk0OS05ZDNiLTIxMjBkM2M5ZGFkYyIDQ0FFKiQzYzY4MjJhZi05ZTVkLTRhNjktOGQ5NC1jYmNjYWVjNDhkMjM",
            }
        ],
        "status": "completed",
        "running": False,
        "video_url": "https://pro.filesystem.site/cdn/20260206/9ddbd3bdc67f75a02f766363ebf8eb.mp4",
        "created_at": 1770350082099,
        "error_sleep": 5000,
        "max_retries": 3,
        "retry_count": 3,
        "completed_at": 1770350328994,
        "error_message": "[403] Request failed with status code 403 | Message: reCAPTCHA evaluation failed | Code: 403 | Status: PERMISSION_DENIED | Reason: PUBLIC_ERROR_SOMETHING_WENT_WRONG | Type: type.googleapis.com/google.rpc.ErrorInfo | URL: /v1/video:batchAsyncGenerateVideoStartImage",
        "video_media_id": "CAUSJDU1YzFjNTliLWYxNzctNGYwYy04YTJkLTI3MGFkMWE4YjkyMxokMTZjYjk1NzUtYWY4Yy00MzQzLWI4NjMtNGQ5YWFiZTZmNzMzIgNDQUUqJGQxZjBhOGExLTUxYjYtNDk5Yy04YWJlLWFhZTU0YzZiMjIxZQ",
        "enhanced_prompt": "Create a vibrant and whimsical animation that features a joyful scene of colorful animals playing together in a sunny meadow, surrounded by blooming flowers and butterflies fluttering by.",
        "upsample_status": "MEDIA_GENERATION_STATUS_SUCCESSFUL",
        "startImageMediaId": "CAMaJGUwOTE4MTA4LWQ3MTgtNDk0OS05ZDNiLTIxMjBkM2M5ZGFkYyIDQ0FFKiQzYzY4MjJhZi05ZTVkLTRhNjktOGQ5NC1jYmNjYWVjNDhkMjM",
        "status_update_time": 1770350329098,
        "upsample_video_url": "https://pro.filesystem.site/cdn/20260206/1b50395bad4c6c7bc22e6ada144951.mp4",
        "video_generation_id": "608c00e8de85d8856554201ae115b7c2",
        "veo3StartImageMediaId": "CAMaJGUwOTE4MTA4LWQ3MTgtNDk0OS05ZDNiLTIxMjBkM2M5ZGFkYyIDQ0FFKiQzYzY4MjJhZi05ZTVkLTRhNjktOGQ5NC1jYmNjYWVjNDhkMjM",
        "needs_safe_enhancement": True,
        "upsample_generation_id": "d1f0a8a1-51b6-499c-8abe-aae54c6b221e_upsampled",
        "video_generation_error": "your request contains unsafe prompt or images, such as porn, violence, minors etc., has been rejected by google, please change your prompt or images and try again",
        "video_generation_status": "MEDIA_GENERATION_STATUS_SUCCESSFUL",
    },
    "status": "completed",
    "video_url": "https://pro.filesystem.site/cdn/20260206/1b50395bad4c6c7bc22e6ada144951.mp4",
    "status_update_time": 1770350329098,
}
# The query's documented schema: id, status, video_url (null until done), enhanced_prompt, status_update_time.
PENDING_ANSWER = {
    "id": "veo3.1-fast:1770350082-trii1OXZc3",
    "status": "pending",
    "video_url": None,
    "enhanced_prompt": "make animate",
    "status_update_time": 1770350082099,
}


def spec(model_id):
    return next(s for s in MODELS if s.model_id == model_id)


def image(url):
    return ImageInput(content=b"", mime="image/png", url=url)


def request_for(model_id, params=None, *, first=None, last=None, references=(), prompt="a red kite over the sea"):
    """A request as the job layer hands it over: validated against the catalog, image URLs signed."""
    given = ImagesGiven(first_frame=first is not None, last_frame=last is not None, references=len(references))
    clean = catalog.validate(spec(model_id), {"prompt": prompt, **(params or {})}, given)
    return GenerationRequest(
        model=model_id, params=clean,
        first_frame=image(first) if first else None, last_frame=image(last) if last else None,
        reference_images=[image(url) for url in references],
    )


def video_file(client, update, tmp_path):
    path = tmp_path / "result.mp4"
    assert len(update.video_urls) == 1
    assert download(client, update.video_urls[0], path) == 200
    return path


def edge_colours(path):
    """Mean RGB of the first and the final frame."""
    first = last = None
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            last = frame
            if first is None:
                first = ImageStat.Stat(frame.to_image()).mean
    return first, ImageStat.Stat(last.to_image()).mean


def close_to(colour, expected, tolerance=35):
    return all(abs(a - b) <= tolerance for a, b in zip(colour, expected))


# The seed's payloads ----------------------------------------------------------------------------------


def test_seed_create_body_round_trips():
    request = request_for(
        "veo3.1-fast", {"aspect_ratio": "16:9", "enhance_prompt": True, "upsample": True},
        first=SEED_IMAGE, prompt="make animate",
    )
    call = adapter.build_submit(request)
    assert (call.method, call.path) == ("POST", "v1/video/create")
    assert call.json == SEED_CREATE_BODY


def test_text_only_create_body_has_no_images_and_defaults_filled():
    call = adapter.build_submit(request_for("veo3-fast"))
    assert call.json == {"model": "veo3-fast", "prompt": "a red kite over the sea", "aspect_ratio": "16:9",
                         "enhance_prompt": False, "enable_upsample": False}


def test_veo2_sends_no_aspect_ratio_and_veo31_4k_no_upsample():
    assert "aspect_ratio" not in adapter.build_submit(request_for("veo2")).json
    assert "enable_upsample" not in adapter.build_submit(request_for("veo3.1-4k")).json


def test_frames_go_first_then_last_and_references_in_order():
    frames = adapter.build_submit(request_for("veo3-pro-frames", first="https://a/1.png", last="https://a/2.png"))
    references = adapter.build_submit(
        request_for("veo2-fast-components", references=["https://a/r1.png", "https://a/r2.png", "https://a/r3.png"])
    )
    assert frames.json["images"] == ["https://a/1.png", "https://a/2.png"]
    assert references.json["images"] == ["https://a/r1.png", "https://a/r2.png", "https://a/r3.png"]


def test_parse_submit_reads_the_create_answer():
    submitted = adapter.parse_submit({
        "id": "veo3.1-fast:1770350082-trii1OXZc3", "status": "pending",
        "status_update_time": 1770350082099, "enhanced_prompt": "make animate",
    })
    assert submitted.task_id == "veo3.1-fast:1770350082-trii1OXZc3"
    assert (submitted.raw_status, submitted.state) == ("pending", State.QUEUED)
    assert submitted.created_at == pytest.approx(1770350082.099)


def test_status_is_a_get_with_the_task_id_as_query_parameter():
    call = adapter.build_status("veo3.1-fast:1770350082-trii1OXZc3", {})
    assert call == HttpCall("GET", "v1/video/query", params={"id": "veo3.1-fast:1770350082-trii1OXZc3"})


def test_seed_completed_example_succeeds_despite_stale_error_fields():
    update = adapter.parse_status(SEED_QUERY_EXAMPLE)
    assert update.state == State.SUCCEEDED
    assert update.video_urls == ["https://pro.filesystem.site/cdn/20260206/1b50395bad4c6c7bc22e6ada144951.mp4"]
    assert update.error == ""
    assert update.enhanced_prompt.startswith("Create a vibrant and whimsical animation")


def test_pending_answer_is_queued_without_video():
    update = adapter.parse_status(PENDING_ANSWER)
    assert (update.state, update.video_urls, update.enhanced_prompt) == (State.QUEUED, [], "make animate")


def test_processing_answer_is_running():
    assert adapter.parse_status({**PENDING_ANSWER, "status": "processing"}).state == State.RUNNING


def test_completed_without_video_url_is_still_running(caplog):
    with caplog.at_level(logging.WARNING):
        update = adapter.parse_status({**PENDING_ANSWER, "status": "completed", "video_url": None})
    assert (update.state, update.video_urls) == (State.RUNNING, [])
    assert "without a video_url" in caplog.text


def test_failed_answer_carries_the_upstream_reason():
    reason = SEED_QUERY_EXAMPLE["detail"]["video_generation_error"]
    update = adapter.parse_status({**PENDING_ANSWER, "status": "failed", "detail": {"video_generation_error": reason}})
    assert (update.state, update.error, update.video_urls) == (State.FAILED, reason, [])


def test_failed_answer_joins_distinct_reasons_and_reads_a_top_level_error():
    both = {**PENDING_ANSWER, "status": "failed", "detail": {"error_message": "quota", "video_generation_error": "unsafe"}}
    top = {**PENDING_ANSWER, "status": "failed", "error": {"message": "upstream timeout", "type": "server_error"}}
    assert adapter.parse_status(both).error == "quota | unsafe"
    assert adapter.parse_status(top).error == "upstream timeout"


def test_error_inside_a_200_answer_is_permanent():
    with pytest.raises(ProviderError) as exc:
        adapter.check_body(200, {"error": {"message": "model not available", "type": "invalid_request_error"}})
    assert exc.value.permanent and exc.value.message == "model not available"
    adapter.check_body(200, {**PENDING_ANSWER, "status": "failed", "error": "kept for parse_status"})


# The status table ---------------------------------------------------------------------------------


@pytest.mark.parametrize("raw, state", [
    ("pending", State.QUEUED), ("processing", State.RUNNING), ("completed", State.SUCCEEDED), ("failed", State.FAILED),
])
def test_status_table_maps_every_documented_value(raw, state):
    assert adapter.map_status(raw) == state


def test_unknown_status_is_running_never_success():
    answer = {**PENDING_ANSWER, "status": "upsampling", "video_url": "https://example.com/v.mp4"}
    update = adapter.parse_status(answer)
    assert (update.state, update.video_urls) == (State.RUNNING, [])


# Full jobs against the sandbox ----------------------------------------------------------------------


def test_text_only_job_on_veo3_fast_in_portrait(sandbox, tmp_path):
    client = client_for_sandbox(sandbox, SLUG)
    request = request_for("veo3-fast", {"aspect_ratio": "9:16", "enhance_prompt": True})
    submitted, update = run_to_end(client, request)
    assert sandbox.submits(SLUG)[0]["json"] == {
        "model": "veo3-fast", "prompt": "a red kite over the sea", "aspect_ratio": "9:16",
        "enhance_prompt": True, "enable_upsample": False,
    }
    assert submitted.task_id.startswith("veo3-fast:")
    assert update.state == State.SUCCEEDED
    assert update.enhanced_prompt == "Cinematic, detailed: a red kite over the sea"
    # The sandbox reproduces the seed's quirk: failure text left over on a completed task.
    answer = client.send(adapter.build_status(submitted.task_id, submitted.data))
    assert answer["status"] == "completed" and answer["detail"]["error_message"]
    assert update.error == ""
    info = probe(video_file(client, update, tmp_path))
    assert (info["width"], info["height"], info["has_audio"]) == (720, 1280, True)
    assert info["duration"] == pytest.approx(8, abs=0.2)


def test_first_frame_job_on_veo2_upsampled_to_1080p(sandbox, image_url, tmp_path):
    client = client_for_sandbox(sandbox, SLUG)
    red = image_url(png_bytes(RED))
    _, update = run_to_end(client, request_for("veo2", {"upsample": True}, first=red))
    assert sandbox.submits(SLUG)[0]["json"] == {
        "model": "veo2", "images": [red], "prompt": "a red kite over the sea",
        "enhance_prompt": False, "enable_upsample": True,
    }
    path = video_file(client, update, tmp_path)
    info = probe(path)
    assert (info["width"], info["height"], info["has_audio"]) == (1920, 1080, False)
    assert info["duration"] == pytest.approx(8, abs=0.2)
    assert close_to(edge_colours(path)[0], RED)


def test_first_and_last_frame_job_on_veo31_fast(sandbox, image_url, tmp_path):
    client = client_for_sandbox(sandbox, SLUG)
    red, blue = image_url(png_bytes(RED)), image_url(png_bytes(BLUE))
    _, update = run_to_end(client, request_for("veo3.1-fast", first=red, last=blue))
    assert sandbox.submits(SLUG)[0]["json"] == {
        "model": "veo3.1-fast", "images": [red, blue], "prompt": "a red kite over the sea",
        "aspect_ratio": "16:9", "enhance_prompt": False, "enable_upsample": False,
    }
    path = video_file(client, update, tmp_path)
    info = probe(path)
    assert (info["width"], info["height"], info["has_audio"]) == (1280, 720, True)
    first, last = edge_colours(path)
    assert close_to(first, RED) and close_to(last, BLUE)


def test_reference_images_job_on_veo31_components(sandbox, image_url, tmp_path):
    client = client_for_sandbox(sandbox, SLUG)
    references = [image_url(png_bytes(RED)), image_url(png_bytes(BLUE))]
    _, update = run_to_end(client, request_for("veo3.1-components", references=references))
    assert sandbox.submits(SLUG)[0]["json"] == {
        "model": "veo3.1-components", "images": references, "prompt": "a red kite over the sea",
        "aspect_ratio": "16:9", "enhance_prompt": False, "enable_upsample": False,
    }
    path = video_file(client, update, tmp_path)
    info = probe(path)
    assert (info["width"], info["height"], info["has_audio"]) == (1280, 720, True)
    # References guide the content; they are not pasted in as frames.
    assert not close_to(edge_colours(path)[0], RED)


# Faults ---------------------------------------------------------------------------------------------


# First among the faults: the jobs created by the later ones keep rendering in the background.
def test_expired_link_is_replaced_by_a_fresh_status(sandbox, tmp_path):
    sandbox.fault("expire_link", provider=SLUG, status=403)
    client = client_for_sandbox(sandbox, SLUG)
    submitted, update = run_to_end(client, request_for("veo3-fast"))
    assert download(client, update.video_urls[0], tmp_path / "dead.mp4") == 403
    fresh = client.status(submitted.task_id, submitted.data)
    assert fresh.video_urls != update.video_urls
    assert probe(video_file(client, fresh, tmp_path))["duration"] == pytest.approx(8, abs=0.2)


def submit_error(client, request=None):
    with pytest.raises(ProviderError) as exc:
        client.submit(request or request_for("veo3-fast"))
    return exc.value


def test_unknown_key_is_refused_permanently(sandbox):
    error = submit_error(client_for_sandbox(sandbox, SLUG, key="not-a-sandbox-key"))
    assert (error.status_code, error.permanent, error.message) == (401, True, "Invalid API key.")


def test_empty_account_is_refused_permanently(sandbox):
    error = submit_error(client_for_sandbox(sandbox, SLUG, key=sandbox_key(SLUG) + "-empty"))
    assert (error.status_code, error.permanent, error.message) == (402, True, "Insufficient balance.")


def test_invalid_request_is_permanent_with_the_sandbox_message(sandbox):
    # Bypasses the catalog, as a stale form or a changed provider would.
    request = GenerationRequest(model="veo2", params={"prompt": "x", "aspect_ratio": "16:9"})
    error = submit_error(client_for_sandbox(sandbox, SLUG), request)
    assert (error.status_code, error.permanent) == (400, True)
    assert error.message == "aspect_ratio is not supported by veo2: Veo 2 models are 16:9 only."


@pytest.mark.parametrize("body, words", [
    ({"model": "veo3", "prompt": "x", "images": ["https://a/1.png", "https://a/2.png"]}, "veo3 takes at most 1 image"),
    ({"model": "veo3.1-components", "prompt": "x"}, "veo3.1-components needs 1 to 3 reference images"),
    ({"model": "veo2-fast-components", "prompt": "x", "images": ["https://a/%d.png" % i for i in range(4)]},
     "veo2-fast-components needs 1 to 3 reference images"),
    ({"model": "veo3", "prompt": "x", "duration": 8}, "Unknown field(s): duration"),
    ({"model": "veo3", "prompt": "x", "enhance_prompt": "true"}, "enhance_prompt must be a boolean"),
    ({"model": "veo3", "prompt": "x", "aspect_ratio": "1:1"}, "aspect_ratio must be one of 16:9, 9:16"),
    ({"model": "veo3.1-4k", "prompt": "x", "enable_upsample": False}, "enable_upsample is not supported by veo3.1-4k"),
    ({"model": "veo3", "prompt": "x", "images": "https://a/1.png"}, "images must be an array"),
    ({"model": "veo3", "prompt": "x", "images": ["data:image/png;base64,AAAA"]}, "images[0] must be an http(s)"),
    ({"model": "veo4", "prompt": "x"}, "model must be one of"),
    ({"model": "veo3", "prompt": ""}, "prompt is required"),
])
def test_sandbox_is_as_strict_as_the_service(sandbox, body, words):
    with pytest.raises(ProviderError) as exc:
        client_for_sandbox(sandbox, SLUG).send(HttpCall("POST", "v1/video/create", json=body))
    assert exc.value.permanent and exc.value.status_code == 400
    assert words in exc.value.message
    assert not sandbox.state.tasks


def test_unknown_task_is_a_permanent_404(sandbox):
    with pytest.raises(ProviderError) as exc:
        client_for_sandbox(sandbox, SLUG).status("veo3:1770350082-nosuchtask", {})
    assert (exc.value.status_code, exc.value.permanent) == (404, True)
    assert exc.value.message == "Task veo3:1770350082-nosuchtask not found."


def test_rate_limit_is_transient_with_retry_after(sandbox):
    sandbox.fault("rate_limit", provider=SLUG, on="submit", retry_after=3)
    error = submit_error(client_for_sandbox(sandbox, SLUG))
    assert error.transient and error.retry_after == 3
    assert "Too many requests" in error.message


def test_rate_limit_with_an_http_date_gives_the_delay(sandbox):
    sandbox.fault("rate_limit", provider=SLUG, on="submit", retry_after=30, retry_after_date=True)
    error = submit_error(client_for_sandbox(sandbox, SLUG))
    assert error.transient and error.retry_after == pytest.approx(30, abs=2)


def test_server_error_on_submit_is_ambiguous(sandbox):
    sandbox.fault("server_error", provider=SLUG, on="submit")
    error = submit_error(client_for_sandbox(sandbox, SLUG))
    assert error.ambiguous and not error.permanent
    assert "Upstream service error." in error.message


def test_server_error_and_malformed_answers_on_status_are_transient(sandbox):
    client = client_for_sandbox(sandbox, SLUG)
    sandbox.fault("server_error", provider=SLUG, on="status")
    sandbox.fault("malformed_json", provider=SLUG, on="status")
    for _ in range(2):
        with pytest.raises(ProviderError) as exc:
            client.status("veo3:1770350082-nosuchtask", {})
        assert exc.value.transient
    with pytest.raises(ProviderError) as exc:
        client.status("veo3:1770350082-nosuchtask", {})
    assert exc.value.permanent, "both faults are spent, so the sandbox's own 404 comes back"


def test_hang_after_accept_is_ambiguous_and_the_job_exists(sandbox, settings):
    settings.STUDIO_PROVIDER_READ_TIMEOUT = 0.5
    sandbox.fault("hang_after_accept", provider=SLUG, on="submit", seconds=2)
    error = submit_error(client_for_sandbox(sandbox, SLUG))
    assert error.ambiguous
    assert len(sandbox.submits(SLUG)) == 1 and len(sandbox.state.tasks) == 1


def test_malformed_submit_answer_is_ambiguous(sandbox):
    sandbox.fault("malformed_json", provider=SLUG, on="submit")
    error = submit_error(client_for_sandbox(sandbox, SLUG))
    assert error.ambiguous
    assert len(sandbox.submits(SLUG)) == 1


def test_failed_job_reports_the_provider_message(sandbox):
    sandbox.fault("fail_job", provider=SLUG, message="your request contains unsafe prompt or images")
    _, update = run_to_end(client_for_sandbox(sandbox, SLUG), request_for("veo3-fast"))
    assert (update.state, update.raw_status) == (State.FAILED, "failed")
    assert update.error == "your request contains unsafe prompt or images"
    assert update.video_urls == []


def test_never_finishing_job_is_still_running(sandbox):
    sandbox.fault("never_finish", provider=SLUG)
    client = client_for_sandbox(sandbox, SLUG)
    submitted = client.submit(request_for("veo3-fast"))
    time.sleep(3 * SANDBOX_JOB_SECONDS)
    update = client.status(submitted.task_id, submitted.data)
    assert (update.state, update.raw_status, update.video_urls) == (State.RUNNING, "processing", [])


# Catalog rules, refused before anything is sent -------------------------------------------------------


def violation_codes(model_id, params=None, images=ImagesGiven()):
    with pytest.raises(ValidationFailed) as exc:
        catalog.validate(spec(model_id), {"prompt": "x", **(params or {})}, images)
    return [v.code for v in exc.value.violations]


@pytest.mark.parametrize("model_id", ["veo2-fast-frames", "veo3-pro-frames", "veo3.1", "veo3.1-fast", "veo3.1-4k"])
def test_last_frame_needs_a_first_frame(sandbox, model_id):
    assert "last_frame_needs_first" in violation_codes(model_id, images=ImagesGiven(last_frame=True))
    assert sandbox.count(SLUG) == 0


@pytest.mark.parametrize("model_id", ["veo2", "veo2-fast", "veo2-pro", "veo3", "veo3-fast", "veo3-pro"])
def test_first_frame_only_models_refuse_a_last_frame(sandbox, model_id):
    codes = violation_codes(model_id, images=ImagesGiven(first_frame=True, last_frame=True))
    assert "last_frame_not_accepted" in codes
    assert sandbox.count(SLUG) == 0


@pytest.mark.parametrize("model_id", ["veo2-fast-components", "veo3.1-components"])
def test_components_models_need_one_to_three_references_and_no_frames(sandbox, model_id):
    assert "references_required" in violation_codes(model_id)
    assert "too_many_references" in violation_codes(model_id, images=ImagesGiven(references=4))
    assert "first_frame_not_accepted" in violation_codes(
        model_id, images=ImagesGiven(first_frame=True, references=1)
    )
    rule = next(r for r in spec(model_id).rules if r.code == "references_exclude_frames")
    assert rule.broken({}, ImagesGiven(first_frame=True, references=1))
    assert sandbox.count(SLUG) == 0


def test_veo2_has_no_aspect_ratio_and_veo31_4k_no_upsample(sandbox):
    assert "unknown_parameter" in violation_codes("veo2", {"aspect_ratio": "9:16"})
    assert "unknown_parameter" in violation_codes("veo3.1-4k", {"upsample": True})
    assert "aspect_ratio_not_allowed" in violation_codes("veo3", {"aspect_ratio": "1:1"})
    assert sandbox.count(SLUG) == 0


def test_catalog_lists_every_model_with_truthful_fixed_facts():
    assert [s.model_id for s in MODELS] == [
        "veo2", "veo2-fast", "veo2-fast-frames", "veo2-fast-components", "veo2-pro", "veo3", "veo3-fast",
        "veo3-pro", "veo3-pro-frames", "veo3.1", "veo3.1-fast", "veo3.1-pro", "veo3.1-4k", "veo3.1-components",
    ]
    assert spec("veo2").fixed == {"duration": 8, "resolution": "720p", "audio": False, "aspect_ratio": "16:9"}
    assert spec("veo3.1-4k").fixed == {"duration": 8, "resolution": "4k", "audio": True}
    assert str(catalog.estimate_cost(spec("veo3.1-fast"), {})) == "1.2000"
    assert str(catalog.estimate_cost(spec("veo3.1-4k"), {})) == "4.8000"
    assert str(catalog.estimate_cost(spec("veo2"), {})) == "2.8000"
