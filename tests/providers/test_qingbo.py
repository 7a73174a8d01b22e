"""QWave (qingbo.dev): the mapping against the provider's own examples, full jobs against the sandbox, faults,
the catalog's rules and the status table."""

import json
import threading
import time
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import av
import pytest
from PIL import ImageStat

from studio.providers import catalog
from studio.providers.base import GenerationRequest, ImageInput, ProviderError, State, ValidationFailed
from studio.providers.catalog import ImagesGiven
from studio.providers.qingbo import adapter
from studio.providers.qingbo.catalog import MODELS
from studio.sandbox.video import probe
from tests.conftest import sandbox_key, wait_for
from tests.helpers import png_bytes
from tests.providers.support import client_for_sandbox, download, run_to_end

SLUG = "qingbo"
RED, BLUE, GREEN = (220, 20, 20), (20, 20, 220), (20, 200, 20)
COLOUR_TOLERANCE = 35

SEED_REQUEST = {
    "model": "veo-3.1",
    "action": "generate",
    "prompt": "A golden retriever running on a beach at sunset, cinematic lighting, slow motion",
    "aspect_ratio": "16:9",
    "duration": 8,
    "resolution": "1080p",
}
SEED_RESPONSE = {
    "task_id": "task-wave1775285160b950328499",
    "model": "veo-3.1",
    "action": "generate",
    "status": "queued",
    "created_at": 1775285160040,
    "progress": 0,
}


def spec(model_id):
    return next(s for s in MODELS if s.model_id == model_id)


def image(content, url="https://img.example/frame.png"):
    return ImageInput(content=content, mime="image/png", url=url)


def validated_request(model, params, *, first=None, last=None, references=(), callback_url=""):
    """A request as the job layer builds it: parameters validated against the catalog, defaults filled in."""
    images = ImagesGiven(first_frame=first is not None, last_frame=last is not None,
                         references=len(references))
    clean = catalog.validate(spec(model), params, images)
    return GenerationRequest(model=model, params=clean, first_frame=first, last_frame=last,
                             reference_images=list(references), callback_url=callback_url)


# The provider's own examples ---------------------------------------------------------------------


def test_seed_example_request_is_sent_exactly():
    params = {k: SEED_REQUEST[k] for k in ("prompt", "aspect_ratio", "duration", "resolution")}
    call = adapter.build_submit(GenerationRequest(model="veo-3.1", params=params))
    assert (call.method, call.path) == ("POST", "v1/tasks")
    assert call.json == SEED_REQUEST
    assert list(call.json) == list(SEED_REQUEST)


def test_person_generation_is_sent_only_when_chosen():
    params = {k: SEED_REQUEST[k] for k in ("prompt", "aspect_ratio", "duration", "resolution")}
    # Not chosen: validation fills in nothing, and no `extra` is sent; the provider applies its own default.
    clean = catalog.validate(spec("veo-3.1"), params)
    assert clean == params
    body = adapter.build_submit(GenerationRequest(model="veo-3.1", params=clean)).json
    assert body == SEED_REQUEST
    assert "extra" not in body
    # Chosen: sent as extra.personGeneration.
    clean = catalog.validate(spec("veo-3.1"), {**params, "person_generation": "allow_adult"})
    assert clean == {**params, "person_generation": "allow_adult"}
    body = adapter.build_submit(GenerationRequest(model="veo-3.1", params=clean)).json
    assert body == {**SEED_REQUEST, "extra": {"personGeneration": "allow_adult"}}


def test_seed_example_response_parses():
    submitted = adapter.parse_submit(SEED_RESPONSE)
    assert submitted.task_id == "task-wave1775285160b950328499"
    assert (submitted.raw_status, submitted.state) == ("queued", State.QUEUED)
    assert submitted.created_at == pytest.approx(1775285160.040)
    assert submitted.data == {}


def test_created_at_in_seconds_is_read_as_seconds():
    submitted = adapter.parse_submit({**SEED_RESPONSE, "created_at": 1775285160})
    assert submitted.created_at == 1775285160


def test_submit_answer_without_task_id_is_an_error():
    with pytest.raises(ProviderError, match="task_id"):
        adapter.parse_submit({"status": "queued"})


STATUS_QUEUED = {"task_id": "task-wave1", "model": "veo-3.1", "action": "generate", "status": "queued",
                 "created_at": 1775285160040, "start_time": None, "completed_at": None, "progress": 0,
                 "result": None, "error": None}
STATUS_PROCESSING = {**STATUS_QUEUED, "status": "processing", "start_time": 1775285162000, "progress": 45}
STATUS_COMPLETED = {
    **STATUS_QUEUED, "status": "completed", "start_time": 1775285162000, "completed_at": 1775285230000,
    "progress": 100,
    "result": {"images": [], "videos": [
        {"url": "https://cdn.qingbo.dev/v/a.mp4", "expires_at": 1775371630000},
        {"url": "https://cdn.qingbo.dev/v/b.mp4", "expires_at": 1775371630000},
    ]},
}
STATUS_FAILED = {**STATUS_QUEUED, "status": "failed", "progress": 0,
                 "error": {"message": "Content blocked by safety filter"}}
STATUS_CANCELLED = {**STATUS_QUEUED, "status": "cancelled"}


def test_queued_status_parses():
    update = adapter.parse_status(STATUS_QUEUED)
    assert (update.state, update.raw_status, update.progress) == (State.QUEUED, "queued", 0)
    assert update.video_urls == [] and update.error == ""


def test_processing_status_carries_progress():
    update = adapter.parse_status(STATUS_PROCESSING)
    assert (update.state, update.progress) == (State.RUNNING, 45)
    assert not update.is_terminal


def test_completed_status_gives_every_video_url():
    update = adapter.parse_status(STATUS_COMPLETED)
    assert update.state == State.SUCCEEDED and update.progress == 100
    assert update.video_urls == ["https://cdn.qingbo.dev/v/a.mp4", "https://cdn.qingbo.dev/v/b.mp4"]


def test_failed_status_carries_the_providers_message():
    update = adapter.parse_status(STATUS_FAILED)
    assert (update.state, update.error) == (State.FAILED, "Content blocked by safety filter")


def test_failed_status_without_a_message_still_explains():
    update = adapter.parse_status({**STATUS_FAILED, "error": None})
    assert update.state == State.FAILED and "failed" in update.error


def test_cancelled_status_is_terminal():
    update = adapter.parse_status(STATUS_CANCELLED)
    assert update.state == State.CANCELLED and update.is_terminal


def test_status_without_result_or_error_keys_parses():
    update = adapter.parse_status({"task_id": "task-wave1", "status": "processing"})
    assert (update.state, update.progress, update.video_urls) == (State.RUNNING, None, [])


def test_status_answer_without_status_is_a_transient_error():
    with pytest.raises(ProviderError) as caught:
        adapter.parse_status({"task_id": "task-wave1"})
    assert caught.value.transient


@pytest.mark.parametrize("raw, state", [
    ("queued", State.QUEUED),
    ("processing", State.RUNNING),
    ("completed", State.SUCCEEDED),
    ("failed", State.FAILED),
    ("cancelled", State.CANCELLED),
])
def test_status_table_maps_every_documented_value(raw, state):
    assert adapter.status_table[raw] == state
    # A completed task lists its videos; the other states ignore `result`.
    body = {**STATUS_QUEUED, "status": raw, "result": STATUS_COMPLETED["result"]}
    assert adapter.parse_status(body).state == state


def test_unknown_status_value_is_running_never_success():
    assert adapter.parse_status({**STATUS_QUEUED, "status": "moderating"}).state == State.RUNNING


def test_error_message_is_the_providers_own_words():
    body = {"error": {"message": "Insufficient balance", "code": 402}}
    assert adapter.error_message(402, body) == "Insufficient balance"


# Mapping details -----------------------------------------------------------------------------------


def test_action_and_image_fields_follow_the_images_given():
    first, last = image(b"a", "https://img/first.png"), image(b"b", "https://img/last.png")
    refs = [image(b"c", "https://img/r1.png"), image(b"d", "https://img/r2.png")]
    cases = [
        (validated_request("veo-3.1", {"prompt": "p"}), "generate", {}),
        (validated_request("veo-3.1", {"prompt": "p"}, first=first), "image2video",
         {"first_frame_image": "https://img/first.png"}),
        (validated_request("veo-3.1", {"prompt": "p"}, first=first, last=last), "first_last_frame",
         {"first_frame_image": "https://img/first.png", "last_frame_image": "https://img/last.png"}),
        (validated_request("veo-3.1", {"prompt": "p"}, references=refs), "reference",
         {"image_urls": ["https://img/r1.png", "https://img/r2.png"]}),
    ]
    for request, action, images in cases:
        body = adapter.build_submit(request).json
        assert body["action"] == action
        image_fields = ("first_frame_image", "last_frame_image", "image_urls")
        assert {k: v for k, v in body.items() if k in image_fields} == images


def test_every_optional_parameter_is_sent_under_its_documented_name():
    request = validated_request(
        "veo-3.1-fast",
        {"prompt": "p", "negative_prompt": "blur", "aspect_ratio": "9:16", "duration": "6", "seed": "7",
         "person_generation": "dont_allow"},
        callback_url="https://studio.example/hooks/qingbo/1",
    )
    assert adapter.build_submit(request).json == {
        "model": "veo-3.1-fast", "action": "generate", "prompt": "p", "aspect_ratio": "9:16", "duration": 6,
        "resolution": "720p", "negative_prompt": "blur", "seed": 7,
        "callback_url": "https://studio.example/hooks/qingbo/1", "extra": {"personGeneration": "dont_allow"},
    }


def test_status_and_cancel_calls():
    status = adapter.build_status("task-wave1", {})
    cancel = adapter.build_cancel("task-wave1", {})
    assert (status.method, status.path) == ("GET", "v1/tasks/task-wave1")
    assert (cancel.method, cancel.path, cancel.json) == ("POST", "v1/tasks/task-wave1/cancel", None)


# The catalog -----------------------------------------------------------------------------------------


def test_catalog_declares_the_three_models_with_their_documented_defaults():
    assert [(s.model_id, s.label, s.family) for s in MODELS] == [
        ("veo-3.1", "Veo 3.1", "Veo 3.1"), ("veo-3.1-fast", "Veo 3.1 Fast", "Veo 3.1 Fast"),
        ("veo-3.0", "Veo 3", "Veo 3")]
    for model in MODELS:
        clean = catalog.validate(model, {"prompt": "p"})
        assert clean == {"prompt": "p", "aspect_ratio": "16:9", "resolution": "720p", "duration": 8}
        assert model.param("person_generation").default is None
        assert model.fixed == {"audio": True} and model.param("audio") is None
        assert model.param("duration").choices == (4, 6, 8)
    assert spec("veo-3.0").param("resolution").choices == ("720p", "1080p")
    assert spec("veo-3.0").param("resolution").why == catalog.VEO_4K_WHY
    assert [s.model_id for s in MODELS if s.param("seed")] == ["veo-3.1", "veo-3.1-fast"]


def test_default_prices():
    assert catalog.estimate_cost(spec("veo-3.1"), {"resolution": "4k", "duration": 8}) == Decimal("4.80")
    assert catalog.estimate_cost(spec("veo-3.1"), {"resolution": "1080p", "duration": 8}) == Decimal("3.20")
    assert catalog.estimate_cost(spec("veo-3.1-fast"), {"duration": 4}) == Decimal("0.60")
    assert catalog.estimate_cost(spec("veo-3.0"), {"resolution": "720p", "duration": 6}) == Decimal("2.40")


RULE_CASES = [
    ("veo-3.1", {"resolution": "1080p", "duration": 4}, ImagesGiven(), "veo_hd_needs_8s"),
    ("veo-3.1-fast", {"resolution": "4k", "duration": 6}, ImagesGiven(), "veo_hd_needs_8s"),
    ("veo-3.0", {"resolution": "1080p", "duration": 6}, ImagesGiven(), "veo_hd_needs_8s"),
    ("veo-3.1-fast", {}, ImagesGiven(last_frame=True), "last_frame_needs_first"),
    ("veo-3.1", {}, ImagesGiven(first_frame=True, references=1), "references_exclude_frames"),
    ("veo-3.1", {"aspect_ratio": "9:16"}, ImagesGiven(references=2), "veo_references_need_16x9_8s"),
    ("veo-3.1-fast", {"duration": 6}, ImagesGiven(references=1), "veo_references_need_16x9_8s"),
    ("veo-3.0", {"resolution": "4k"}, ImagesGiven(), "resolution_not_allowed"),
    ("veo-3.0", {"seed": 1}, ImagesGiven(), "unknown_parameter"),
    ("veo-3.1", {"audio": False}, ImagesGiven(), "unknown_parameter"),
    ("veo-3.0", {}, ImagesGiven(first_frame=True, last_frame=True), "last_frame_not_accepted"),
    ("veo-3.0", {}, ImagesGiven(references=1), "references_not_accepted"),
    ("veo-3.1", {}, ImagesGiven(references=4), "too_many_references"),
]


@pytest.mark.parametrize("model, params, images, code", RULE_CASES)
def test_catalog_refuses_a_breaking_request_before_sending(sandbox, model, params, images, code):
    with pytest.raises(ValidationFailed) as caught:
        catalog.validate(spec(model), {"prompt": "a fox", **params}, images)
    assert code in [v.code for v in caught.value.violations]
    assert sandbox.count(SLUG) == 0


def test_every_catalog_rule_has_a_refusal_case():
    declared = {rule.code for model in MODELS for rule in model.rules}
    assert declared - {code for _, _, _, code in RULE_CASES} == set()


# Full jobs against the sandbox ------------------------------------------------------------------


def run_job(sandbox, tmp_path, request):
    with client_for_sandbox(sandbox, SLUG) as client:
        submitted, final = run_to_end(client, request)
        assert final.state == State.SUCCEEDED, final.error
        assert len(final.video_urls) == 1
        path = tmp_path / f"{submitted.task_id}.mp4"
        assert download(client, final.video_urls[0], path) == 200
    return submitted, path


def end_frames(path):
    """Mean colours of the first and last decoded frames."""
    first = last = None
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            if first is None:
                first = frame.to_image()
            last = frame
    return ImageStat.Stat(first).mean, ImageStat.Stat(last.to_image()).mean


def assert_colour(actual, expected):
    assert all(abs(a - e) <= COLOUR_TOLERANCE for a, e in zip(actual, expected)), (actual, expected)


def assert_video(path, width, height, seconds):
    info = probe(path)
    assert (info["width"], info["height"], info["has_audio"]) == (width, height, True)
    assert info["duration"] == pytest.approx(seconds, abs=0.15)


def test_text_only_job_end_to_end(sandbox, tmp_path):
    request = validated_request("veo-3.1", {"prompt": "A lighthouse in fog", "resolution": "720p",
                                            "duration": 4, "seed": 42, "negative_prompt": "people"})
    submitted, path = run_job(sandbox, tmp_path, request)
    assert submitted.task_id.startswith("task-wave")
    assert sandbox.submits(SLUG)[0]["json"] == {
        "model": "veo-3.1", "action": "generate", "prompt": "A lighthouse in fog", "aspect_ratio": "16:9",
        "duration": 4, "resolution": "720p", "negative_prompt": "people", "seed": 42,
    }
    assert_video(path, 1280, 720, 4)
    assert_status_shape(sandbox, submitted.task_id)


def assert_status_shape(sandbox, task_id):
    """The finished task as GET v1/tasks/{id} shows it: every documented key, times in milliseconds."""
    with client_for_sandbox(sandbox, SLUG) as client:
        asked_at = time.time() * 1000
        body = client.send(adapter.build_status(task_id, {}))
    assert set(body) == {"task_id", "model", "action", "status", "created_at", "start_time", "completed_at",
                         "progress", "result", "error"}
    assert (body["status"], body["progress"], body["error"]) == ("completed", 100, None)
    assert 10**12 < body["created_at"] <= body["start_time"] <= body["completed_at"]
    assert body["result"]["images"] == []
    expires_at = body["result"]["videos"][0]["expires_at"]
    assert expires_at - asked_at == pytest.approx(24 * 3600 * 1000, abs=5000)


def test_first_frame_job_starts_on_the_image(sandbox, tmp_path, image_url):
    url = image_url(png_bytes(RED))
    request = validated_request("veo-3.0", {"prompt": "The red wall cracks", "aspect_ratio": "9:16",
                                            "duration": 4}, first=image(png_bytes(RED), url))
    _, path = run_job(sandbox, tmp_path, request)
    assert sandbox.submits(SLUG)[0]["json"] == {
        "model": "veo-3.0", "action": "image2video", "prompt": "The red wall cracks", "aspect_ratio": "9:16",
        "duration": 4, "resolution": "720p",
        "first_frame_image": url,
    }
    assert_video(path, 720, 1280, 4)
    assert_colour(end_frames(path)[0], RED)


def test_first_and_last_frame_job_starts_and_ends_on_the_images(sandbox, tmp_path, image_url):
    first_url, last_url = image_url(png_bytes(RED)), image_url(png_bytes(BLUE))
    request = validated_request("veo-3.1-fast", {"prompt": "Red turns blue", "duration": 4},
                                first=image(png_bytes(RED), first_url), last=image(png_bytes(BLUE), last_url))
    _, path = run_job(sandbox, tmp_path, request)
    assert sandbox.submits(SLUG)[0]["json"] == {
        "model": "veo-3.1-fast", "action": "first_last_frame", "prompt": "Red turns blue",
        "aspect_ratio": "16:9", "duration": 4, "resolution": "720p",
        "first_frame_image": first_url, "last_frame_image": last_url,
    }
    assert_video(path, 1280, 720, 4)
    first, last = end_frames(path)
    assert_colour(first, RED)
    assert_colour(last, BLUE)


def test_reference_images_job_end_to_end(sandbox, tmp_path, image_url):
    urls = [image_url(png_bytes(GREEN)), image_url(png_bytes(RED))]
    params = {"prompt": "A green robot and a red ball", "person_generation": "dont_allow"}
    request = validated_request("veo-3.1", params,
                                references=[image(png_bytes(GREEN), urls[0]), image(png_bytes(RED), urls[1])])
    _, path = run_job(sandbox, tmp_path, request)
    assert sandbox.submits(SLUG)[0]["json"] == {
        "model": "veo-3.1", "action": "reference", "prompt": "A green robot and a red ball",
        "aspect_ratio": "16:9", "duration": 8, "resolution": "720p",
        "extra": {"personGeneration": "dont_allow"}, "image_urls": urls,
    }
    assert_video(path, 1280, 720, 8)


# The sandbox is as strict as the service --------------------------------------------------------------

VALID = {"model": "veo-3.1", "prompt": "p", "duration": 4}
STRICT_CASES = [
    ({**VALID, "audio": True}, "Unknown field: audio"),
    ({"model": "veo-3.1"}, "prompt is required"),
    ({**VALID, "model": "veo-2"}, "model must be one of"),
    ({**VALID, "duration": "4"}, "duration must be one of 4, 6, 8"),
    ({**VALID, "duration": 5}, "duration must be one of 4, 6, 8"),
    ({**VALID, "aspect_ratio": "1:1"}, "aspect_ratio must be one of 16:9, 9:16"),
    ({**VALID, "resolution": "1080p"}, "resolution 1080p requires duration 8"),
    ({**VALID, "model": "veo-3.0", "resolution": "4k", "duration": 8},
     "resolution must be one of 720p, 1080p"),
    ({**VALID, "model": "veo-3.0", "seed": 1}, "seed is only supported by the VEO 3.1 series"),
    ({**VALID, "seed": "1"}, "seed must be an integer"),
    ({**VALID, "action": "animate"}, "action must be one of"),
    ({**VALID, "extra": {"personGeneration": "everyone"}}, "extra.personGeneration must be one of"),
    ({**VALID, "extra": {"enhancePrompt": True}}, "Unknown field: extra.enhancePrompt"),
    ({**VALID, "callback_url": "studio.example/hook"}, "callback_url must be an http(s) URL"),
    ({**VALID, "first_frame_image": "https://img/a.png"}, "first_frame_image is not used by action generate"),
    ({**VALID, "action": "image2video"}, "action image2video requires first_frame_image"),
    ({**VALID, "action": "first_last_frame", "first_frame_image": "https://img/a.png"},
     "action first_last_frame requires last_frame_image"),
    ({**VALID, "model": "veo-3.0", "action": "first_last_frame", "first_frame_image": "https://img/a.png",
      "last_frame_image": "https://img/b.png"},
     "action first_last_frame is only supported by the VEO 3.1 series"),
    ({**VALID, "action": "reference", "duration": 8, "image_urls": ["https://img/a.png"] * 4},
     "image_urls must be a list of 1 to 3"),
    ({**VALID, "action": "reference", "duration": 8, "aspect_ratio": "9:16",
      "image_urls": ["https://img/a.png"]},
     "Reference images require aspect_ratio 16:9 and duration 8"),
    ({**VALID, "action": "reference", "image_urls": ["https://img/a.png"]},
     "Reference images require aspect_ratio 16:9 and duration 8"),
]


@pytest.mark.parametrize("body, message", STRICT_CASES)
def test_sandbox_refuses_what_the_service_refuses(sandbox, http, body, message):
    response = http.post(f"{sandbox.base_url(SLUG)}/v1/tasks", json=body,
                         headers={"Authorization": f"Bearer {sandbox_key(SLUG)}"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == 400
    assert message in response.json()["error"]["message"]
    assert sandbox.state.tasks == {}


def test_sandbox_answers_the_seed_request_in_the_seed_shape(sandbox, http):
    response = http.post(f"{sandbox.base_url(SLUG)}/v1/tasks", json=SEED_REQUEST,
                         headers={"Authorization": f"Bearer {sandbox_key(SLUG)}"})
    body = response.json()
    assert response.status_code == 200
    assert set(body) == set(SEED_RESPONSE)
    assert {k: body[k] for k in ("model", "action", "status", "progress")} == {
        "model": "veo-3.1", "action": "generate", "status": "queued", "progress": 0}
    assert body["task_id"].startswith("task-wave")
    assert body["created_at"] == pytest.approx(time.time() * 1000, abs=5000)


# Faults ---------------------------------------------------------------------------------------------------


def text_request(model="veo-3.1"):
    return validated_request(model, {"prompt": "A quiet harbour", "duration": 4})


def submit_error(client, request=None):
    with pytest.raises(ProviderError) as caught:
        client.submit(request or text_request())
    return caught.value


def test_unknown_key_is_permanent(sandbox):
    with client_for_sandbox(sandbox, SLUG, key="not-a-sandbox-key") as client:
        error = submit_error(client)
    assert (error.permanent, error.status_code, error.message) == (True, 401, "Invalid API key.")


def test_account_without_balance_is_permanent(sandbox):
    with client_for_sandbox(sandbox, SLUG, key=sandbox_key(SLUG) + "-empty") as client:
        error = submit_error(client)
    assert (error.permanent, error.status_code, error.message) == (True, 402, "Insufficient balance.")


def test_invalid_request_is_permanent_with_the_sandboxs_message(sandbox):
    # Straight past the catalog: 4k is not on Veo 3.
    request = GenerationRequest(model="veo-3.0", params={"prompt": "p", "resolution": "4k", "duration": 8})
    with client_for_sandbox(sandbox, SLUG) as client:
        error = submit_error(client, request)
    assert error.permanent and error.status_code == 400
    assert error.message == "resolution must be one of 720p, 1080p for veo-3.0; got '4k'."


def test_unknown_task_is_permanent_not_found(sandbox):
    with client_for_sandbox(sandbox, SLUG) as client, pytest.raises(ProviderError) as caught:
        client.status("task-wave0000", {})
    assert caught.value.permanent and caught.value.status_code == 404
    assert caught.value.message == "Task not found: task-wave0000"


def test_rate_limit_is_transient_with_retry_after(sandbox):
    sandbox.fault("rate_limit", provider=SLUG, on="submit", retry_after=3)
    with client_for_sandbox(sandbox, SLUG) as client:
        error = submit_error(client)
    assert error.transient and error.retry_after == 3
    assert "Too many requests" in error.message


def test_rate_limit_with_a_date_gives_the_delay(sandbox):
    sandbox.fault("rate_limit", provider=SLUG, on="submit", retry_after=3, retry_after_date=True)
    with client_for_sandbox(sandbox, SLUG) as client:
        error = submit_error(client)
    assert error.transient and 1.5 <= error.retry_after <= 3.5


def test_server_error_on_submit_is_ambiguous(sandbox):
    sandbox.fault("server_error", provider=SLUG, on="submit")
    with client_for_sandbox(sandbox, SLUG) as client:
        error = submit_error(client)
    assert error.ambiguous and not error.permanent
    assert "Upstream service error." in error.message


def test_server_error_on_status_is_transient(sandbox):
    with client_for_sandbox(sandbox, SLUG) as client:
        submitted = client.submit(text_request())
        sandbox.fault("server_error", provider=SLUG, on="status")
        with pytest.raises(ProviderError) as caught:
            client.status(submitted.task_id, submitted.data)
    assert caught.value.transient and caught.value.status_code == 500


def test_hang_after_accept_is_ambiguous_and_the_job_exists(sandbox, settings):
    settings.STUDIO_PROVIDER_READ_TIMEOUT = 0.5
    sandbox.fault("hang_after_accept", provider=SLUG, on="submit", seconds=2)
    with client_for_sandbox(sandbox, SLUG) as client:
        error = submit_error(client)
    assert error.ambiguous
    assert len(sandbox.submits(SLUG)) == 1
    assert len(sandbox.state.tasks) == 1


def test_malformed_answer_on_submit_is_ambiguous(sandbox):
    sandbox.fault("malformed_json", provider=SLUG, on="submit")
    with client_for_sandbox(sandbox, SLUG) as client:
        error = submit_error(client)
    assert error.ambiguous


def test_malformed_answer_on_status_is_transient(sandbox):
    with client_for_sandbox(sandbox, SLUG) as client:
        submitted = client.submit(text_request())
        sandbox.fault("malformed_json", provider=SLUG, on="status")
        with pytest.raises(ProviderError) as caught:
            client.status(submitted.task_id, submitted.data)
    assert caught.value.transient


def test_failed_job_carries_the_providers_message(sandbox):
    sandbox.fault("fail_job", provider=SLUG, message="Veo rejected the prompt (safety)")
    with client_for_sandbox(sandbox, SLUG) as client:
        _, final = run_to_end(client, text_request())
    assert (final.state, final.raw_status) == (State.FAILED, "failed")
    assert final.error == "Veo rejected the prompt (safety)"
    assert final.video_urls == []


def test_never_finishing_job_stays_running(sandbox):
    sandbox.fault("never_finish", provider=SLUG)
    with client_for_sandbox(sandbox, SLUG) as client:
        submitted = client.submit(text_request())
        time.sleep(3 * sandbox.state.job_seconds)
        update = client.status(submitted.task_id, submitted.data)
    assert (update.state, update.raw_status) == (State.RUNNING, "processing")
    assert update.progress < 100


def test_expired_link_is_renewed_by_a_fresh_status(sandbox, tmp_path):
    sandbox.fault("expire_link", provider=SLUG, status=403)
    with client_for_sandbox(sandbox, SLUG) as client:
        submitted, final = run_to_end(client, text_request())
        assert download(client, final.video_urls[0], tmp_path / "dead.mp4") == 403
        fresh = client.status(submitted.task_id, submitted.data)
        assert fresh.video_urls != final.video_urls
        assert download(client, fresh.video_urls[0], tmp_path / "fresh.mp4") == 200
    assert probe(tmp_path / "fresh.mp4")["duration"] == pytest.approx(4, abs=0.15)


# Cancelling and the webhook ---------------------------------------------------------------------------


def test_queued_task_can_be_cancelled(sandbox):
    sandbox.set_job_seconds(8)
    with client_for_sandbox(sandbox, SLUG) as client:
        submitted = client.submit(text_request())
        answer = client.cancel(submitted.task_id, submitted.data)
        update = client.status(submitted.task_id, submitted.data)
    assert answer["status"] == "cancelled"
    assert (update.state, update.raw_status) == (State.CANCELLED, "cancelled")
    assert sandbox.requests(SLUG)[1]["path"] == f"/v1/tasks/{submitted.task_id}/cancel"


def test_running_task_cannot_be_cancelled(sandbox):
    with client_for_sandbox(sandbox, SLUG) as client:
        submitted = client.submit(text_request())
        time.sleep(0.5 * sandbox.state.job_seconds)
        with pytest.raises(ProviderError) as caught:
            client.cancel(submitted.task_id, submitted.data)
    assert caught.value.permanent and caught.value.status_code == 400
    assert caught.value.message == "Only queued tasks can be cancelled; this task is processing."


class _Receiver(BaseHTTPRequestHandler):
    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        self.server.received.append((self.path, json.loads(self.rfile.read(length))))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def webhook_receiver():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    server.received = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def test_callback_url_receives_the_finished_task_once(sandbox, webhook_receiver):
    hook = f"http://127.0.0.1:{webhook_receiver.server_address[1]}/hooks/qingbo/17"
    request = validated_request("veo-3.1", {"prompt": "A kite", "duration": 4}, callback_url=hook)
    with client_for_sandbox(sandbox, SLUG) as client:
        submitted, final = run_to_end(client, request)
        status_body = client.send(adapter.build_status(submitted.task_id, submitted.data))
    assert sandbox.submits(SLUG)[0]["json"]["callback_url"] == hook
    wait_for(lambda: webhook_receiver.received, timeout=10)
    time.sleep(0.3)
    assert len(webhook_receiver.received) == 1
    path, payload = webhook_receiver.received[0]
    assert path == "/hooks/qingbo/17"
    assert set(payload) == set(status_body)
    assert (payload["task_id"], payload["status"]) == (submitted.task_id, "completed")
    update = adapter.parse_status(payload)
    assert update.state == State.SUCCEEDED and len(update.video_urls) == 1


def test_no_callback_url_is_sent_without_one(sandbox):
    with client_for_sandbox(sandbox, SLUG) as client:
        client.submit(text_request())
    assert "callback_url" not in sandbox.submits(SLUG)[0]["json"]
