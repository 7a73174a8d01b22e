"""The sandbox's faults, as a client on the wire sees them: dripped bytes, replaced answers, huge bodies,
redirect loops, leaked keys, odd task ids, faulty video links, and the request and download logs."""

import base64
import json
import time
from urllib.parse import quote

import httpx
import pytest

from tests.conftest import sandbox_key, wait_for

ODD_ID = "../../../v1/tasks/x?evil=1"
# A valid submit per protocol, where to ask for a task's status, and where its answers put the task id.
PROTOCOLS = {
    "qingbo": {"submit": ("/v1/tasks", {"model": "veo-3.0", "prompt": "A fox", "duration": 4}),
               "status": lambda task_id: (f"/v1/tasks/{quote(task_id, safe='')}", {}),
               "id": lambda answer: answer["task_id"]},
    "apimp": {"submit": ("/api/generate/submit", {"model": "veo-3.0-generate-001",
                                                  "input": {"prompt": "A fox", "duration": 4}}),
              "status": lambda task_id: (f"/api/generate/status/{quote(task_id, safe='')}", {}),
              "id": lambda answer: answer["data"]["task_id"]},
    "uniall": {"submit": ("/v1/video/generations",
                          {"model": "viduq3p-540p", "prompt": "A fox", "duration": 1}),
               "status": lambda task_id: (f"/v1/video/generations/{quote(task_id, safe='')}", {}),
               "id": lambda answer: answer["id"]},
    "veoquery": {"submit": ("/v1/video/create", {"model": "veo3", "prompt": "A fox"}),
                 "status": lambda task_id: ("/v1/video/query", {"id": task_id}),
                 "id": lambda answer: answer["id"]},
    "modelmax": {"submit": ("/v1/queue/veo-3", {"prompt": "A fox", "parameters": {"duration_seconds": 4}}),
                 "status": lambda task_id: (f"/v1/queue/veo-3/requests/{quote(task_id, safe='')}/status", {}),
                 "id": lambda answer: answer["request_id"]},
}


@pytest.fixture
def client(sandbox, monkeypatch):
    # Tiny clips: full-size renders left running in the background would upset the timings measured here.
    monkeypatch.setattr(sandbox.state, "tiny_videos", True)
    with httpx.Client(base_url=sandbox.url, timeout=10.0) as http:
        yield http


def bearer(provider):
    return {"Authorization": f"Bearer {sandbox_key(provider)}"}


def submit(client, provider, headers=None):
    path, body = PROTOCOLS[provider]["submit"]
    return client.post(f"/{provider}{path}", json=body, headers=headers or bearer(provider))


def get_status(client, provider, task_id, headers=None):
    path, params = PROTOCOLS[provider]["status"](task_id)
    return client.get(f"/{provider}{path}", params=params, headers=headers or bearer(provider))


def finished_video_link(sandbox, client):
    """A real uniall task, finished, and the link to its video (a tiny clip of a few dozen KB)."""
    sandbox.set_job_seconds(0.2)
    headers = bearer("uniall")
    task_id = submit(client, "uniall", headers).json()["id"]
    return wait_for(lambda: get_status(client, "uniall", task_id, headers).json()["video_url"])


def timed_qingbo_get(client, path):
    """(response, body, seconds until the head, seconds until the first body byte, seconds until the end)."""
    started = time.monotonic()
    with client.stream("GET", f"/qingbo{path}", headers=bearer("qingbo")) as response:
        head = time.monotonic() - started
        first = None
        body = b""
        for chunk in response.iter_raw():
            first = time.monotonic() - started if first is None else first
            body += chunk
    return response, body, head, first, time.monotonic() - started


# drip -------------------------------------------------------------------------------------------------------


def test_drip_sends_the_head_at_once_and_the_body_one_byte_at_a_time(sandbox, client):
    body = b'{"status": "processing"}'  # 24 bytes: ~0.9 s at 0.04 s a byte
    sandbox.fault("answer", provider="qingbo", on="status", body=body.decode())
    sandbox.fault("drip", provider="qingbo", on="status", seconds=0.04)
    response, received, head, first, total = timed_qingbo_get(client, "/v1/tasks/t1")
    assert received == body
    assert response.headers["content-length"] == str(len(body))
    assert head < 0.4 and first < 0.4
    assert (len(body) - 1) * 0.04 * 0.8 < total < 5.0


def test_drip_slows_a_protocols_own_answer(sandbox, client):
    sandbox.fault("drip", provider="qingbo", on="status", seconds=0.01)
    response, received, _, first, total = timed_qingbo_get(client, "/v1/tasks/unknown")
    assert response.status_code == 404
    assert json.loads(received) == {"error": {"message": "Task not found: unknown", "code": 404}}
    assert first < 0.2
    assert total > (len(received) - 1) * 0.01 * 0.8


def test_drip_on_a_submit_still_creates_the_task(sandbox, client):
    sandbox.fault("drip", provider="uniall", on="submit", seconds=0.002)
    response = submit(client, "uniall")
    assert response.status_code == 200
    assert sandbox.state.task(response.json()["id"], "uniall") is not None


def test_drip_with_headers_drips_the_status_line_and_headers_too(sandbox, client):
    sandbox.fault("answer", provider="qingbo", on="status", body="{}")
    sandbox.fault("drip", provider="qingbo", on="status", seconds=0.004, headers=True)
    _, received, head, _, total = timed_qingbo_get(client, "/v1/tasks/t1")
    assert received == b"{}"
    assert head > 100 * 0.004, "a head of well over 100 bytes, each on its own"
    assert total < 5.0


def test_a_client_that_gives_up_on_a_dripping_download_just_ends_it(sandbox, client, capsys, caplog):
    link = finished_video_link(sandbox, client)
    sandbox.fault("drip", provider="uniall", on="download", seconds=0.01)
    started = time.monotonic()
    with client.stream("GET", link) as response:
        size = int(response.headers["content-length"])
        first = next(response.iter_raw())
        waited = time.monotonic() - started
    assert response.status_code == 200 and size > 10_000
    assert len(first) < 10 and waited < 1.0
    sent = wait_for(lambda: stopped_growing(sandbox))
    assert sent < 100, "the sandbox stopped soon after the client hung up"
    assert "Traceback" not in capsys.readouterr().err
    assert not [record for record in caplog.records if record.levelname == "ERROR"]


def stopped_growing(sandbox):
    before = sandbox.state.downloads_for("uniall")[0]["bytes"]
    time.sleep(0.1)
    after = sandbox.state.downloads_for("uniall")[0]["bytes"]
    return after if after == before else None


def test_a_client_that_hangs_up_on_an_answer_it_did_not_read_leaves_no_traceback(sandbox, client, capsys):
    sandbox.fault("answer", provider="qingbo", on="status", body="x" * 200_000)
    with client.stream("GET", "/qingbo/v1/tasks/t1", headers=bearer("qingbo")) as response:
        assert response.status_code == 200  # the body is left unread: closing now resets the connection
    # Nothing to wait on: the sandbox's side of the connection only notices the reset when it reads again.
    deadline = time.monotonic() + 0.5
    while time.monotonic() < deadline:
        assert "Traceback" not in capsys.readouterr().err
        time.sleep(0.05)


# answer -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("provider, on, body", [
    ("qingbo", "status", '{"status":"processing","progress":"NaN"}'),
    ("qingbo", "status", '{"status":"completed","result":"oops"}'),
    ("modelmax", "result", '{"status":"COMPLETED","data":5}'),
    ("uniall", "status", ""),
    ("apimp", "status", '{"code": 200, "data": '),
])
def test_answer_replaces_the_whole_answer_byte_for_byte(sandbox, client, provider, on, body):
    task_id = PROTOCOLS[provider]["id"](submit(client, provider).json())
    sandbox.fault("answer", provider=provider, on=on, body=body)
    path, params = PROTOCOLS[provider]["status"](task_id)
    if on == "result":
        path = path.removesuffix("/status")
    response = client.get(f"/{provider}{path}", params=params, headers=bearer(provider))
    assert (response.status_code, response.content) == (200, body.encode())
    assert response.headers["content-type"] == "application/json"


def test_answer_sets_the_status_headers_and_content_type(sandbox, client):
    sandbox.fault("answer", provider="veoquery", on="status", status=503, body="<html>busy</html>",
                  headers={"Retry-After": "7", "X-Upstream": "cdn"}, content_type="text/html")
    response = client.get("/veoquery/v1/video/query", params={"id": "x"}, headers=bearer("veoquery"))
    assert (response.status_code, response.text) == (503, "<html>busy</html>")
    assert response.headers["content-type"] == "text/html"
    assert (response.headers["retry-after"], response.headers["x-upstream"]) == ("7", "cdn")


def test_answer_on_a_submit_still_creates_the_task(sandbox, client):
    sandbox.fault("answer", provider="qingbo", on="submit", body="not json at all")
    response = submit(client, "qingbo")
    assert response.text == "not json at all"
    assert [task.provider for task in sandbox.state.tasks.values()] == ["qingbo"]


# huge -------------------------------------------------------------------------------------------------------


def test_huge_answers_valid_json_of_exactly_the_size_asked(sandbox, client):
    size = 5_000_003  # not a whole number of the sandbox's chunks
    sandbox.fault("huge", provider="apimp", on="status", size=size)
    response = client.get("/apimp/api/generate/status/x", headers=bearer("apimp"))
    assert response.status_code == 200
    assert int(response.headers["content-length"]) == len(response.content) == size
    assert response.json()["status"] == "processing"


# redirect_loop ----------------------------------------------------------------------------------------------


def test_redirect_loop_points_every_time_at_the_very_same_url(sandbox, client):
    sandbox.fault("redirect_loop", provider="veoquery", on="status", times=2)
    headers = bearer("veoquery")
    for _ in range(2):
        response = client.get("/veoquery/v1/video/query", params={"id": "veo3:1-a b"}, headers=headers)
        assert response.status_code == 302
        assert response.headers["location"] == str(response.request.url)
    assert client.get("/veoquery/v1/video/query", params={"id": "x"}, headers=headers).status_code == 404


def test_a_client_following_a_redirect_loop_gives_up(sandbox, client):
    sandbox.fault("redirect_loop", provider="qingbo", on="status", times=1000)
    with pytest.raises(httpx.TooManyRedirects):
        client.get("/qingbo/v1/tasks/t1", headers=bearer("qingbo"), follow_redirects=True)


# echo_key ---------------------------------------------------------------------------------------------------


def test_echo_key_repeats_the_key_in_the_protocols_error_shape(sandbox, client):
    key = sandbox_key("qingbo")
    sandbox.fault("echo_key", provider="qingbo", on="status")
    response = client.get("/qingbo/v1/tasks/t1", headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 401
    message = response.json()["error"]["message"]
    assert response.json()["error"]["code"] == 401
    assert key in message
    assert base64.b64encode(key.encode()).decode() in message
    assert f"Authorization: Bearer {key}" in message


def test_echo_key_takes_another_status(sandbox, client):
    sandbox.fault("echo_key", provider="modelmax", on="submit", status=403)
    response = submit(client, "modelmax", {"Authorization": "Bearer not-even-a-sandbox-key"})
    assert response.status_code == 403
    assert "not-even-a-sandbox-key" in response.json()["error"]["message"]
    assert sandbox.state.tasks == {}, "the key is leaked instead of doing the work"


# task_id ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("provider", sorted(PROTOCOLS))
def test_an_odd_task_id_is_found_when_sent_as_one_encoded_segment(sandbox, client, provider):
    sandbox.fault("task_id", provider=provider, value=ODD_ID)
    assert PROTOCOLS[provider]["id"](submit(client, provider).json()) == ODD_ID
    response = get_status(client, provider, ODD_ID)
    assert response.status_code == 200
    assert PROTOCOLS[provider]["id"](response.json()) == ODD_ID


def test_an_odd_task_id_sent_unencoded_reaches_no_route(sandbox, client):
    sandbox.fault("task_id", provider="qingbo", value=ODD_ID)
    submit(client, "qingbo")
    response = client.get(f"/qingbo/v1/tasks/{ODD_ID}", headers=bearer("qingbo"))
    assert response.status_code == 404
    last = sandbox.requests()[-1]
    # The dot segments took the client out of the protocol's prefix altogether.
    assert (last["provider"], last["path"], last["query"]) == ("", "/v1/tasks/x", {"evil": "1"})
    assert (last["unrouted"], last["status"]) == (True, 404)
    assert [r["method"] for r in sandbox.requests("qingbo")] == ["POST"]


def test_an_odd_task_id_finishes_with_a_video_link_that_works(sandbox, client):
    sandbox.fault("task_id", provider="uniall", value=ODD_ID)
    link = finished_video_link(sandbox, client)
    video = client.get(link)
    assert (video.status_code, video.headers["content-type"]) == (200, "video/mp4")
    assert sandbox.state.downloads_for("uniall")[0]["task_id"] == ODD_ID


# Faults on video downloads ----------------------------------------------------------------------------------


def test_a_download_fault_can_make_a_link_always_dead(sandbox, client):
    link = finished_video_link(sandbox, client)
    sandbox.fault("server_error", provider="uniall", on="download", status=404, times=1000)
    assert [client.get(link).status_code for _ in range(3)] == [404, 404, 404]
    assert [d["status"] for d in sandbox.state.downloads_for("uniall")] == [404, 404, 404]


def test_latency_on_a_download(sandbox, client):
    link = finished_video_link(sandbox, client)
    sandbox.fault("latency", provider="uniall", on="download", seconds=0.5)
    started = time.monotonic()
    assert client.get(link).status_code == 200
    assert time.monotonic() - started >= 0.5


def test_answer_and_redirect_loop_on_a_download(sandbox, client):
    link = finished_video_link(sandbox, client)
    sandbox.fault("redirect_loop", provider="uniall", on="download")
    sandbox.fault("answer", provider="uniall", on="download", status=200, body="<Error>NoSuchKey</Error>",
                  content_type="application/xml")
    looped = client.get(link)
    assert (looped.status_code, looped.headers["location"]) == (302, link)
    replaced = client.get(link)
    assert replaced.text == "<Error>NoSuchKey</Error>"
    assert replaced.headers["content-type"] == "application/xml"
    assert client.get(link).headers["content-type"] == "video/mp4"


def test_download_faults_of_another_provider_leave_the_link_alone(sandbox, client):
    link = finished_video_link(sandbox, client)
    sandbox.fault("server_error", provider="qingbo", on="download", times=1000)
    assert client.get(link).status_code == 200


def test_modelmax_content_route_takes_download_faults_and_is_logged_as_a_download(sandbox, client):
    sandbox.set_job_seconds(0.2)
    headers = bearer("modelmax")
    task_id = submit(client, "modelmax", headers).json()["request_id"]
    wait_for(lambda: get_status(client, "modelmax", task_id, headers).json()["status"] == "COMPLETED")
    result = client.get(f"/modelmax/v1/queue/veo-3/requests/{task_id}", headers=headers).json()
    content = f"/modelmax{result['data'][0]['url']}"
    sandbox.fault("server_error", provider="modelmax", on="download", status=503)
    assert client.get(content, headers=headers).status_code == 503
    video = client.get(content, headers=headers)
    assert video.status_code == 200
    logged = sandbox.state.downloads_for("modelmax")
    assert [(d["task_id"], d["path"], d["status"]) for d in logged] == [(task_id, content, 503),
                                                                       (task_id, content, 200)]
    assert logged[1]["bytes"] == len(video.content)
    assert [r["status"] for r in sandbox.requests("modelmax") if "/content/" in r["path"]] == [503, 200]


# The logs ---------------------------------------------------------------------------------------------------


def test_a_download_is_logged_with_its_task_status_and_bytes(sandbox, client):
    link = finished_video_link(sandbox, client)
    calls = sandbox.count("uniall")
    video = client.get(link)
    logged = client.get("/_sandbox/downloads", params={"provider": "uniall"}).json()
    assert logged["count"] == 1
    entry = logged["downloads"][0]
    assert (entry["provider"], entry["status"], entry["bytes"]) == ("uniall", 200, len(video.content))
    assert entry["path"] == httpx.URL(link).path
    assert sandbox.state.task(entry["task_id"], "uniall") is not None
    assert sandbox.count("uniall") == calls, "a video link is not an API call"


def test_a_dead_link_is_logged_as_a_download_of_no_known_provider(sandbox, client):
    assert client.get("/_files/nothing/1/0.mp4").status_code == 404
    assert [(d["provider"], d["task_id"], d["status"]) for d in sandbox.state.downloads_for()] == [
        ("", "nothing", 404)]


def test_requests_outside_every_route_are_logged_as_unrouted(sandbox, client):
    client.get("/nowhere/at/all?x=1")
    client.get("/qingbo/v2/unknown", headers=bearer("qingbo"))
    client.get("/_sandbox/tasks")
    unrouted = sandbox.requests()
    assert [(r["provider"], r["path"], r["unrouted"], r["status"]) for r in unrouted] == [
        ("", "/nowhere/at/all", True, 404), ("", "/qingbo/v2/unknown", True, 404)]
    assert unrouted[0]["query"] == {"x": "1"}
    assert sandbox.requests("qingbo") == []


def test_routed_calls_are_logged_with_the_status_finally_answered(sandbox, client):
    sandbox.fault("server_error", provider="uniall", on="submit", status=502)
    submit(client, "uniall")
    submit(client, "uniall")
    submit(client, "uniall", {"Authorization": "Bearer wrong"})
    assert [r["status"] for r in sandbox.submits("uniall")] == [502, 200, 401]
    assert "unrouted" not in sandbox.submits("uniall")[0]


def test_a_post_whose_body_is_not_json_keeps_an_excerpt(sandbox, client):
    body = b"prompt=" + "é".encode() + b"\xff" + b"x" * 400
    client.post("/qingbo/v1/tasks", content=body, headers=bearer("qingbo"))
    entry = sandbox.submits("qingbo")[0]
    assert (entry["json"], entry["status"]) == (None, 400)
    assert entry["body_excerpt"] == body[:300].decode(errors="replace")
    submit(client, "qingbo")
    assert "body_excerpt" not in sandbox.submits("qingbo")[1]


# Queuing faults ---------------------------------------------------------------------------------------------


def test_an_unknown_fault_kind_is_refused(sandbox, client):
    response = client.post("/_sandbox/faults", json={"kind": "redirect-loop", "provider": "qingbo"})
    assert response.status_code == 400
    assert "unknown fault kind 'redirect-loop'" in response.json()["error"]


def test_refusals_are_taken_in_the_order_they_were_queued(sandbox, client):
    sandbox.fault("server_error", provider="qingbo", on="status", status=500)
    sandbox.fault("rate_limit", provider="qingbo", on="status")
    sandbox.fault("redirect_loop", provider="qingbo", on="status")
    answers = [client.get("/qingbo/v1/tasks/t1", headers=bearer("qingbo")).status_code for _ in range(4)]
    assert answers == [500, 429, 302, 404]

