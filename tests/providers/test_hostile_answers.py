"""Whatever a provider sends, the adapters stay in their contract.

Every parse_* either returns a well-formed value or raises ProviderError of kind "malformed" (or "no_video":
finished, but no link yet): an exception of any other type used to send the job engine into a hot re-poll
loop. Every provider-supplied value placed in
a path stays exactly one segment under the account's base URL.
"""

import copy
import math
from urllib.parse import unquote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from studio.providers import adapter as adapter_module
from studio.providers.adapter import ProviderAdapter, percent, unix_seconds
from studio.providers.base import ProviderError, State, StatusUpdate, Submitted
from studio.providers.registry import ADAPTERS

STATES = {State.QUEUED, State.RUNNING, State.SUCCEEDED, State.FAILED, State.CANCELLED}
# Only these answers may be ambiguous: the provider accepted the job but gave nothing we can follow it by.
AMBIGUOUS_ALLOWED = {("modelmax", "parse_submit"), ("uniall", "parse_submit")}
EXCERPT_LIMIT = 300
MESSAGE_LIMIT = EXCERPT_LIMIT + 200  # the excerpt plus our own words around it

FUZZ = settings(max_examples=200, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

VIDEO_URL = "https://cdn.example.com/v.mp4"
# The providers' documented answers (the seeds and providers.md), one or more per parser.
EXAMPLES = {
    ("modelmax", "parse_submit"): [
        {"request_id": "Z2VtaW5pOnZlby0zOjg6NzIwcDoxOm9wLTEyMzQ1", "status": "IN_QUEUE",
         "status_url": "/v1/queue/veo-3/requests/Z2Vt.../status",
         "response_url": "/v1/queue/veo-3/requests/Z2Vt..."},
    ],
    ("modelmax", "parse_status"): [
        {"request_id": "r1", "status": "IN_PROGRESS"},
        {"request_id": "r1", "status": "FAILED", "error": {"message": "content policy violation"}},
    ],
    ("modelmax", "parse_result"): [
        {"request_id": "r1", "status": "COMPLETED", "model": "veo-3",
         "data": [{"url": "/v1/queue/veo-3/requests/c0ffee/content/0"}],
         "usage": {"video_seconds": 8, "video_resolution": "720p", "video_has_audio": True}},
        {"request_id": "r1", "status": "FAILED", "error": "content policy violation"},
    ],
    ("qingbo", "parse_submit"): [
        {"task_id": "task-wave1775285160b950328499", "model": "veo-3.1", "action": "generate",
         "status": "queued", "created_at": 1775285160040, "progress": 0},
    ],
    ("qingbo", "parse_status"): [
        {"task_id": "task-wave1", "model": "veo-3.1", "action": "generate", "status": "completed",
         "created_at": 1775285160040, "start_time": 1775285162000, "completed_at": 1775285230000,
         "progress": 100, "error": None,
         "result": {"images": [], "videos": [{"url": VIDEO_URL, "expires_at": 1775371630000}]}},
        {"task_id": "task-wave1", "status": "failed", "progress": 0, "error": {"message": "Content blocked"}},
    ],
    ("apimp", "parse_submit"): [
        {"code": 200, "data": {"task_id": "task_9YfRdLsMxC8mNzG6sJxK4tQpAr2BvCWh", "status": "not_started",
                               "created_time": "2026-06-18T09:21:26", "error_message": None}},
    ],
    ("apimp", "parse_status"): [
        {"code": 200, "data": {"task_id": "task_abc", "status": "finished", "progress": 100,
                               "created_time": "2026-06-18T09:21:26", "error_message": None,
                               "files": [{"file_url": VIDEO_URL, "file_type": "image"}]}},
        {"code": 200, "data": {"task_id": "task_abc", "status": "failed", "progress": 0,
                               "error_message": "Content blocked by safety filter", "files": []}},
    ],
    ("veoquery", "parse_submit"): [
        {"id": "veo3.1-fast:1770350082-trii1OXZc3", "status": "pending", "status_update_time": 1770350082099,
         "enhanced_prompt": "make animate"},
    ],
    ("veoquery", "parse_status"): [
        {"id": "veo3.1-fast:1770350082-trii1OXZc3", "status": "completed",
         "video_url": "https://pro.filesystem.site/cdn/20260206/1b50395bad4c6c7bc22e6ada144951.mp4",
         "status_update_time": 1770350329098,
         "detail": {"status": "completed", "video_url": "https://pro.filesystem.site/cdn/9ddbd3.mp4",
                    "error_message": "[403] reCAPTCHA evaluation failed",
                    "video_generation_error": "unsafe prompt",
                    "enhanced_prompt": "Create a vibrant and whimsical animation"}},
        {"id": "veo3.1-fast:1", "status": "failed", "detail": {"video_generation_error": "unsafe prompt"},
         "error": {"message": "upstream timeout"}, "message": "failed"},
    ],
    ("uniall", "parse_submit"): [
        {"id": "task_xxxxx", "task_id": "task_xxxxx", "object": "video.generation.job",
         "model": "viduq3p-540p", "status": "queued", "progress": 0, "created_at": 1774507626},
    ],
    ("uniall", "parse_status"): [
        {"id": "task_xxxxx", "task_id": "task_xxxxx", "object": "video.generation.job",
         "model": "viduq3p-540p", "status": "completed", "progress": 100,
         "video_url": VIDEO_URL, "result": {"outputs": [VIDEO_URL], "video_url": VIDEO_URL},
         "error": None, "created_at": 1774507626, "thumbnail_url": "https://cdn.example.com/cover.jpg"},
        {"code": "success", "message": "", "data": {
            "task_id": "task_xxxxx", "action": "textGenerate", "status": "SUCCESS", "progress": "100%",
            "result_url": VIDEO_URL, "fail_reason": ""}},
        {"code": "success", "data": {"status": "FAILURE", "progress": "100%", "fail_reason": "upstream"}},
    ],
}
PARSERS = sorted(EXAMPLES)


def test_every_parser_of_every_adapter_has_examples():
    implemented = {
        (slug, name)
        for slug, adapter in ADAPTERS.items()
        for name in ("parse_submit", "parse_status", "parse_result")
        if getattr(type(adapter), name) is not getattr(ProviderAdapter, name)
    }
    assert implemented == set(EXAMPLES)


# Strategies --------------------------------------------------------------------------------------------

KNOWN_KEYS = sorted({
    "status", "task_id", "id", "request_id", "data", "result", "videos", "images", "url", "video_url",
    "files", "file_url", "file_type", "progress", "error", "message", "code", "detail", "outputs",
    "result_url", "status_url", "response_url", "created_at", "created_time", "status_update_time",
    "enhanced_prompt", "error_message", "fail_reason", "video_generation_error", "model",
})
STATUS_WORDS = sorted({raw for adapter in ADAPTERS.values() for raw in adapter.status_table})
ODD_STRINGS = [
    "", " ", "\t\n", "NaN", "nan", "Infinity", "-Infinity", "inf", "1e999", "-1e999", "42%", "%", "²", "１２",
    "٤٢", "\x00", "\ud800", "null", "true", "[]", "{}", "../..", "..", ".", "/v1/queue//requests/",
    "/v1/queue/../requests/x", "/v1/queue/./requests/x", "/v1/queue/veo-3/requests/", "💥", "ä" * 300,
    "9" * 400, "1" * 5000, "2026-13-45T99:99:99", "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00",
    "2026-06-18T09:21:26",
]
# Past 4,300 digits Python cannot print an int, nor can Hypothesis: test_error_excerpt_survives_… has one.
HUGE = 10**400
huge_ints = st.integers(min_value=2**63, max_value=HUGE) | st.integers(min_value=-HUGE, max_value=-(2**63))
scalars = (
    st.none() | st.booleans() | st.integers() | huge_ints
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.sampled_from([math.nan, math.inf, -math.inf, 1e308, -0.0])
    | st.text(max_size=20) | st.sampled_from(ODD_STRINGS + STATUS_WORDS)
)
keys = st.sampled_from(KNOWN_KEYS) | st.text(max_size=8)


def answer_like(values):
    """Objects with the fields the adapters read: often a status word and an id, and anything else."""
    likely = st.fixed_dictionaries({}, optional={
        "status": st.sampled_from(STATUS_WORDS) | values,
        **{key: st.text(min_size=1, max_size=12) | values for key in ("task_id", "id", "request_id")},
    })
    others = st.dictionaries(st.sampled_from(KNOWN_KEYS), values, max_size=8)
    return st.builds(lambda first, second: {**second, **first}, likely, others)


json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(keys, children, max_size=6),
    max_leaves=25,
)
# Any JSON at all, plus answer-shaped objects (flat or in a {"code", "data"} envelope, with answer-shaped
# objects inside) so that the parsers' deeper branches are reached, not only their first check.
inner_answers = answer_like(scalars | st.lists(scalars, max_size=3))
answers = answer_like(scalars | inner_answers | st.lists(inner_answers | scalars, max_size=3))
bodies = st.one_of(
    json_values,
    answers,
    st.fixed_dictionaries({"code": scalars | st.sampled_from(["success", 200]), "data": answers}),
)


def paths_in(value, prefix=()):
    """Every place in a JSON value that a field could be replaced at."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield prefix + (key,)
            yield from paths_in(item, prefix + (key,))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield prefix + (index,)
            yield from paths_in(item, prefix + (index,))


DELETE = object()


def replaced(example, path, value):
    body = copy.deepcopy(example)
    target = body
    for step in path[:-1]:
        target = target[step]
    if value is DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return body


@st.composite
def one_field_wrong(draw, examples):
    """A documented answer with one field (at any depth) replaced by a value of another type, or removed."""
    example = draw(st.sampled_from(examples))
    path = draw(st.sampled_from(list(paths_in(example))))
    value = draw(json_values | st.just(DELETE))
    return replaced(example, path, value)


# The contract ----------------------------------------------------------------------------------------------


def assert_within_contract(slug, name, body):
    adapter = ADAPTERS[slug]
    try:
        value = getattr(adapter, name)(body)
    except ProviderError as error:
        assert error.kind in ("malformed", "no_video"), error.message
        assert not error.permanent
        assert error.ambiguous is False or (slug, name) in AMBIGUOUS_ALLOWED, error.message
        assert error.body is body
        assert isinstance(error.message, str) and error.message and len(error.message) <= MESSAGE_LIMIT
        return
    if name == "parse_submit":
        assert isinstance(value, Submitted)
        assert isinstance(value.task_id, str) and value.task_id.strip()
        assert value.state in STATES and isinstance(value.raw_status, str)
        assert isinstance(value.data, dict)
        created_at = value.created_at
        assert created_at is None or (isinstance(created_at, float) and math.isfinite(created_at))
    else:
        assert isinstance(value, StatusUpdate)
        assert value.state in STATES
        assert isinstance(value.raw_status, str)
        assert value.progress is None or (type(value.progress) is int and 0 <= value.progress <= 100)
        assert isinstance(value.video_urls, list)
        assert all(isinstance(url, str) and url.strip() for url in value.video_urls)
        assert isinstance(value.error, str) and isinstance(value.enhanced_prompt, str)
        if value.state == State.SUCCEEDED:
            assert value.video_urls or value.needs_result, "success without a video"
    if value.raw_status not in adapter.status_table:
        assert value.state == State.RUNNING, f"unknown status {value.raw_status!r} became {value.state}"


@pytest.mark.parametrize("slug, name", PARSERS)
@FUZZ
@given(body=bodies)
def test_any_json_answer_is_read_or_refused_as_malformed(slug, name, body):
    assert_within_contract(slug, name, body)


@pytest.mark.parametrize("slug, name", PARSERS)
@FUZZ
@given(data=st.data())
def test_documented_answer_with_one_field_wrong_is_read_or_refused_as_malformed(slug, name, data):
    assert_within_contract(slug, name, data.draw(one_field_wrong(EXAMPLES[slug, name])))


@pytest.mark.parametrize("slug", sorted(ADAPTERS))
@settings(FUZZ, max_examples=100)
@given(body=bodies)
def test_any_json_answer_is_checked_and_quoted_without_crashing(slug, body):
    """The client runs every 2xx answer through check_body and every error answer through error_message."""
    adapter = ADAPTERS[slug]
    assert isinstance(adapter.error_message(400, body), str)
    try:
        adapter.check_body(200, body)
    except ProviderError as error:
        assert isinstance(error.message, str)


@pytest.mark.parametrize("slug, name", PARSERS)
def test_documented_answers_still_parse(slug, name):
    for example in EXAMPLES[slug, name]:
        value = getattr(ADAPTERS[slug], name)(example)
        assert value.state in STATES


# The answers seen in production -------------------------------------------------------------------------


def test_qingbo_progress_nan_is_unknown_progress():
    update = ADAPTERS["qingbo"].parse_status({"status": "processing", "progress": "NaN"})
    assert (update.state, update.progress) == (State.RUNNING, None)


def test_qingbo_completed_with_a_string_result_is_malformed():
    body = {"status": "completed", "result": "oops"}
    with pytest.raises(ProviderError) as caught:
        ADAPTERS["qingbo"].parse_status(body)
    assert caught.value.kind == "malformed" and caught.value.transient and caught.value.body is body
    assert "result" in caught.value.message and "oops" in caught.value.message


def test_modelmax_completed_result_with_a_number_for_data_is_malformed():
    body = {"status": "COMPLETED", "data": 5}
    with pytest.raises(ProviderError) as caught:
        ADAPTERS["modelmax"].parse_result(body)
    assert caught.value.kind == "malformed" and caught.value.transient and caught.value.body is body
    assert "data" in caught.value.message


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, "NaN", "nan%", "Infinity", "-inf", "1e999",
                                   pytest.param("9" * 400, id="400-nines"), "²", "abc", [], {}, True])
def test_percent_is_none_for_what_is_not_a_finite_number(value):
    assert percent(value) is None


@pytest.mark.parametrize("value, expected", [(42, 42), (42.4, 42), ("42", 42), ("42%", 42), (" 7 % ", 7),
                                             (150, 100), (-3, 0), pytest.param(HUGE, 100, id="huge-int")])
def test_percent_reads_numbers_and_clamps(value, expected):
    assert percent(value) == expected


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, pytest.param(HUGE, id="huge-int"),
                                   pytest.param("9" * 400, id="400-nines"), "²", True, [], {},
                                   "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", -5])
def test_unix_seconds_is_none_for_what_is_not_a_usable_time(value):
    assert unix_seconds(value) is None


def test_error_excerpt_survives_an_int_too_long_to_print():
    body = {"status": "completed", "result": 10**5000}
    with pytest.raises(ProviderError) as caught:
        ADAPTERS["qingbo"].parse_status(body)
    assert caught.value.kind == "malformed" and len(caught.value.message) <= MESSAGE_LIMIT


# Ids in paths ----------------------------------------------------------------------------------------------

BASE_URL = "http://provider.test/prefix/"
HOSTILE_IDS = ["../../../v1/tasks/x?evil=1", "a/b", "..", ".", "x#frag", "%2e%2e%2f", "id with spaces",
               "タスク-ü-💥", "?", "#", "/", "//evil.example/x", "http://evil.example/", "a;b=c", "\\..\\x"]
PLACEHOLDER = "PLACEHOLDER"
BUILDERS = ("build_status", "build_result", "build_cancel")
# Stored data as the client leaves it after submit (ModelMax keeps the model its paths need).
DATA = {"modelmax": {"model": "veo-3"}}
CALLS = [(slug, builder) for slug, adapter in ADAPTERS.items() for builder in BUILDERS
         if getattr(adapter, builder)(PLACEHOLDER, DATA.get(slug, {})) is not None]


@pytest.fixture(scope="module")
def provider_http():
    """A client on the account's base URL, as the shared client holds one (it only builds requests here)."""
    with httpx.Client(base_url=BASE_URL) as client:
        yield client


def final_url(http, call):
    """The URL the shared client sends: relative paths are joined under the account's base URL."""
    return http.build_request(call.method, call.path.lstrip("/"), params=call.params).url


def assert_one_segment(http, benign_call, hostile_call, hostile):
    """The hostile value took the placeholder's place as one segment (or one query value), nothing more."""
    base = httpx.URL(BASE_URL)
    for url, expected in ((final_url(http, hostile_call), final_url(http, benign_call)),
                          (base.join(hostile_call.path), base.join(benign_call.path))):
        path, _, query = url.raw_path.decode("ascii").partition("?")
        expected_path, _, expected_query = expected.raw_path.decode("ascii").partition("?")
        assert (url.scheme, url.host, url.port, url.fragment) == ("http", "provider.test", None, ""), hostile
        assert path.startswith("/prefix/"), (hostile, str(url))
        segments, expected_segments = path.split("/"), expected_path.split("/")
        assert len(segments) == len(expected_segments), (hostile, str(url))
        for segment, benign in zip(segments, expected_segments):
            if PLACEHOLDER in benign:
                assert segment not in (".", ".."), (hostile, str(url))
                assert unquote(segment) == benign.replace(PLACEHOLDER, hostile), (hostile, str(url))
            else:
                assert segment == benign, (hostile, str(url))
        if expected_query:
            injected = {key: value.replace(PLACEHOLDER, hostile) for key, value in expected.params.items()}
            assert dict(url.params) == injected, (hostile, str(url))
        else:
            assert query == "", (hostile, str(url))


@pytest.mark.parametrize("slug, builder", CALLS)
def test_hostile_task_id_stays_one_segment_under_the_base_url(provider_http, slug, builder):
    build = getattr(ADAPTERS[slug], builder)
    data = DATA.get(slug, {})
    for hostile in HOSTILE_IDS:
        assert_one_segment(provider_http, build(PLACEHOLDER, data), build(hostile, data), hostile)


@pytest.mark.parametrize("builder", [b for slug, b in CALLS if slug == "modelmax"])
def test_hostile_modelmax_model_from_a_queue_url_stays_one_segment(provider_http, builder):
    build = getattr(ADAPTERS["modelmax"], builder)
    for hostile in HOSTILE_IDS:
        benign, hostile_call = build("r1", {"model": PLACEHOLDER}), build("r1", {"model": hostile})
        assert_one_segment(provider_http, benign, hostile_call, hostile)


@pytest.mark.parametrize("value, segment", [(".", "%2E"), ("..", "%2E%2E"), ("...", "..."), ("a/b", "a%2Fb"),
                                            ("x?y#z", "x%3Fy%23z"), ("ü", "%C3%BC"), (42, "42")])
def test_path_segment_encodes_one_segment(value, segment):
    assert adapter_module.path_segment(value) == segment
