"""APIMP: the adapter's mapping, the sandbox's strictness, and whole jobs over HTTP."""

import re
import time
from datetime import datetime, timezone

import av
import httpx
import pytest
from PIL import ImageStat

from studio.providers import apimp
from studio.providers.apimp.catalog import MODELS
from studio.providers.base import GenerationRequest, ImageInput, ProviderError, State, ValidationFailed
from studio.providers.catalog import ImagesGiven, validate
from studio.sandbox.video import probe
from tests.conftest import sandbox_key
from tests.helpers import png_bytes
from tests.providers.support import client_for_sandbox, download, run_to_end

SLUG = "apimp"
ADAPTER = apimp.adapter
SPECS = {spec.model_id: spec for spec in MODELS}
RED = (220, 20, 20)

SEED_PROMPT = "A drone flyover of a misty bamboo forest at dawn"
SEED_BODY = {"model": "veo-3.1-generate-preview", "input": {"prompt": SEED_PROMPT}}
SEED_ANSWER = {
    "code": 200,
    "data": {
        "task_id": "task_9YfRdLsMxC8mNzG6sJxK4tQpAr2BvCWh",
        "status": "not_started",
        "created_time": "2026-06-18T09:21:26",
        "error_message": None,
    },
}
SEED_ERROR = {"code": 400, "error": {"message": "input.prompt is required", "type": "invalid_request_error"}}


def status_body(status, **fields):
    data = {"task_id": "task_abc", "status": status, "progress": 0, "created_time": "2026-06-18T09:21:26",
            "error_message": None, "files": []}
    return {"code": 200, "data": {**data, **fields}}


def checked(model, **params):
    """A request as the studio sends it: validated against the catalog, defaults filled in."""
    images = ImagesGiven(first_frame="first_frame" in params)
    frame = params.pop("first_frame", None)
    return GenerationRequest(model=model, params=validate(SPECS[model], params, images), first_frame=frame)


def short_request(**params):
    return checked("veo-3.0-fast-generate-001", prompt="A red kite over dunes", duration=4, resolution="720p", **params)


def mean_colour_of_first_frame(path):
    with av.open(str(path)) as container:
        return ImageStat.Stat(next(container.decode(video=0)).to_image()).mean


def raw_post(sandbox, body, key=None):
    headers = {"Authorization": f"Bearer {key or sandbox_key(SLUG)}"}
    return httpx.post(f"{sandbox.base_url(SLUG)}/api/generate/submit", json=body, headers=headers, timeout=10)


def raw_get(sandbox, task_id):
    headers = {"Authorization": f"Bearer {sandbox_key(SLUG)}"}
    return httpx.get(f"{sandbox.base_url(SLUG)}/api/generate/status/{task_id}", headers=headers, timeout=10)


# The seed's own payloads ----------------------------------------------------------------------------


def test_seed_example_request_is_sent_exactly():
    call = ADAPTER.build_submit(GenerationRequest(model="veo-3.1-generate-preview", params={"prompt": SEED_PROMPT}))
    assert (call.method, call.path) == ("POST", "api/generate/submit")
    assert call.json == SEED_BODY


def test_seed_submit_answer_gives_task_id_state_and_utc_time():
    submitted = ADAPTER.parse_submit(SEED_ANSWER)
    assert submitted.task_id == "task_9YfRdLsMxC8mNzG6sJxK4tQpAr2BvCWh"
    assert (submitted.raw_status, submitted.state) == ("not_started", State.QUEUED)
    assert submitted.created_at == datetime(2026, 6, 18, 9, 21, 26, tzinfo=timezone.utc).timestamp()


def test_seed_error_answer_gives_the_gateways_words():
    assert ADAPTER.error_message(400, SEED_ERROR) == "input.prompt is required"


def test_validated_request_puts_veo_options_in_metadata_and_never_sends_size():
    request = checked("veo-3.1-generate-preview", prompt="Waves", aspect_ratio="9:16", resolution="1080p", duration=8,
                      audio=False, seed=42, negative_prompt="text, logos", person_generation="dont_allow")
    assert ADAPTER.build_submit(request).json == {
        "model": "veo-3.1-generate-preview",
        "input": {
            "prompt": "Waves",
            "duration": 8,
            "metadata": {"aspectRatio": "9:16", "resolution": "1080p", "negativePrompt": "text, logos",
                         "personGeneration": "dont_allow", "seed": 42, "generateAudio": False},
        },
    }


def test_person_generation_is_sent_only_when_chosen():
    # Not chosen: validation fills in nothing and metadata carries no personGeneration (the provider's default).
    request = checked("veo-3.1-generate-preview", prompt="Waves", duration=8)
    assert "person_generation" not in request.params
    assert ADAPTER.build_submit(request).json == {
        "model": "veo-3.1-generate-preview",
        "input": {"prompt": "Waves", "duration": 8,
                  "metadata": {"aspectRatio": "16:9", "resolution": "720p", "generateAudio": True}},
    }
    # Chosen: sent as input.metadata.personGeneration.
    request = checked("veo-3.1-generate-preview", prompt="Waves", duration=8, person_generation="allow_adult")
    assert request.params["person_generation"] == "allow_adult"
    assert ADAPTER.build_submit(request).json == {
        "model": "veo-3.1-generate-preview",
        "input": {"prompt": "Waves", "duration": 8,
                  "metadata": {"aspectRatio": "16:9", "resolution": "720p", "personGeneration": "allow_adult",
                               "generateAudio": True}},
    }


def test_first_frame_travels_as_a_url_in_input_image_only():
    frame = ImageInput(content=b"png", mime="image/png", url="https://studio.example/f/1.png")
    request = GenerationRequest(model="veo-3.0-generate-001", params={"prompt": "Go"}, first_frame=frame)
    assert ADAPTER.build_submit(request).json == {
        "model": "veo-3.0-generate-001", "input": {"prompt": "Go", "image": "https://studio.example/f/1.png"},
    }


def test_status_call_path():
    call = ADAPTER.build_status("task_abc", {})
    assert (call.method, call.path, call.json) == ("GET", "api/generate/status/task_abc", None)


def test_running_status_carries_progress():
    update = ADAPTER.parse_status(status_body("running", progress=42))
    assert (update.state, update.raw_status, update.progress, update.video_urls) == (State.RUNNING, "running", 42, [])


def test_finished_status_takes_every_file_as_a_video_even_labelled_image():
    files = [{"file_url": "https://cdn.example/a.mp4", "file_type": "image"},
             {"file_url": "https://cdn.example/b.mp4", "file_type": "image"}]
    update = ADAPTER.parse_status(status_body("finished", progress=100, files=files))
    assert update.state == State.SUCCEEDED
    assert update.video_urls == ["https://cdn.example/a.mp4", "https://cdn.example/b.mp4"]


def test_failed_status_carries_the_error_message():
    update = ADAPTER.parse_status(status_body("failed", error_message="Content blocked by safety filter"))
    assert (update.state, update.error) == (State.FAILED, "Content blocked by safety filter")


def test_finished_without_files_is_asked_again_not_taken_as_success():
    with pytest.raises(ProviderError) as exc:
        ADAPTER.parse_status(status_body("finished", progress=100, files=[]))
    assert exc.value.transient


def test_answer_without_data_is_a_transient_error():
    with pytest.raises(ProviderError) as exc:
        ADAPTER.parse_status({"code": 200})
    assert exc.value.transient


@pytest.mark.parametrize(
    "raw, state",
    [("not_started", State.QUEUED), ("running", State.RUNNING), ("finished", State.SUCCEEDED), ("failed", State.FAILED),
     ("paused_for_review", State.RUNNING)],
)
def test_status_table(raw, state):
    assert ADAPTER.parse_status(status_body(raw, files=[{"file_url": "u", "file_type": "image"}])).state == state


def test_error_code_inside_a_200_answer_is_permanent_for_4xx():
    with pytest.raises(ProviderError) as exc:
        ADAPTER.check_body(200, {"code": 402, "error": {"message": "quota exhausted", "type": "insufficient_quota"}})
    assert exc.value.permanent and exc.value.message == "quota exhausted" and exc.value.status_code == 402


def test_error_code_inside_a_200_answer_is_transient_for_5xx_and_429():
    for code, kind in ((503, "server_error"), (429, "rate_limit_error")):
        with pytest.raises(ProviderError) as exc:
            ADAPTER.check_body(200, {"code": code, "error": {"message": "busy", "type": kind}})
        assert exc.value.transient and exc.value.message == "busy"


def test_code_200_answer_passes_the_body_check():
    ADAPTER.check_body(200, SEED_ANSWER)


# Whole jobs against the sandbox --------------------------------------------------------------------


def test_text_to_video_job(sandbox, tmp_path):
    with client_for_sandbox(sandbox, SLUG) as client:
        submitted, update = run_to_end(client, short_request(aspect_ratio="9:16", audio=False, seed=7))
        assert update.state == State.SUCCEEDED and len(update.video_urls) == 1
        assert download(client, update.video_urls[0], tmp_path / "v.mp4") == 200
    assert submitted.task_id.startswith("task_") and len(submitted.task_id) == 37
    assert sandbox.submits(SLUG)[0]["json"] == {
        "model": "veo-3.0-fast-generate-001",
        "input": {"prompt": "A red kite over dunes", "duration": 4,
                  "metadata": {"aspectRatio": "9:16", "resolution": "720p", "seed": 7, "generateAudio": False}},
    }
    info = probe(tmp_path / "v.mp4")
    assert (info["width"], info["height"], info["has_audio"]) == (720, 1280, False)
    assert info["duration"] == pytest.approx(4, abs=0.2)


def test_first_frame_job(sandbox, tmp_path, image_url):
    frame_url = image_url(png_bytes(RED))
    frame = ImageInput(content=png_bytes(RED), mime="image/png", url=frame_url)
    with client_for_sandbox(sandbox, SLUG) as client:
        submitted, update = run_to_end(client, short_request(first_frame=frame))
        assert update.state == State.SUCCEEDED
        assert download(client, update.video_urls[0], tmp_path / "v.mp4") == 200
    assert sandbox.submits(SLUG)[0]["json"] == {
        "model": "veo-3.0-fast-generate-001",
        "input": {"prompt": "A red kite over dunes", "duration": 4, "image": frame_url,
                  "metadata": {"aspectRatio": "16:9", "resolution": "720p", "generateAudio": True}},
    }
    info = probe(tmp_path / "v.mp4")
    assert (info["width"], info["height"], info["has_audio"]) == (1280, 720, True)
    assert info["duration"] == pytest.approx(4, abs=0.2)
    assert all(abs(a - b) <= 35 for a, b in zip(mean_colour_of_first_frame(tmp_path / "v.mp4"), RED))
    answer = raw_get(sandbox, submitted.task_id).json()
    assert answer["data"]["status"] == "finished"
    assert [f["file_type"] for f in answer["data"]["files"]] == ["image"]


# Faults ------------------------------------------------------------------------------------------


def test_unknown_key_is_refused_permanently(sandbox):
    with client_for_sandbox(sandbox, SLUG, key="sk-live-not-ours") as client, pytest.raises(ProviderError) as exc:
        client.submit(short_request())
    assert exc.value.permanent and exc.value.status_code == 401 and exc.value.message == "Invalid API key."
    assert exc.value.body["error"]["type"] == "authentication_error"


def test_account_without_balance_is_refused_permanently(sandbox):
    empty_key = sandbox_key(SLUG) + "-empty"
    with client_for_sandbox(sandbox, SLUG, key=empty_key) as client, pytest.raises(ProviderError) as exc:
        client.submit(short_request())
    assert exc.value.permanent and exc.value.status_code == 402 and exc.value.message == "Insufficient balance."
    assert exc.value.body["error"]["type"] == "insufficient_quota"


def test_invalid_request_is_refused_permanently_with_the_sandboxs_words(sandbox):
    # 4k on Veo 3.0 never passes the catalog; sent anyway, the gateway must refuse it itself.
    request = GenerationRequest(model="veo-3.0-generate-001", params={"prompt": "x", "resolution": "4k", "duration": 8})
    with client_for_sandbox(sandbox, SLUG) as client, pytest.raises(ProviderError) as exc:
        client.submit(request)
    assert exc.value.permanent and exc.value.status_code == 400
    assert exc.value.message == (
        "resolution 4k (input.metadata.resolution) is only supported by veo-3.1-generate-preview and "
        "veo-3.1-fast-generate-preview"
    )


def test_rate_limit_is_transient_with_retry_after(sandbox):
    sandbox.fault("rate_limit", provider=SLUG, on="submit", retry_after=3)
    with client_for_sandbox(sandbox, SLUG) as client, pytest.raises(ProviderError) as exc:
        client.submit(short_request())
    assert exc.value.transient and exc.value.retry_after == 3
    assert exc.value.message.endswith("Too many requests, slow down.")


def test_rate_limit_with_an_http_date_gives_the_delay(sandbox):
    sandbox.fault("rate_limit", provider=SLUG, on="submit", retry_after=3, retry_after_date=True)
    with client_for_sandbox(sandbox, SLUG) as client, pytest.raises(ProviderError) as exc:
        client.submit(short_request())
    assert exc.value.transient and 1.5 <= exc.value.retry_after <= 3.5


def test_server_error_on_submit_is_ambiguous(sandbox):
    sandbox.fault("server_error", provider=SLUG, on="submit")
    with client_for_sandbox(sandbox, SLUG) as client, pytest.raises(ProviderError) as exc:
        client.submit(short_request())
    assert exc.value.ambiguous and "Upstream service error." in exc.value.message
    assert sandbox.count(SLUG) == 1


def test_server_error_on_status_is_transient(sandbox):
    with client_for_sandbox(sandbox, SLUG) as client:
        submitted = client.submit(short_request())
        sandbox.fault("server_error", provider=SLUG, on="status", status=503)
        with pytest.raises(ProviderError) as exc:
            client.status(submitted.task_id, submitted.data)
    assert exc.value.transient and exc.value.status_code == 503


def test_answer_too_late_is_ambiguous_and_the_job_exists(sandbox, settings):
    settings.STUDIO_PROVIDER_READ_TIMEOUT = 0.5
    sandbox.fault("hang_after_accept", provider=SLUG, on="submit", seconds=2)
    with client_for_sandbox(sandbox, SLUG) as client, pytest.raises(ProviderError) as exc:
        client.submit(short_request())
    assert exc.value.ambiguous
    assert len(sandbox.submits(SLUG)) == 1
    assert [t.provider for t in sandbox.state.tasks.values()] == [SLUG]


def test_malformed_answer_on_submit_is_ambiguous(sandbox):
    sandbox.fault("malformed_json", provider=SLUG, on="submit")
    with client_for_sandbox(sandbox, SLUG) as client, pytest.raises(ProviderError) as exc:
        client.submit(short_request())
    assert exc.value.ambiguous


def test_malformed_answer_on_status_is_transient(sandbox):
    with client_for_sandbox(sandbox, SLUG) as client:
        submitted = client.submit(short_request())
        sandbox.fault("malformed_json", provider=SLUG, on="status")
        with pytest.raises(ProviderError) as exc:
            client.status(submitted.task_id, submitted.data)
    assert exc.value.transient


def test_failed_job_carries_the_providers_message(sandbox):
    sandbox.fault("fail_job", provider=SLUG, message="Veo blocked the prompt (safety)")
    with client_for_sandbox(sandbox, SLUG) as client:
        _, update = run_to_end(client, short_request())
    assert (update.state, update.raw_status) == (State.FAILED, "failed")
    assert update.error == "Veo blocked the prompt (safety)"


def test_job_that_never_finishes_stays_running(sandbox):
    sandbox.set_job_seconds(0.3)
    sandbox.fault("never_finish", provider=SLUG)
    with client_for_sandbox(sandbox, SLUG) as client:
        submitted = client.submit(short_request())
        time.sleep(0.9)
        update = client.status(submitted.task_id, submitted.data)
    assert (update.state, update.raw_status) == (State.RUNNING, "running")
    assert update.progress < 100


def test_expired_link_is_replaced_by_a_fresh_status(sandbox, tmp_path):
    sandbox.fault("expire_link", provider=SLUG, status=403)
    with client_for_sandbox(sandbox, SLUG) as client:
        submitted, update = run_to_end(client, short_request())
        assert download(client, update.video_urls[0], tmp_path / "dead.mp4") == 403
        fresh = client.status(submitted.task_id, submitted.data)
        assert fresh.video_urls != update.video_urls
        assert download(client, fresh.video_urls[0], tmp_path / "v.mp4") == 200
    assert probe(tmp_path / "v.mp4")["width"] == 1280


def test_unknown_task_is_a_permanent_not_found(sandbox):
    with client_for_sandbox(sandbox, SLUG) as client, pytest.raises(ProviderError) as exc:
        client.status("task_doesnotexist", {})
    assert exc.value.permanent and exc.value.status_code == 404 and exc.value.message == "task not found"
    assert exc.value.body == {"code": 404, "error": {"message": "task not found", "type": "not_found"}}


# Catalog rules refuse before anything is sent -------------------------------------------------------


def refused_codes(model, params, images=ImagesGiven()):
    with pytest.raises(ValidationFailed) as exc:
        validate(SPECS[model], {"prompt": "x", **params}, images)
    return [v.code for v in exc.value.violations]


@pytest.mark.parametrize("model", list(SPECS))
def test_1080p_needs_8_seconds(sandbox, model):
    assert "veo_hd_needs_8s" in refused_codes(model, {"resolution": "1080p", "duration": 6})
    assert sandbox.count(SLUG) == 0


@pytest.mark.parametrize("model", ["veo-3.1-generate-preview", "veo-3.1-fast-generate-preview"])
def test_4k_needs_8_seconds(sandbox, model):
    assert "veo_hd_needs_8s" in refused_codes(model, {"resolution": "4k", "duration": 4})
    assert sandbox.count(SLUG) == 0


@pytest.mark.parametrize("model", ["veo-3.0-generate-001", "veo-3.0-fast-generate-001"])
def test_4k_is_only_on_veo_3_1(sandbox, model):
    assert "resolution_not_allowed" in refused_codes(model, {"resolution": "4k", "duration": 8})
    assert sandbox.count(SLUG) == 0


@pytest.mark.parametrize("model", list(SPECS))
def test_only_a_first_frame_is_accepted(sandbox, model):
    assert "last_frame_not_accepted" in refused_codes(model, {}, ImagesGiven(first_frame=True, last_frame=True))
    assert "references_not_accepted" in refused_codes(model, {}, ImagesGiven(references=1))
    assert sandbox.count(SLUG) == 0


def test_durations_are_4_6_or_8(sandbox):
    assert "duration_not_allowed" in refused_codes("veo-3.1-generate-preview", {"duration": 5})
    assert sandbox.count(SLUG) == 0


def test_catalog_defaults_are_veos():
    clean = validate(SPECS["veo-3.1-fast-generate-preview"], {"prompt": "x"})
    assert clean == {"prompt": "x", "aspect_ratio": "16:9", "resolution": "720p", "duration": 8, "audio": True}
    assert SPECS["veo-3.1-fast-generate-preview"].param("person_generation").default is None


# The sandbox is as strict as the gateway --------------------------------------------------------------


@pytest.mark.parametrize(
    "body, message",
    [
        ({"model": "veo-3.1-generate-preview", "input": {}}, "input.prompt is required"),
        ({"model": "veo-3.1-generate-preview", "input": {"prompt": "  "}}, "input.prompt is required"),
        ({"input": {"prompt": "x"}}, "model is required"),
        ({"model": "veo-2.0-generate-001", "input": {"prompt": "x"}}, "model must be one of"),
        ({"model": "veo-3.1-generate-preview", "input": {"prompt": "x"}, "metadata": {}}, "unknown field metadata"),
        ({"model": "veo-3.1-generate-preview", "input": {"prompt": "x", "aspect_ratio": "16:9"}},
         "unknown field input.aspect_ratio"),
        ({"model": "veo-3.1-generate-preview", "input": {"prompt": "x", "images": ["http://a/1", "http://a/2"]}},
         "input.images takes at most 1 item, got 2"),
        ({"model": "veo-3.1-generate-preview", "input": {"prompt": "x", "duration": "8"}},
         "input.duration must be an integer"),
        ({"model": "veo-3.1-generate-preview", "input": {"prompt": "x", "duration": 5}},
         "input.duration must be 4, 6 or 8 seconds, got 5"),
        ({"model": "veo-3.1-generate-preview", "input": {"prompt": "x", "metadata": {"aspectRatio": "1:1"}}},
         "input.metadata.aspectRatio must be one of 16:9, 9:16"),
        ({"model": "veo-3.1-generate-preview", "input": {"prompt": "x", "metadata": {"generateAudio": "yes"}}},
         "input.metadata.generateAudio must be a boolean"),
        ({"model": "veo-3.1-generate-preview", "input": {"prompt": "x", "image": "data:image/png;base64,AAAA"}},
         "input.image must be an http(s) URL"),
        ({"model": "veo-3.1-generate-preview",
          "input": {"prompt": "x", "duration": 4, "metadata": {"resolution": "1080p"}}},
         "resolution 1080p requires a duration of 8 seconds, got 4"),
        ({"model": "veo-3.0-generate-001", "input": {"prompt": "x", "size": "3840x4000"}},
         "resolution 4k (input.size 3840x4000) is only supported by"),
        ({"model": "veo-3.1-generate-preview", "input": {"prompt": "x", "size": "1280*720"}},
         "input.size must be WxH in pixels"),
    ],
)
def test_sandbox_refuses_what_the_gateway_refuses(sandbox, body, message):
    answer = raw_post(sandbox, body)
    assert answer.status_code == 400
    assert answer.json()["code"] == 400 and answer.json()["error"]["type"] == "invalid_request_error"
    assert answer.json()["error"]["message"].startswith(message)
    assert sandbox.state.tasks == {}


def test_sandbox_answers_a_missing_prompt_with_the_seeds_error(sandbox):
    answer = raw_post(sandbox, {"model": "veo-3.1-generate-preview", "input": {}})
    assert (answer.status_code, answer.json()) == (400, SEED_ERROR)


def test_sandbox_answers_the_seeds_request_in_the_seeds_shape(sandbox):
    answer = raw_post(sandbox, SEED_BODY)
    data = answer.json()["data"]
    assert answer.status_code == 200 and answer.json()["code"] == 200
    assert set(data) == set(SEED_ANSWER["data"]) and data["status"] == "not_started" and data["error_message"] is None
    assert re.fullmatch(r"task_[A-Za-z0-9]{32}", data["task_id"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", data["created_time"])
    assert abs(ADAPTER.parse_submit(answer.json()).created_at - time.time()) < 5


@pytest.mark.parametrize(
    "size, metadata, dimensions",
    [
        ("1080x1920", {}, (720, 1280)),  # short side < 1920: 720p, and taller than wide: 9:16
        ("3840x2160", {}, (1920, 1080)),  # short side 2160 is in [1920, 3840): 1080p
        ("1280x720", {"aspectRatio": "9:16", "resolution": "1080p"}, (1080, 1920)),  # metadata wins over size
    ],
)
def test_sandbox_reads_size_only_where_metadata_is_silent(sandbox, size, metadata, dimensions):
    body = {"model": "veo-3.1-fast-generate-preview", "input": {"prompt": "x", "size": size, "metadata": metadata}}
    answer = raw_post(sandbox, body)
    assert answer.status_code == 200
    task = sandbox.state.tasks[answer.json()["data"]["task_id"]]
    assert (task.render["width"], task.render["height"], task.render["duration"]) == (*dimensions, 8)
