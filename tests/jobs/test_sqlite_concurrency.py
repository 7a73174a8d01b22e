"""SQLite as configured (WAL, BEGIN IMMEDIATE, busy timeout) takes eight writers and a cluster at once."""

import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from django.db import connection, connections, transaction
from django_q.models import Success
from django_q.tasks import async_task

from studio.projects.models import Membership, Project, Prompt, PromptVersion, Role
from tests.backends import studio_env

pytestmark = pytest.mark.skipif(connection.vendor != "sqlite", reason=(
    "about SQLite's own locking (WAL, BEGIN IMMEDIATE, busy timeout); a server database queues writers itself"))

ROOT = Path(__file__).resolve().parents[2]
WRITERS = 8
WRITES_PER_WRITER = 25
CLUSTER_TASKS = 40


def write_a_lot(worker, user, errors):
    """Each write is a read-then-write transaction: the pattern that deadlocks under DEFERRED transactions."""
    try:
        for n in range(WRITES_PER_WRITER):
            with transaction.atomic():
                project = Project.objects.create(name=f"w{worker}-{n}", created_by=user)
                Membership.objects.create(project=project, user=user, role=Role.OWNER)
                prompt = Prompt.objects.create(project=project, title="t")
                latest = PromptVersion.objects.filter(prompt=prompt).count()
                PromptVersion.objects.create(prompt=prompt, number=latest + 1, text=f"take {n}")
    except Exception as error:  # collected and asserted on in the main thread
        errors.append(repr(error))
    finally:
        connections.close_all()


@pytest.fixture
def cluster_process(settings):
    """A real `manage.py qcluster` on the same database file the test uses."""
    process = subprocess.Popen([sys.executable, "manage.py", "qcluster"], cwd=ROOT,
                               env=studio_env(STUDIO_Q_WORKERS=2), stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    yield process
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()


@pytest.mark.django_db(transaction=True)
def test_eight_writers_and_the_cluster_never_hit_database_is_locked(django_user_model, cluster_process):
    user = django_user_model.objects.create_user("writer")
    for n in range(CLUSTER_TASKS):
        async_task("math.factorial", n % 10, group="concurrency")
    errors = []
    threads = [threading.Thread(target=write_a_lot, args=(w, user, errors)) for w in range(WRITERS)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    assert Project.objects.count() == WRITERS * WRITES_PER_WRITER
    assert PromptVersion.objects.count() == WRITERS * WRITES_PER_WRITER

    deadline = time.monotonic() + 60
    while Success.objects.filter(group="concurrency").count() < CLUSTER_TASKS and time.monotonic() < deadline:
        time.sleep(0.25)
    cluster_process.send_signal(signal.SIGTERM)
    output, _ = cluster_process.communicate(timeout=30)
    assert "database is locked" not in output
    assert Success.objects.filter(group="concurrency").count() == CLUSTER_TASKS, output[-3000:]
    assert time.monotonic() - started < 120
