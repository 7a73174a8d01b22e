"""The task broker (Redis in production) down: nothing a person does fails for it, and nothing is sent twice.

Jobs are sent by the poller from the database, so making one never touches the broker; only a stored video's
probe and poster go through it, and a video stored while it is down is processed by the sweep once it is back.
The broker here is a real Redis client pointed at a port where nothing listens.
"""

import io
import json
import socket
from datetime import timedelta

import pytest
import redis
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone
from django_q.brokers import get_broker
from django_q.conf import Conf

from studio.jobs import services
from studio.jobs.models import Job, JobState, Result
from studio.jobs.poller import step_once
from tests.backends import queued_tasks
from tests.helpers import CHEAP_MODELS

PROMPT = "A paper boat on a rain-soaked street, low angle"


@pytest.fixture
def broker_down():
    """Yields a function that brings the broker back."""
    with socket.socket() as probe:  # a port nothing listens on: connections are refused at once
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Conf, "ORM", None)
        patch.setattr(Conf, "DJANGO_REDIS", None)
        patch.setattr(Conf, "REDIS", f"redis://127.0.0.1:{port}/0")
        with pytest.raises(Exception):  # noqa: B017 - whatever redis raises: the point is that it is down
            get_broker().enqueue("ping")
        yield patch.undo


@pytest.mark.django_db
def test_generate_without_wait_makes_one_queued_job_and_exits_cleanly(broker_down, sandbox_accounts, demo_project,
                                                                     sandbox):
    model, params = CHEAP_MODELS["qingbo"]
    args = ["--account", sandbox_accounts["qingbo"].name, "--model", model, "--prompt", PROMPT, "--json"]
    for name, value in params.items():
        args += ["--set", f"{name}={value}"]
    out = io.StringIO()
    with pytest.raises(SystemExit) as exit_info:
        call_command("generate", *args, stdout=out)
    assert exit_info.value.code == 0
    report = json.loads(out.getvalue())
    assert report["state"] == "queued"
    assert Job.objects.count() == 1 and Job.objects.get().state == JobState.QUEUED
    assert sandbox.count() == 0


@pytest.mark.django_db
def test_the_composer_sends_once_and_shows_the_cards(broker_down, client, team, sandbox_accounts, sandbox):
    project, users = team
    client.force_login(users["editor"])
    model, params = CHEAP_MODELS["qingbo"]
    target = f"{sandbox_accounts['qingbo'].pk}:{model}"
    response = client.post(reverse("composer_submit", args=[project.slug]),
                           {"prompt": PROMPT, "targets": target, **params}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    job = Job.objects.get()
    assert f'id="job-{job.pk}"' in response.content.decode()
    assert job.state == JobState.QUEUED


@pytest.mark.django_db(transaction=True)
def test_a_video_stored_while_the_broker_is_down_is_kept_and_processed_once_it_is_back(
        broker_down, sandbox_accounts, demo_project, sandbox):
    model, params = CHEAP_MODELS["qingbo"]
    job = services.job_create(project=demo_project, user=None, account=sandbox_accounts["qingbo"], model=model,
                              params={"prompt": PROMPT, **params})
    deadline = timezone.now() + timedelta(seconds=60)
    while job.state not in (JobState.SUCCEEDED, JobState.FAILED) and timezone.now() < deadline:
        Job.objects.filter(pk=job.pk).update(next_poll_at=timezone.now())
        step_once(job)
    assert job.state == JobState.SUCCEEDED, job.error_message
    result = Result.objects.get(job=job)
    assert result.bytes > 0 and result.processed_at is None
    assert len(sandbox.submits("qingbo")) == 1

    broker_down()  # the broker is back: the sweep finds the video whose processing it could not queue
    Result.objects.filter(pk=result.pk).update(created_at=timezone.now() - timedelta(minutes=10))
    services.results_process_pending(older_than=120)
    assert ("studio.jobs.tasks.process_result", (result.pk,)) in queued_tasks()


def test_the_redis_url_gets_timeouts_unless_it_sets_its_own():
    from studio.settings import redis_url_with_timeouts

    url = redis_url_with_timeouts("rediss://:p%40ss@cache.lan:6380/2?socket_timeout=30", connect=2, reply=10)
    client = redis.from_url(url)
    options = client.connection_pool.connection_kwargs
    assert (options["socket_connect_timeout"], options["socket_timeout"]) == (2, 30)
    assert (options["host"], options["port"], options["db"], options["password"]) == ("cache.lan", 6380, 2, "p@ss")
