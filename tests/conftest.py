"""Fixtures shared by every layer: a real sandbox server over loopback and a tiny image host."""

import os
import secrets
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import httpx
import pytest

from studio.projects.models import Project
from studio.providers.models import Protocol, ProviderAccount
from studio.sandbox.server import start_in_thread
from tests import backends

# Playwright's sync API runs an event loop in the test thread; the ORM calls made by tests are still synchronous.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
backends.use_test_queue()


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """pytest-django's test database, which it drops at the end: PostgreSQL refuses while anyone is connected,
    so connections left by threads and killed processes are ended first."""
    yield
    with django_db_blocker.unblock():
        if backends.uses_redis():
            backends.purge_test_queue()
        backends.close_other_connections()


@pytest.fixture(autouse=True)
def empty_test_queue():
    """Each test starts with an empty task queue. The ORM broker's queue is a table, emptied with the rest of the
    database; a Redis queue outlives a test."""
    if backends.uses_redis():
        backends.purge_test_queue()


SANDBOX_JOB_SECONDS = 1.0


@pytest.fixture(scope="session")
def sandbox_server(tmp_path_factory):
    server = start_in_thread(job_seconds=SANDBOX_JOB_SECONDS, media_dir=tmp_path_factory.mktemp("sandbox-media"))
    yield server
    server.shutdown()


class SandboxHandle:
    """What a test needs from the sandbox: where it is, faults on demand, and what it received."""

    def __init__(self, server):
        self.server = server
        self.url = server.url
        self.state = server.sandbox

    def base_url(self, provider):
        return f"{self.url}/{provider}"

    def fault(self, kind, **options):
        return self.state.add_fault(kind=kind, **options)

    def requests(self, provider=""):
        return self.state.requests_for(provider)

    def count(self, provider=""):
        return len(self.requests(provider))

    def submits(self, provider=""):
        return [r for r in self.requests(provider) if r["method"] == "POST"]

    def set_job_seconds(self, seconds):
        self.state.job_seconds = seconds


@pytest.fixture
def sandbox(sandbox_server):
    sandbox_server.sandbox.reset(job_seconds=SANDBOX_JOB_SECONDS)
    yield SandboxHandle(sandbox_server)
    sandbox_server.sandbox.reset(job_seconds=SANDBOX_JOB_SECONDS)


def sandbox_key(provider):
    return f"sk-sandbox-{provider}-{secrets.token_hex(4)}"


class _ImageHandler(BaseHTTPRequestHandler):
    def do_GET(self):
        content = self.server.files.get(self.path)
        if content is None:
            self.send_response(404)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "image/png" if self.path.endswith(".png") else "image/jpeg")
        self.send_header("Content-Length", str(len(content)))
        self.end_headers()
        self.wfile.write(content)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="session")
def image_host():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _ImageHandler)
    server.files = {}
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()


@pytest.fixture
def image_url(image_host):
    """image_url(content, suffix) -> an http URL on loopback serving those bytes (for URL-taking providers)."""

    def publish(content, suffix=".png"):
        path = f"/{secrets.token_hex(6)}{suffix}"
        image_host.files[path] = content
        return f"http://127.0.0.1:{image_host.server_address[1]}{path}"

    return publish


def wait_for(predicate, timeout=20.0, interval=0.1):
    """Poll until predicate() is truthy; return its value or fail the test with a clear message."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"condition not met within {timeout} s")


@pytest.fixture
def http():
    with httpx.Client(timeout=10.0) as client:
        yield client


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    """Every test writes uploads and videos to its own directory, never to the developer's var/."""
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.MEDIA_ROOT.mkdir()
    return settings.MEDIA_ROOT


@pytest.fixture(autouse=True)
def fresh_account_health():
    """The health tracker remembers paused accounts per process; each test starts with a clean view."""
    from studio.providers.health import tracker

    tracker.forget()
    yield
    tracker.forget()


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    """Real hashing costs ~0.3 s a user; the tests are about access, not hashing strength."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


# Jobs run for real: database rows, the sandbox over HTTP, files on disk, the studio serving signed images.


@pytest.fixture
def studio_for_sandbox(settings, live_server, sandbox):
    """Settings a demo machine has: providers fetch images from the live studio, downloads from loopback."""
    settings.STUDIO_PUBLIC_URL = live_server.url
    settings.STUDIO_SANDBOX_URL = sandbox.url  # so the studio knows these accounts are the sandbox
    settings.STUDIO_DOWNLOAD_ALLOW_HOSTS = [urlsplit(sandbox.url).netloc]  # the sandbox's port, not all of loopback
    settings.STUDIO_PROVIDER_READ_TIMEOUT = 10.0
    # Retries of failed steps come quickly here; the growth and the caps are what tests look at.
    settings.STUDIO_BACKOFF_BASE_SECONDS = 0.2
    settings.STUDIO_BACKOFF_MAX_SECONDS = 2.0
    return sandbox


@pytest.fixture
def demo_project(transactional_db):
    return Project.objects.create(name="Demo project", slug="demo")


@pytest.fixture
def sandbox_accounts(studio_for_sandbox, transactional_db):
    """One account per protocol, polled every 0.2 s so tests do not wait on real-world pacing."""
    accounts = {}
    for protocol in Protocol.values:
        account = ProviderAccount(provider=protocol, name=f"sandbox-{protocol}",
                                  base_url=studio_for_sandbox.base_url(protocol), poll_seconds=0.2)
        account.set_api_key(sandbox_key(protocol))
        account.save()
        accounts[protocol] = account
    return accounts
