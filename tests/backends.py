"""The test run's own database and task queue, in this process and in every process a test starts.

The suite follows DATABASE_URL and REDIS_URL (without them: SQLite and django-q2's ORM broker). Whatever they
point at, tests work only on pytest-django's test database and on a task queue named after this test process,
so nothing of a developer's own data or cluster is touched, and two test runs (or xdist workers) sharing one
Redis never take each other's tasks. Processes started by tests get both through studio_env().
"""

import os
from urllib.parse import quote, urlsplit

from django.conf import settings
from django.db import connection
from django_q.brokers import get_broker
from django_q.conf import Conf
from django_q.signing import SignedPackage

TEST_QUEUE = f"studio-test-{os.getpid()}"
# Imported by conftest before any test runs: the database named in the settings, never the one tests work on.
CONFIGURED_DATABASE = connection.settings_dict["NAME"]


def use_test_queue():
    """Point this process's django-q2 at the test queue; called before any task is queued. django-q2 read its
    settings when Django started, before any test code ran, so its configuration is set where it keeps it."""
    settings.Q_CLUSTER["name"] = Conf.PREFIX = Conf.CLUSTER_NAME = TEST_QUEUE
    Conf.Q_STAT = f"django_q:{TEST_QUEUE}:cluster"


def uses_redis():
    return not Conf.ORM


def queued_tasks():
    """(function path, arguments) of every task waiting in the test queue, oldest first, whichever the broker."""
    broker = get_broker()
    if uses_redis():
        payloads = broker.connection.lrange(broker.list_key, 0, -1)
    else:
        payloads = broker.get_connection().filter(key=broker.list_key).order_by("id").values_list("payload", flat=True)
    return [(task["func"], task["args"]) for task in map(SignedPackage.loads, payloads)]


def purge_test_queue():
    get_broker().purge_queue()


def database_name():
    name = connection.settings_dict["NAME"]
    assert name != CONFIGURED_DATABASE, "the test database is not set up yet: the test needs a database fixture"
    return name


def database_url():
    """The test database, as DATABASE_URL for another process: the run's own URL with the test database's name
    (credentials, host and options stay as they are)."""
    return urlsplit(os.environ["DATABASE_URL"])._replace(path="/" + quote(database_name())).geturl()


def studio_env(**overrides):
    """The environment for a `manage.py` command started by a test: the test database and the test queue."""
    env = {**os.environ, "STUDIO_Q_NAME": TEST_QUEUE, "PYTHONUNBUFFERED": "1"}
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)  # set for Playwright in this process only
    if connection.vendor == "sqlite":
        env.pop("DATABASE_URL", None)
        env["STUDIO_SQLITE_PATH"] = str(database_name())
    else:
        env["DATABASE_URL"] = database_url()
    env.update({key: str(value) for key, value in overrides.items()})
    return env


def close_other_connections():
    """End every other session on the test database (threads that never closed theirs, processes killed
    mid-query), so that it can be dropped. SQLite has none to end."""
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                       "WHERE datname = current_database() AND pid <> pg_backend_pid()")
