"""ModelMax: the mapping against the provider's own examples, full jobs against the sandbox, faults, rules."""

import base64
import time

import av
import httpx
import pytest
from PIL import ImageStat

from studio.providers.base import GenerationRequest, ImageInput, ProviderError, State, ValidationFailed
from studio.providers.catalog import ImagesGiven, validate
from studio.providers.modelmax import adapter
from studio.providers.registry import model_spec
from studio.sandbox.video import probe
from tests.conftest import SANDBOX_JOB_SECONDS, sandbox_key
from tests.helpers import png_bytes
from tests.providers.support import client_for_sandbox, download, run_to_end

SLUG = "modelmax"
RED = (220, 20, 20)

SEED_REQUEST = {
    "prompt": "A drone shot flying over a coral reef at sunset",
    "parameters": {"aspect_ratio": "16:9", "resolution": "1080p", "duration_seconds": 8, "generate_audio": True},
}
SEED_RESPONSE = {
    "request_id": "Z2VtaW5pOnZlby0zOjg6NzIwcDoxOm9wLTEyMzQ1",
    "status": "IN_QUEUE",
    "status_url": "/v1/queue/veo-3/requests/Z2Vt.../status",
    "response_url": "/v1/queue/veo-3/requests/Z2Vt...",
}
RESULT_COMPLETED = {
    "request_id": "Z2VtaW5pOnZlby0zOjg6NzIwcDoxOm9wLTEyMzQ1",
    "status": "COMPLETED",
    "model": "veo-3",
    "data": [{"url": "/v1/queue/veo-3/requests/c0ffee/content/0"}],
    "usage": {"video_seconds": 8, "video_resolution": "1080p", "video_has_audio": True},
}
RESULT_FAILED = {
    "request_id": "Z2VtaW5pOnZlby0zOjg6NzIwcDoxOm9wLTEyMzQ1",
    "status": "FAILED",
    "error": "content policy violation",
}


def unified(model="veo-3", images=ImagesGiven(), first_frame=None, **params):
    """A request the way the studio builds one: validated against the catalog, defaults filled in."""
    clean = validate(model_spec(SLUG, model), {"prompt": "a lighthouse at dusk", **params}, images)
    return GenerationRequest(model=model, params=clean, first_frame=first_frame)


def small_request(**params):
    return unified(resolution="720p", duration=4, **params)


def red_frame():
    return ImageInput(png_bytes(RED), "image/png")


def sandbox_task(sandbox, task_id):
    return sandbox.state.tasks[task_id]


def mean_colour(frame):
    return tuple(ImageStat.Stat(frame.to_image().convert("RGB")).mean)


def first_frame_colour(path):
    with av.open(str(path)) as container:
        return mean_colour(next(container.decode(video=0)))


# The provider's own examples ---------------------------------------------------------------------


def test_seed_request_is_built_exactly():
    request = GenerationRequest(
        model="veo-3",
        params={"prompt": SEED_REQUEST["prompt"], "aspect_ratio": "16:9", "resolution": "1080p", "duration": 8,
                "audio": True},
    )

    call = adapter.build_submit(request)

    assert (call.method, call.path) == ("POST", "v1/queue/veo-3")
    assert call.json == SEED_REQUEST


def test_prompt_only_request_sends_no_parameters_object():
    request = GenerationRequest(model="veo-3", params={"prompt": "A cat playing piano in a jazz club"})

    call = adapter.build_submit(request)

    assert call.json == {"prompt": "A cat playing piano in a jazz club"}


def test_validated_request_sends_every_filled_in_value():
    call = adapter.build_submit(unified(model="veo-3-fast", negative_prompt="blur", first_frame=red_frame(),
                                        images=ImagesGiven(first_frame=True)))

    assert call.path == "v1/queue/veo-3-fast"
    assert call.json == {
        "prompt": "a lighthouse at dusk",
        "parameters": {"aspect_ratio": "16:9", "resolution": "720p", "duration_seconds": 8, "generate_audio": True,
                       "sample_count": 1, "negative_prompt": "blur",
                       "image": base64.b64encode(png_bytes(RED)).decode()},
    }


def test_seed_response_keeps_the_model_for_later_paths():
    submitted = adapter.parse_submit(SEED_RESPONSE)

    assert submitted.task_id == "Z2VtaW5pOnZlby0zOjg6NzIwcDoxOm9wLTEyMzQ1"
    assert (submitted.raw_status, submitted.state) == ("IN_QUEUE", State.QUEUED)
    assert submitted.data == {"model": "veo-3", "status_url": SEED_RESPONSE["status_url"],
                              "response_url": SEED_RESPONSE["response_url"]}
    assert adapter.build_status(submitted.task_id, submitted.data).path == (
        "v1/queue/veo-3/requests/Z2VtaW5pOnZlby0zOjg6NzIwcDoxOm9wLTEyMzQ1/status")
    assert adapter.build_result(submitted.task_id, submitted.data).path == (
        "v1/queue/veo-3/requests/Z2VtaW5pOnZlby0zOjg6NzIwcDoxOm9wLTEyMzQ1")


def test_submit_answer_without_queue_urls_is_ambiguous_not_resent():
    with pytest.raises(ProviderError) as exc:
        adapter.parse_submit({"request_id": "abc", "status": "IN_QUEUE"})

    assert exc.value.ambiguous


@pytest.mark.parametrize("raw, state", [("IN_QUEUE", State.QUEUED), ("IN_PROGRESS", State.RUNNING)])
def test_status_while_working(raw, state):
    update = adapter.parse_status({"request_id": "r1", "status": raw})

    assert (update.state, update.raw_status, update.video_urls, update.needs_result) == (state, raw, [], False)


def test_completed_status_asks_for_the_billed_result():
    update = adapter.parse_status({"request_id": "r1", "status": "COMPLETED"})

    assert update.state == State.SUCCEEDED
    assert update.needs_result
    assert update.video_urls == []


def test_failed_status_carries_the_providers_error():
    update = adapter.parse_status({"request_id": "r1", "status": "FAILED", "error": "content policy violation"})

    assert (update.state, update.error) == (State.FAILED, "content policy violation")


def test_completed_result_gives_the_content_urls():
    update = adapter.parse_result(RESULT_COMPLETED)

    assert update.state == State.SUCCEEDED
    assert not update.needs_result
    assert update.video_urls == ["/v1/queue/veo-3/requests/c0ffee/content/0"]


def test_failed_result_carries_the_providers_error():
    update = adapter.parse_result(RESULT_FAILED)

    assert (update.state, update.error) == (State.FAILED, "content policy violation")


def test_completed_result_without_videos_fails_rather_than_succeeding_empty():
    update = adapter.parse_result({**RESULT_COMPLETED, "data": []})

    assert update.state == State.FAILED


def test_error_shape_gives_the_providers_words():
    body = {"error": {"message": "Insufficient balance", "type": "insufficient_balance"}}

    assert adapter.error_message(402, body) == "Insufficient balance"


# The status table --------------------------------------------------------------------------------


@pytest.mark.parametrize("raw, state", [
    ("IN_QUEUE", State.QUEUED), ("IN_PROGRESS", State.RUNNING),
    ("COMPLETED", State.SUCCEEDED), ("FAILED", State.FAILED),
])
def test_status_table(raw, state):
    assert adapter.map_status(raw) == state


def test_unknown_status_is_running_never_success():
    assert adapter.parse_status({"request_id": "r1", "status": "CANCELLED_BY_UPSTREAM"}).state == State.RUNNING


# Full jobs against the sandbox ------------------------------------------------------------------


def test_text_to_video_job(sandbox, tmp_path):
    with client_for_sandbox(sandbox, SLUG) as client:
        submitted, final = run_to_end(client, small_request(aspect_ratio="9:16", audio=False))
        status = download(client, final.video_urls[0], tmp_path / "video.mp4")

    assert sandbox.submits(SLUG)[0]["json"] == {
        "prompt": "a lighthouse at dusk",
        "parameters": {"aspect_ratio": "9:16", "resolution": "720p", "duration_seconds": 4, "generate_audio": False,
                       "sample_count": 1},
    }
    assert final.state == State.SUCCEEDED
    assert status == 200
    info = probe(tmp_path / "video.mp4")
    assert (info["width"], info["height"], info["has_audio"]) == (720, 1280, False)
    assert info["duration"] == pytest.approx(4, abs=0.1)
    assert sandbox_task(sandbox, submitted.task_id).result_fetches == 1


def test_first_frame_job_starts_on_the_image(sandbox, tmp_path):
    request = small_request(images=ImagesGiven(first_frame=True), first_frame=red_frame())
    with client_for_sandbox(sandbox, SLUG) as client:
        submitted, final = run_to_end(client, request)
        status = download(client, final.video_urls[0], tmp_path / "video.mp4")

    sent = sandbox.submits(SLUG)[0]["json"]
    assert sent == {
        "prompt": "a lighthouse at dusk",
        "parameters": {"aspect_ratio": "16:9", "resolution": "720p", "duration_seconds": 4, "generate_audio": True,
                       "sample_count": 1, "image": base64.b64encode(png_bytes(RED)).decode()},
    }
    assert status == 200
    info = probe(tmp_path / "video.mp4")
    assert (info["width"], info["height"], info["has_audio"]) == (1280, 720, True)
    assert info["duration"] == pytest.approx(4, abs=0.1)
    assert first_frame_colour(tmp_path / "video.mp4") == pytest.approx(RED, abs=35)
    assert sandbox_task(sandbox, submitted.task_id).result_fetches == 1


def test_two_samples_give_two_videos(sandbox, tmp_path):
    with client_for_sandbox(sandbox, SLUG) as client:
        _, final = run_to_end(client, small_request(samples=2, audio=False))
        statuses = [download(client, url, tmp_path / f"{i}.mp4") for i, url in enumerate(final.video_urls)]

    assert sandbox.submits(SLUG)[0]["json"]["parameters"]["sample_count"] == 2
    assert len(final.video_urls) == 2
    assert statuses == [200, 200]
    assert probe(tmp_path / "1.mp4")["width"] == 1280


def test_video_bytes_need_the_submitting_accounts_key(sandbox, tmp_path):
    with client_for_sandbox(sandbox, SLUG) as client:
        _, final = run_to_end(client, small_request(audio=False))
        url = client.absolute_url(final.video_urls[0])
    with httpx.Client(timeout=10) as http:
        anonymous = http.get(url)
        other_account = http.get(url, headers={"Authorization": f"Bearer {sandbox_key(SLUG)}"})

    assert (anonymous.status_code, anonymous.json()["error"]["type"]) == (401, "unauthorized")
    assert (other_account.status_code, other_account.json()["error"]["type"]) == (401, "unauthorized")


def test_status_urls_are_host_rooted_and_ignored(sandbox):
    with client_for_sandbox(sandbox, SLUG) as client:
        submitted = client.submit(small_request(audio=False))

    assert submitted.data["status_url"] == f"/v1/queue/veo-3/requests/{submitted.task_id}/status"
    assert adapter.build_status(submitted.task_id, submitted.data).path == (
        f"v1/queue/veo-3/requests/{submitted.task_id}/status")


# The sandbox is as strict as the real service ---------------------------------------------------


@pytest.mark.parametrize("model, body, words", [
    ("veo-2", {"prompt": "x"}, "not a video model"),
    ("veo-3", {"parameters": {}}, "prompt is required"),
    ("veo-3", {"prompt": "x", "seed": 1}, "unknown field(s): seed"),
    ("veo-3", {"prompt": "x", "parameters": {"last_frame": "abc"}}, "unknown parameter 'last_frame'"),
    ("veo-3", {"prompt": "x", "parameters": {"duration_seconds": "8"}}, "duration_seconds must be an integer"),
    ("veo-3", {"prompt": "x", "parameters": {"duration_seconds": 10}}, "duration_seconds must be at most 8"),
    ("veo-3", {"prompt": "x", "parameters": {"duration_seconds": 5}}, "duration_seconds must be one of 4, 6, 8"),
    ("veo-3", {"prompt": "x", "parameters": {"sample_count": 5}}, "sample_count must be between 1 and 4"),
    ("veo-3", {"prompt": "x", "parameters": {"generate_audio": "yes"}}, "generate_audio must be a boolean"),
    ("veo-3", {"prompt": "x", "parameters": {"aspect_ratio": "1:1"}}, "aspect_ratio must be one of"),
    ("veo-3-fast", {"prompt": "x", "parameters": {"resolution": "4k"}}, "4k is not supported by veo-3-fast"),
    ("veo-3", {"prompt": "x", "parameters": {"resolution": "1080p", "duration_seconds": 6}}, "1080p requires"),
    ("veo-3", {"prompt": "x", "parameters": {"image": "not base64!"}}, "parameters.image must be a Base64"),
    ("veo-3", {"prompt": "x", "parameters": {"image": base64.b64encode(b"text").decode()}}, "parameters.image"),
])
def test_sandbox_refuses_what_modelmax_refuses(sandbox, model, body, words):
    response = httpx.post(f"{sandbox.base_url(SLUG)}/v1/queue/{model}", json=body,
                          headers={"Authorization": f"Bearer {sandbox_key(SLUG)}"})

    assert response.status_code == 400
    assert response.json()["error"]["type"] == "bad_request"
    assert words in response.json()["error"]["message"]
    assert sandbox.state.tasks == {}


def test_unknown_request_id_is_404(sandbox):
    with client_for_sandbox(sandbox, SLUG) as client, pytest.raises(ProviderError) as exc:
        client.status("bm8tc3VjaC1qb2I", {"model": "veo-3"})

    assert (exc.value.status_code, exc.value.permanent) == (404, True)


# Faults ------------------------------------------------------------------------------------------


def submit_error(sandbox, request=None, **options):
    with client_for_sandbox(sandbox, SLUG, **options) as client, pytest.raises(ProviderError) as exc:
        client.submit(request or small_request())
    return exc.value


def test_unknown_key_is_permanent(sandbox):
    error = submit_error(sandbox, key="sk-live-nobody")

    assert (error.status_code, error.permanent, error.message) == (401, True, "Invalid API key.")


def test_empty_account_is_permanent(sandbox):
    error = submit_error(sandbox, key=sandbox_key(SLUG) + "-empty")

    assert (error.status_code, error.permanent, error.message) == (402, True, "Insufficient balance.")
    assert sandbox.state.tasks == {}


def test_invalid_request_is_permanent_with_the_sandboxs_words(sandbox):
    # 4k slips past no catalog here: the request is built by hand, as a stale form might.
    request = GenerationRequest(model="veo-3", params={"prompt": "x", "resolution": "4k", "duration": 8})

    error = submit_error(sandbox, request)

    assert (error.status_code, error.permanent) == (400, True)
    assert error.message == "resolution 4k is not supported by veo-3; 4k needs Veo 3.1"


@pytest.mark.parametrize("as_date", [False, True])
def test_rate_limit_is_transient_with_retry_after(sandbox, as_date):
    sandbox.fault("rate_limit", provider=SLUG, on="submit", retry_after=3, retry_after_date=as_date)

    error = submit_error(sandbox)

    assert error.transient
    assert error.status_code == 429
    assert error.retry_after == (pytest.approx(3, abs=1.1) if as_date else 3)


def test_server_error_on_submit_is_ambiguous(sandbox):
    sandbox.fault("server_error", provider=SLUG, on="submit", status=502, message="upstream provider error")

    error = submit_error(sandbox)

    assert error.ambiguous
    assert "upstream provider error" in error.message
    assert error.body["error"]["type"] == "bad_gateway"


def test_server_error_on_status_is_transient(sandbox):
    sandbox.fault("server_error", provider=SLUG, on="status")
    with client_for_sandbox(sandbox, SLUG) as client:
        submitted = client.submit(small_request())
        with pytest.raises(ProviderError) as exc:
            client.status(submitted.task_id, submitted.data)

    assert exc.value.transient


def test_server_error_on_result_is_transient(sandbox):
    sandbox.fault("server_error", provider=SLUG, on="result")
    with client_for_sandbox(sandbox, SLUG) as client:
        submitted = client.submit(small_request(audio=False))
        time.sleep(SANDBOX_JOB_SECONDS * 1.5)
        with pytest.raises(ProviderError) as exc:
            client.result(submitted.task_id, submitted.data)

    assert exc.value.transient
    assert sandbox.count(SLUG) == 2  # the fault answered for the result call: nothing else was sent


def test_hang_after_accept_is_ambiguous_and_not_resent(sandbox, settings):
    settings.STUDIO_PROVIDER_READ_TIMEOUT = 0.5
    sandbox.fault("hang_after_accept", provider=SLUG, on="submit", seconds=2)

    error = submit_error(sandbox)

    assert error.ambiguous
    assert len(sandbox.submits(SLUG)) == 1
    assert len(sandbox.state.tasks) == 1


def test_malformed_json_on_submit_is_ambiguous(sandbox):
    sandbox.fault("malformed_json", provider=SLUG, on="submit")

    assert submit_error(sandbox).ambiguous


def test_malformed_json_on_status_is_transient(sandbox):
    sandbox.fault("malformed_json", provider=SLUG, on="status")
    with client_for_sandbox(sandbox, SLUG) as client:
        submitted = client.submit(small_request())
        with pytest.raises(ProviderError) as exc:
            client.status(submitted.task_id, submitted.data)

    assert exc.value.transient


def test_failed_job_carries_the_message_and_bills_nothing(sandbox):
    sandbox.fault("fail_job", provider=SLUG, message="content policy violation")
    with client_for_sandbox(sandbox, SLUG) as client:
        submitted, final = run_to_end(client, small_request(audio=False))

    assert (final.state, final.raw_status, final.error) == (State.FAILED, "FAILED", "content policy violation")
    assert sandbox_task(sandbox, submitted.task_id).result_fetches == 0


def test_never_finishing_job_stays_running(sandbox):
    sandbox.fault("never_finish", provider=SLUG)
    with client_for_sandbox(sandbox, SLUG) as client:
        submitted = client.submit(small_request(audio=False))
        time.sleep(SANDBOX_JOB_SECONDS * 3)
        update = client.status(submitted.task_id, submitted.data)

    assert (update.state, update.raw_status, update.needs_result) == (State.RUNNING, "IN_PROGRESS", False)


# Catalog rules refuse before anything is sent -------------------------------------------------------


@pytest.mark.parametrize("model, params, images, code", [
    ("veo-3", {"resolution": "1080p", "duration": 4}, ImagesGiven(), "veo_hd_needs_8s"),
    ("veo-3-fast", {"resolution": "1080p", "duration": 6}, ImagesGiven(), "veo_hd_needs_8s"),
    ("veo-3", {"resolution": "4k"}, ImagesGiven(), "resolution_not_allowed"),
    ("veo-3", {"duration": 10}, ImagesGiven(), "duration_not_allowed"),
    ("veo-3", {"samples": 5}, ImagesGiven(), "samples_out_of_range"),
    ("veo-3", {"aspect_ratio": "1:1"}, ImagesGiven(), "aspect_ratio_not_allowed"),
    ("veo-3", {"seed": 7}, ImagesGiven(), "unknown_parameter"),
    ("veo-3", {"person_generation": "allow_all"}, ImagesGiven(), "unknown_parameter"),
    ("veo-3", {}, ImagesGiven(first_frame=True, last_frame=True), "last_frame_not_accepted"),
    ("veo-3-fast", {}, ImagesGiven(references=1), "references_not_accepted"),
])
def test_catalog_refuses_before_sending(sandbox, model, params, images, code):
    with pytest.raises(ValidationFailed) as exc:
        validate(model_spec(SLUG, model), {"prompt": "x", **params}, images)

    assert code in [v.code for v in exc.value.violations]
    assert sandbox.count(SLUG) == 0


def test_refused_4k_names_the_veo_31_rule():
    with pytest.raises(ValidationFailed) as exc:
        validate(model_spec(SLUG, "veo-3"), {"prompt": "x", "resolution": "4k"})

    assert "4k is only on Veo 3.1" in str(exc.value)


def test_catalog_defaults_follow_the_documentation():
    clean = validate(model_spec(SLUG, "veo-3"), {"prompt": "x"})

    assert clean == {"prompt": "x", "aspect_ratio": "16:9", "resolution": "720p", "duration": 8, "audio": True,
                     "samples": 1}
