"""UniAll (New-API, Vidu Q3): the seed's examples, full jobs in both status shapes, faults, catalog rules."""

import copy
import time
from decimal import Decimal

import av
import httpx
import pytest
from PIL import ImageStat

from studio.providers import uniall
from studio.providers.base import GenerationRequest, ImageInput, ProviderError, State, ValidationFailed
from studio.providers.catalog import ImagesGiven, estimate_cost, validate
from studio.providers.registry import adapter_for, model_spec
from studio.sandbox.video import probe
from tests.conftest import sandbox_key
from tests.helpers import png_bytes
from tests.providers.support import client_for_sandbox, download, run_to_end

SLUG = "uniall"
adapter = uniall.adapter
RED, BLUE = (220, 20, 20), (20, 40, 220)
VIDEO_URL = "https://cdn.example.com/task_xxxxx.mp4"
OTHER_URL = "https://cdn.example.com/task_xxxxx-2.mp4"

# The seed's request examples, verbatim.
SEED_TEXT_TO_VIDEO = {
    "model": "viduq3p-720p",
    "prompt": "电影感航拍镜头,日出时分掠过未来海滨城市,光线柔和,镜头缓慢推进。",
    "aspect_ratio": "16:9",
    "duration": 5,
    "extra_body": {"audio": False, "seed": 42, "bgm": False},
}
SEED_SINGLE_IMAGE = {
    "model": "viduq3t-540p",
    "prompt": "人物缓慢抬头并看向镜头,动作自然,镜头轻微前推。",
    "image": "https://example.com/source.png",
    "duration": 5,
    "extra_body": {"seed": 42},
}
SEED_FIRST_LAST = {
    "model": "viduq3p-1080p-offpeak",
    "prompt": "人物从正面自然转向侧面,身份保持稳定,动作连贯。",
    "image": "https://example.com/head.png",
    "last_image": "https://example.com/tail.png",
    "duration": 6,
}
SEED_REFERENCES = {
    "model": "viduq3p-mix-720p",
    "prompt": "A @Image1 walking through a beach in the visual style of @Image2",
    "reference_image_urls": ["https://example.com/ref-1.png", "https://example.com/ref-2.png"],
    "aspect_ratio": "16:9",
    "duration": 5,
    "extra_body": {"audio": False, "seed": 42},
}
SEED_SUBMIT_RESPONSE = {
    "id": "task_xxxxx",
    "task_id": "task_xxxxx",
    "object": "video.generation.job",
    "model": "viduq3p-540p",
    "status": "queued",
    "progress": 0,
    "created_at": 1774507626,
}


# Helpers ---------------------------------------------------------------------------------------------


def spec(model_id):
    return model_spec(SLUG, model_id)


def url_image(url, content=b""):
    return ImageInput(content=content, mime="image/png", url=url)


def published(image_url, color):
    content = png_bytes(color)
    return url_image(image_url(content), content)


def request_for(model_id, params, *, first=None, last=None, references=()):
    """A request as the studio builds it: validated against the catalog, defaults filled in."""
    given = ImagesGiven(first_frame=first is not None, last_frame=last is not None,
                        references=len(references))
    clean = validate(spec(model_id), {"prompt": "A lighthouse at dusk", **params}, given)
    return GenerationRequest(model=model_id, params=clean, first_frame=first, last_frame=last,
                             reference_images=list(references))


def short_text_request():
    return request_for("viduq3t-540p", {"duration": 1, "audio": False})


def newapi_key():
    return sandbox_key(SLUG) + "-newapi"


def run_and_download(client, request, tmp_path):
    submitted, final = run_to_end(client, request)
    assert final.state == State.SUCCEEDED, final.error
    path = tmp_path / "video.mp4"
    assert download(client, final.video_urls[0], path) == 200
    return submitted, final, path


def edge_colours(path):
    """Mean RGB of the first and the final frame."""
    with av.open(str(path)) as container:
        frames = [frame.to_image() for frame in container.decode(video=0)]
    return ImageStat.Stat(frames[0]).mean, ImageStat.Stat(frames[-1]).mean


def assert_colour(actual, expected, tolerance=35):
    close = all(abs(a - e) <= tolerance for a, e in zip(actual, expected, strict=True))
    assert close, f"{actual} is not close to {expected}"


def assert_video(path, width, height, seconds, audio):
    info = probe(path)
    assert (info["width"], info["height"]) == (width, height)
    assert info["duration"] == pytest.approx(seconds, abs=0.15)
    assert info["has_audio"] is audio


def post_raw(sandbox, body, key=None):
    return httpx.post(f"{sandbox.base_url(SLUG)}/v1/video/generations", json=body,
                      headers={"Authorization": f"Bearer {key or sandbox_key(SLUG)}"}, timeout=10)


# 1. The seed's examples round-trip -----------------------------------------------------------------------


def test_seed_text_to_video_example_is_sent_without_bgm():
    request = request_for("viduq3p-720p", {
        "prompt": SEED_TEXT_TO_VIDEO["prompt"],
        "aspect_ratio": "16:9", "duration": 5, "audio": False, "seed": 42,
    })
    call = adapter.build_submit(request)
    # We never send bgm: Vidu Q3 does not support it. The seed's "bgm": false is deliberately left out.
    expected = copy.deepcopy(SEED_TEXT_TO_VIDEO)
    del expected["extra_body"]["bgm"]
    assert call.json == expected == {**SEED_TEXT_TO_VIDEO, "extra_body": {"audio": False, "seed": 42}}
    assert (call.method, call.path) == ("POST", "v1/video/generations")


def test_seed_single_image_example_round_trips():
    # The seed sends neither aspect_ratio (documented as effective for text-to-video only) nor audio:
    # the request holds exactly those parameters, and build_submit sends exactly the parameters present.
    request = GenerationRequest(
        model="viduq3t-540p",
        params={"prompt": SEED_SINGLE_IMAGE["prompt"], "duration": 5, "seed": 42},
        first_frame=url_image("https://example.com/source.png"),
    )
    assert adapter.build_submit(request).json == SEED_SINGLE_IMAGE


def test_seed_first_last_frame_example_round_trips_without_extra_body():
    request = GenerationRequest(
        model="viduq3p-1080p-offpeak",
        params={"prompt": SEED_FIRST_LAST["prompt"], "duration": 6},
        first_frame=url_image("https://example.com/head.png"),
        last_frame=url_image("https://example.com/tail.png"),
    )
    assert adapter.build_submit(request).json == SEED_FIRST_LAST


def test_seed_reference_example_round_trips():
    references = [url_image(url) for url in SEED_REFERENCES["reference_image_urls"]]
    request = request_for("viduq3p-mix-720p", {
        "prompt": SEED_REFERENCES["prompt"],
        "aspect_ratio": "16:9", "duration": 5, "audio": False, "seed": 42,
    }, references=references)
    assert adapter.build_submit(request).json == SEED_REFERENCES


def test_seed_submit_response_parses():
    submitted = adapter.parse_submit(SEED_SUBMIT_RESPONSE)
    assert submitted.task_id == "task_xxxxx"
    assert (submitted.raw_status, submitted.state) == ("queued", State.QUEUED)
    assert submitted.created_at == 1774507626


def test_validated_defaults_are_sent_explicitly():
    call = adapter.build_submit(request_for("viduq3p-720p", {}))
    assert call.json == {"model": "viduq3p-720p", "prompt": "A lighthouse at dusk", "aspect_ratio": "16:9",
                         "duration": 5, "extra_body": {"audio": True}}


def test_extra_body_is_left_out_when_empty():
    request = GenerationRequest(model="viduq3p-720p", params={"prompt": "x", "duration": 3})
    assert adapter.build_submit(request).json == {"model": "viduq3p-720p", "prompt": "x", "duration": 3}


def test_image_without_url_is_refused_before_sending():
    request = GenerationRequest(model="viduq3p-720p", params={"prompt": "x"},
                                first_frame=ImageInput(content=b"png", mime="image/png"))
    with pytest.raises(ProviderError) as exc:
        adapter.build_submit(request)
    assert exc.value.permanent


def test_status_path_uses_the_task_id():
    call = adapter.build_status("task_abc", {})
    assert (call.method, call.path, call.json) == ("GET", "v1/video/generations/task_abc", None)


def test_submit_answer_without_task_id_is_ambiguous():
    with pytest.raises(ProviderError) as exc:
        adapter.parse_submit({"object": "video.generation.job", "status": "queued"})
    assert exc.value.ambiguous


def test_flat_status_while_running():
    update = adapter.parse_status({**SEED_SUBMIT_RESPONSE, "status": "in_progress", "progress": 42,
                                   "video_url": None, "result": None, "error": None, "thumbnail_url": None})
    assert (update.state, update.raw_status, update.progress, update.video_urls) == (
        State.RUNNING, "in_progress", 42, [])


@pytest.mark.parametrize("fields, urls", [
    ({"video_url": VIDEO_URL, "result": {"outputs": [VIDEO_URL], "video_url": VIDEO_URL}}, [VIDEO_URL]),
    ({"video_url": None, "result": {"video_url": VIDEO_URL, "outputs": [OTHER_URL]}}, [VIDEO_URL]),
    ({"result": {"outputs": [VIDEO_URL, OTHER_URL]}}, [VIDEO_URL, OTHER_URL]),
    ({"result": {"outputs": [{"url": VIDEO_URL}]}}, [VIDEO_URL]),
])
def test_flat_completed_status_finds_the_video_url(fields, urls):
    body = {**SEED_SUBMIT_RESPONSE, "status": "completed", "progress": 100, "error": None,
            "thumbnail_url": "https://cdn.example.com/cover.jpg", **fields}
    update = adapter.parse_status(body)
    assert (update.state, update.progress, update.video_urls) == (State.SUCCEEDED, 100, urls)


@pytest.mark.parametrize("error", [
    "content moderation rejected the prompt",
    {"message": "content moderation rejected the prompt", "code": "moderation"},
])
def test_flat_failed_status_carries_the_error_text(error):
    update = adapter.parse_status({**SEED_SUBMIT_RESPONSE, "status": "failed", "error": error})
    assert (update.state, update.error) == (State.FAILED, "content moderation rejected the prompt")


def test_new_api_wrapper_success():
    body = {"code": "success", "message": "", "data": {
        "task_id": "task_xxxxx", "action": "textGenerate", "status": "SUCCESS", "progress": "100%",
        "result_url": VIDEO_URL, "fail_reason": ""}}
    update = adapter.parse_status(body)
    assert (update.state, update.raw_status, update.progress, update.video_urls) == (
        State.SUCCEEDED, "SUCCESS", 100, [VIDEO_URL])


def test_new_api_wrapper_in_progress_reads_percent_string():
    update = adapter.parse_status({"code": "success", "data": {"status": "IN_PROGRESS", "progress": "50%"}})
    assert (update.state, update.progress) == (State.RUNNING, 50)


def test_new_api_wrapper_failure_carries_fail_reason():
    update = adapter.parse_status({"code": "success", "data": {"status": "FAILURE", "progress": "100%",
                                                               "fail_reason": "upstream task failed"}})
    assert (update.state, update.error) == (State.FAILED, "upstream task failed")


@pytest.mark.parametrize("body", [
    {"task_id": "task_1", "status": "completed", "progress": 100, "video_url": None,
     "result": {"outputs": []}},
    {"code": "success", "data": {"status": "SUCCESS", "result_url": ""}},
])
def test_success_without_a_video_url_is_not_success(body):
    with pytest.raises(ProviderError) as exc:
        adapter.parse_status(body)
    assert exc.value.transient


def test_status_answer_without_status_is_transient():
    with pytest.raises(ProviderError) as exc:
        adapter.parse_status({"task_id": "task_1"})
    assert exc.value.transient


def test_new_api_wrapper_with_error_code_is_permanent():
    body = {"code": "task_not_exist", "message": "task_not_exist", "data": None}
    with pytest.raises(ProviderError) as exc:
        adapter.check_body(200, body)
    assert exc.value.permanent and exc.value.message == "task_not_exist"


def test_success_wrapper_and_flat_answers_pass_the_body_check():
    adapter.check_body(200, {"code": "success", "message": "", "data": {"status": "QUEUED"}})
    adapter.check_body(200, {**SEED_SUBMIT_RESPONSE, "error": {"message": "x", "code": "y"}})


def test_error_message_reads_both_error_shapes():
    openai_like = {"error": {"message": "model viduq9 not found", "type": "invalid_request_error"}}
    new_api = {"code": "task_not_exist", "message": "", "data": None}
    assert adapter.error_message(400, openai_like) == "model viduq9 not found"
    assert adapter.error_message(404, new_api) == "task_not_exist"


# 2. Full jobs against the sandbox --------------------------------------------------------------------------


def test_text_to_video_job_in_the_flat_shape(sandbox, tmp_path):
    client = client_for_sandbox(sandbox, SLUG)
    request = request_for("viduq3t-540p", {"aspect_ratio": "9:16", "duration": 1, "seed": 7})
    submitted, final, path = run_and_download(client, request, tmp_path)
    assert sandbox.submits(SLUG)[0]["json"] == {
        "model": "viduq3t-540p", "prompt": "A lighthouse at dusk", "aspect_ratio": "9:16", "duration": 1,
        "extra_body": {"audio": True, "seed": 7},
    }
    assert submitted.task_id.startswith("task_") and submitted.created_at
    assert (final.raw_status, final.progress) == ("completed", 100)
    assert_video(path, 540, 960, 1, audio=True)


def test_text_to_video_job_in_the_new_api_shape(sandbox, tmp_path):
    client = client_for_sandbox(sandbox, SLUG, key=newapi_key())
    request = request_for("viduq3t-540p", {"aspect_ratio": "1:1", "duration": 1, "audio": False})
    _, final, path = run_and_download(client, request, tmp_path)
    assert sandbox.submits(SLUG)[0]["json"] == {
        "model": "viduq3t-540p", "prompt": "A lighthouse at dusk", "aspect_ratio": "1:1", "duration": 1,
        "extra_body": {"audio": False},
    }
    assert (final.raw_status, final.progress) == ("SUCCESS", 100)
    assert_video(path, 540, 540, 1, audio=False)


def test_first_frame_job_starts_on_the_image(sandbox, image_url, tmp_path):
    client = client_for_sandbox(sandbox, SLUG)
    first = published(image_url, RED)
    request = request_for("viduq3t-540p", {"duration": 1, "audio": False}, first=first)
    _, _, path = run_and_download(client, request, tmp_path)
    assert sandbox.submits(SLUG)[0]["json"] == {
        "model": "viduq3t-540p", "prompt": "A lighthouse at dusk", "image": first.url, "aspect_ratio": "16:9",
        "duration": 1, "extra_body": {"audio": False},
    }
    assert_video(path, 960, 540, 1, audio=False)
    assert_colour(edge_colours(path)[0], RED)


def test_first_and_last_frame_job_in_the_new_api_shape(sandbox, image_url, tmp_path):
    client = client_for_sandbox(sandbox, SLUG, key=newapi_key())
    first, last = published(image_url, RED), published(image_url, BLUE)
    request = request_for("viduq3p-540p", {"duration": 1, "seed": 3}, first=first, last=last)
    _, final, path = run_and_download(client, request, tmp_path)
    assert sandbox.submits(SLUG)[0]["json"] == {
        "model": "viduq3p-540p", "prompt": "A lighthouse at dusk", "image": first.url, "last_image": last.url,
        "aspect_ratio": "16:9", "duration": 1, "extra_body": {"audio": True, "seed": 3},
    }
    assert final.raw_status == "SUCCESS"
    assert_video(path, 960, 540, 1, audio=True)
    first_colour, last_colour = edge_colours(path)
    assert_colour(first_colour, RED)
    assert_colour(last_colour, BLUE)


def test_reference_mix_job(sandbox, image_url, tmp_path):
    client = client_for_sandbox(sandbox, SLUG)
    references = [published(image_url, RED), published(image_url, BLUE)]
    request = request_for("viduq3p-mix-720p", {"duration": 1, "audio": False}, references=references)
    _, _, path = run_and_download(client, request, tmp_path)
    assert sandbox.submits(SLUG)[0]["json"] == {
        "model": "viduq3p-mix-720p", "prompt": "A lighthouse at dusk",
        "reference_image_urls": [image.url for image in references], "aspect_ratio": "16:9", "duration": 1,
        "extra_body": {"audio": False},
    }
    assert_video(path, 1280, 720, 1, audio=False)


# 3. Faults ----------------------------------------------------------------------------------------------


def test_unknown_key_is_refused_permanently(sandbox):
    client = client_for_sandbox(sandbox, SLUG, key="sk-live-not-ours")
    with pytest.raises(ProviderError) as exc:
        client.submit(short_text_request())
    assert exc.value.permanent and exc.value.status_code == 401
    assert exc.value.message == "Invalid API key."


@pytest.mark.parametrize("suffix", ["-empty", "-newapi-empty"])
def test_account_without_balance_is_refused_permanently(sandbox, suffix):
    client = client_for_sandbox(sandbox, SLUG, key=sandbox_key(SLUG) + suffix)
    with pytest.raises(ProviderError) as exc:
        client.submit(short_text_request())
    assert exc.value.permanent and exc.value.status_code == 402
    assert exc.value.message == "Insufficient balance."


def test_invalid_request_is_refused_permanently_in_the_sandbox_words(sandbox, image_url):
    # Bypasses the catalog on purpose: a last frame without a first frame reaches the provider.
    request = GenerationRequest(model="viduq3t-540p", params={"prompt": "x", "duration": 1},
                                last_frame=published(image_url, BLUE))
    with pytest.raises(ProviderError) as exc:
        client_for_sandbox(sandbox, SLUG).submit(request)
    assert exc.value.permanent and exc.value.status_code == 400
    assert exc.value.message == "last_image requires image"
    assert not sandbox.state.tasks


BASE = {"model": "viduq3t-540p", "prompt": "x", "duration": 1}


@pytest.mark.parametrize("body, message", [
    ({**BASE, "extra_body": {"bgm": True}}, "bgm is not supported on Vidu Q3"),
    ({**BASE, "negative_prompt": "blur"}, "Unknown field(s): negative_prompt"),
    ({**BASE, "extra_body": {"watermark": False}}, "Unknown extra_body field(s): watermark"),
    ({**BASE, "extra_body": {"audio": "yes"}}, "extra_body.audio must be true or false"),
    ({**BASE, "extra_body": {"seed": "42"}}, "extra_body.seed must be an integer"),
    ({**BASE, "model": "viduq2-720p"}, "model 'viduq2-720p' is not supported"),
    ({**BASE, "prompt": ""}, "prompt is required"),
    ({**BASE, "duration": 17}, "duration must be a whole number of seconds from 1 to 16"),
    ({**BASE, "duration": 0}, "duration must be a whole number of seconds from 1 to 16"),
    ({**BASE, "duration": "5s"}, "duration must be a whole number of seconds from 1 to 16"),
    ({**BASE, "duration": True}, "duration must be a whole number of seconds from 1 to 16"),
    ({**BASE, "aspect_ratio": "4:3"}, "aspect_ratio must be one of 16:9, 9:16, 1:1"),
    ({**BASE, "last_image": "https://example.com/tail.png"}, "last_image requires image"),
    ({**BASE, "image": "source.png"}, "image must be an http(s) image URL"),
    ({**BASE, "reference_image_urls": ["https://example.com/a.png"]}, "only supported on mix models"),
    ({**BASE, "model": "viduq3p-mix-720p"}, "needs reference_image_urls: a list of 1–4"),
    ({**BASE, "model": "viduq3p-mix-720p", "reference_image_urls": ["https://example.com/a.png"] * 5},
     "needs reference_image_urls: a list of 1–4"),
    ({**BASE, "model": "viduq3p-mix-720p", "reference_image_urls": ["https://example.com/a.png"],
      "image": "https://example.com/b.png"}, "takes reference_image_urls, not image"),
])
def test_sandbox_refuses_what_vidu_q3_refuses(sandbox, body, message):
    response = post_raw(sandbox, body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert message in error["message"] and error["type"] == "invalid_request_error"
    assert not sandbox.state.tasks


def test_sandbox_accepts_a_digit_string_duration_and_bgm_off(sandbox):
    response = post_raw(sandbox, {**BASE, "duration": "1", "extra_body": {"bgm": False, "audio": False}})
    assert response.status_code == 200
    body = response.json()
    assert body["task_id"] == body["id"] and body["task_id"].startswith("task_")
    assert (body["object"], body["status"], body["progress"]) == ("video.generation.job", "queued", 0)
    assert sandbox.state.tasks[body["task_id"]].render["duration"] == 1


@pytest.mark.parametrize("key, message", [
    (None, "Task task_missing not found."),
    ("newapi", "task_not_exist"),
])
def test_unknown_task_is_a_permanent_404(sandbox, key, message):
    client = client_for_sandbox(sandbox, SLUG, key=newapi_key() if key else None)
    with pytest.raises(ProviderError) as exc:
        client.status("task_missing", {})
    assert exc.value.permanent and exc.value.status_code == 404 and exc.value.message == message


def test_rate_limit_is_transient_with_retry_after(sandbox):
    sandbox.fault("rate_limit", provider=SLUG, on="submit", retry_after=3)
    with pytest.raises(ProviderError) as exc:
        client_for_sandbox(sandbox, SLUG).submit(short_text_request())
    assert exc.value.transient and exc.value.retry_after == 3 and exc.value.status_code == 429
    assert "Too many requests, slow down." in exc.value.message


def test_rate_limit_with_a_retry_after_date(sandbox):
    sandbox.fault("rate_limit", provider=SLUG, on="submit", retry_after=3, retry_after_date=True)
    with pytest.raises(ProviderError) as exc:
        client_for_sandbox(sandbox, SLUG).submit(short_text_request())
    assert exc.value.transient and exc.value.retry_after == pytest.approx(3, abs=1.1)


def test_server_error_on_submit_is_ambiguous(sandbox):
    sandbox.fault("server_error", provider=SLUG, on="submit", status=502)
    with pytest.raises(ProviderError) as exc:
        client_for_sandbox(sandbox, SLUG).submit(short_text_request())
    assert exc.value.ambiguous and not exc.value.permanent and exc.value.status_code == 502
    assert "Upstream service error." in exc.value.message


def test_server_error_on_status_is_transient(sandbox):
    client = client_for_sandbox(sandbox, SLUG)
    submitted = client.submit(short_text_request())
    sandbox.fault("server_error", provider=SLUG, on="status")
    with pytest.raises(ProviderError) as exc:
        client.status(submitted.task_id, submitted.data)
    assert exc.value.transient and exc.value.status_code == 500


def test_hang_after_accept_is_ambiguous_and_not_resent(sandbox, settings):
    settings.STUDIO_PROVIDER_READ_TIMEOUT = 0.5
    client = client_for_sandbox(sandbox, SLUG)
    sandbox.fault("hang_after_accept", provider=SLUG, on="submit", seconds=2)
    with pytest.raises(ProviderError) as exc:
        client.submit(short_text_request())
    assert exc.value.ambiguous and not exc.value.permanent
    assert len(sandbox.submits(SLUG)) == 1
    assert len(sandbox.state.tasks) == 1


def test_malformed_json_on_submit_is_ambiguous(sandbox):
    sandbox.fault("malformed_json", provider=SLUG, on="submit")
    with pytest.raises(ProviderError) as exc:
        client_for_sandbox(sandbox, SLUG).submit(short_text_request())
    assert exc.value.ambiguous
    assert len(sandbox.submits(SLUG)) == 1


def test_malformed_json_on_status_is_transient(sandbox):
    client = client_for_sandbox(sandbox, SLUG)
    submitted = client.submit(short_text_request())
    sandbox.fault("malformed_json", provider=SLUG, on="status")
    with pytest.raises(ProviderError) as exc:
        client.status(submitted.task_id, submitted.data)
    assert exc.value.transient


@pytest.mark.parametrize("key", [None, "newapi"])
def test_failed_job_carries_the_provider_message(sandbox, key):
    client = client_for_sandbox(sandbox, SLUG, key=newapi_key() if key else None)
    sandbox.fault("fail_job", provider=SLUG, message="Vidu rejected the prompt: sensitive content")
    _, final = run_to_end(client, short_text_request())
    assert final.state == State.FAILED and final.raw_status in ("failed", "FAILURE")
    assert final.error == "Vidu rejected the prompt: sensitive content"
    assert final.video_urls == []


def test_job_that_never_finishes_stays_running(sandbox):
    client = client_for_sandbox(sandbox, SLUG)
    sandbox.fault("never_finish", provider=SLUG)
    submitted = client.submit(short_text_request())
    time.sleep(3 * sandbox.state.job_seconds)
    update = client.status(submitted.task_id, submitted.data)
    assert (update.state, update.raw_status, update.video_urls) == (State.RUNNING, "in_progress", [])


@pytest.mark.parametrize("status", [403, 404])
def test_expired_link_is_renewed_by_a_fresh_status(sandbox, tmp_path, status):
    client = client_for_sandbox(sandbox, SLUG)
    sandbox.fault("expire_link", provider=SLUG, status=status)
    submitted, final = run_to_end(client, short_text_request())
    assert download(client, final.video_urls[0], tmp_path / "dead.mp4") == status
    fresh = client.status(submitted.task_id, submitted.data)
    assert fresh.video_urls[0] != final.video_urls[0]
    assert download(client, fresh.video_urls[0], tmp_path / "fresh.mp4") == 200


# 4. Catalog rules refuse a request before anything is sent ----------------------------------------------


@pytest.mark.parametrize("model_id, params, images, code", [
    ("viduq3p-720p", {}, ImagesGiven(last_frame=True), "last_frame_needs_first"),
    ("viduq3p-1080p-offpeak", {}, ImagesGiven(last_frame=True), "last_frame_needs_first"),
    ("viduq3p-mix-720p", {}, ImagesGiven(), "references_required"),
    ("viduq3p-mix-720p", {}, ImagesGiven(references=5), "too_many_references"),
    ("viduq3p-mix-720p", {}, ImagesGiven(first_frame=True, references=1), "first_frame_not_accepted"),
    ("viduq3p-mix-720p", {}, ImagesGiven(last_frame=True, references=1), "last_frame_not_accepted"),
    ("viduq3t-540p", {}, ImagesGiven(references=1), "references_not_accepted"),
    ("viduq3t-540p", {"duration": 17}, ImagesGiven(), "duration_out_of_range"),
    ("viduq3t-540p", {"duration": 0}, ImagesGiven(), "duration_out_of_range"),
    ("viduq3t-540p", {"aspect_ratio": "4:3"}, ImagesGiven(), "aspect_ratio_not_allowed"),
    ("viduq3t-540p", {"seed": -1}, ImagesGiven(), "seed_out_of_range"),
    ("viduq3t-540p", {"negative_prompt": "blur"}, ImagesGiven(), "unknown_parameter"),
    ("viduq3t-540p", {"resolution": "1080p"}, ImagesGiven(), "unknown_parameter"),
])
def test_catalog_refuses_a_breaking_request_before_sending(sandbox, model_id, params, images, code):
    with pytest.raises(ValidationFailed) as exc:
        validate(spec(model_id), {"prompt": "x", **params}, images)
    assert code in [v.code for v in exc.value.violations]
    assert sandbox.count(SLUG) == 0


def test_catalog_lists_every_documented_model_with_its_resolution():
    models = {s.model_id: s for s in adapter_for(SLUG).models}
    assert set(models) == {"viduq3p-540p", "viduq3p-720p", "viduq3p-1080p", "viduq3t-540p", "viduq3t-720p",
                           "viduq3t-1080p", "viduq3p-1080p-offpeak", "viduq3p-mix-720p"}
    for model_id, model in models.items():
        resolution = next(part for part in model_id.split("-") if part.endswith("p") and part[0].isdigit())
        assert model.fixed == {"resolution": resolution}
        assert model.param_names == ["aspect_ratio", "duration", "audio", "seed"]
        assert model.param("aspect_ratio").choices == ("16:9", "9:16", "1:1")
        assert "text-to-video" in model.param("aspect_ratio").help
        duration = model.param("duration")
        assert (duration.minimum, duration.maximum, duration.default) == (1, 16, 5)
        assert model.param("audio").default is True


def test_frames_on_plain_models_and_references_only_on_mix():
    plain, mix = spec("viduq3t-720p").images, spec("viduq3p-mix-720p").images
    assert (plain.first_frame, plain.last_frame, plain.max_references) == (True, True, 0)
    assert (mix.first_frame, mix.last_frame, mix.min_references, mix.max_references) == (False, False, 1, 4)


@pytest.mark.parametrize("model_id, per_second", [
    ("viduq3p-540p", "0.07"), ("viduq3p-720p", "0.10"), ("viduq3p-1080p", "0.15"),
    ("viduq3t-540p", "0.04"), ("viduq3t-720p", "0.06"), ("viduq3t-1080p", "0.09"),
    ("viduq3p-1080p-offpeak", "0.075"), ("viduq3p-mix-720p", "0.10"),
])
def test_default_prices(model_id, per_second):
    model = spec(model_id)
    images = ImagesGiven(references=1 if "mix" in model_id else 0)
    params = validate(model, {"prompt": "x", "duration": 4}, images)
    assert estimate_cost(model, params) == Decimal(per_second) * 4


# 5. The status table ---------------------------------------------------------------------------------


@pytest.mark.parametrize("raw, state", [
    ("queued", State.QUEUED), ("in_progress", State.RUNNING), ("completed", State.SUCCEEDED),
    ("failed", State.FAILED), ("NOT_START", State.QUEUED), ("SUBMITTED", State.QUEUED),
    ("QUEUED", State.QUEUED), ("IN_PROGRESS", State.RUNNING), ("SUCCESS", State.SUCCEEDED),
    ("FAILURE", State.FAILED),
])
def test_status_table(raw, state):
    assert adapter.map_status(raw) == state


@pytest.mark.parametrize("raw", ["UNKNOWN", "cancelled", "Completed", ""])
def test_unknown_status_is_running_never_success(raw):
    assert adapter.map_status(raw) == State.RUNNING
    update = adapter.parse_status({"task_id": "task_1", "status": raw, "video_url": VIDEO_URL})
    assert update.state == State.RUNNING and update.video_urls == []
