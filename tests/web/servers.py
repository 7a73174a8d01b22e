"""Real web servers for tests: gunicorn as `make run` starts it (deploy/gunicorn.conf.py, DEBUG off), on the test
database and the test's media folder, and clients that sign in with a session made in the test."""

import ctypes
import os
import signal
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from django.conf import settings
from django.test import Client

from tests.backends import studio_env
from tests.conftest import wait_for
from tests.web.test_run_command import free_port

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session", name="collected_static")
def collected_static_fixture(tmp_path_factory):
    """Static files as production has them (hashed, compressed): pages with DEBUG off link to them. Collected
    once for every server the tests start (it takes seconds), with no database (it reads none)."""
    root = tmp_path_factory.mktemp("staticfiles")
    env = {**os.environ, "DEBUG": "0", "SECRET_KEY": settings.SECRET_KEY, "STUDIO_ENCRYPTION_KEYS": ",".join(
        settings.STUDIO_ENCRYPTION_KEYS), "STUDIO_DATA_DIR": str(root.parent / "data"), "STUDIO_STATIC_ROOT": str(root)}
    subprocess.run([sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"], cwd=ROOT, env=env,
                   check=True, timeout=300)
    return root


class Server:
    def __init__(self, process, url, log):
        self.process, self.url, self.log = process, url, log

    def output(self):
        return self.log.read_text()


@contextmanager
def gunicorn(tmp_path, static_root, *options, **environment):
    """gunicorn with the studio's configuration (plus `options`) on a free loopback port, stopped at the end. It
    runs with DEBUG off, served at its own http:// address, unless `environment` says otherwise."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = studio_env(**{
        "DEBUG": 0, "SECRET_KEY": settings.SECRET_KEY, "STUDIO_ENCRYPTION_KEYS": ",".join(
            settings.STUDIO_ENCRYPTION_KEYS), "STUDIO_DATA_DIR": tmp_path, "STUDIO_MEDIA_ROOT": settings.MEDIA_ROOT,
        "STUDIO_STATIC_ROOT": static_root, "ALLOWED_HOSTS": "127.0.0.1,localhost", "STUDIO_PUBLIC_URL": url,
        **environment})
    for name in ("STUDIO_WEB_WORKERS", "STUDIO_WEB_THREADS", "STUDIO_MEDIA_HANDOFF", "GUNICORN_CMD_ARGS",
                 "SECURE_SSL_REDIRECT", "SECURE_PROXY_SSL_HEADER_ENABLED"):
        if name not in environment:
            env.pop(name, None)
    log = tmp_path / f"gunicorn-{port}.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--config", "deploy/gunicorn.conf.py", "--bind", f"127.0.0.1:{port}",
             *options], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            preexec_fn=ends_with_this_process)
    server = Server(process, url, log)
    try:
        wait_for(lambda: _answers(url) or process.poll() is not None, timeout=60)
        assert process.poll() is None, server.output()
        yield server
    finally:
        stop(process)


PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
_prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up before forking, never in the child


def ends_with_this_process():
    """Popen's preexec_fn for a server: Linux sends it SIGTERM (it then stops its own workers) if the test run
    dies without stopping it, killed or timed out. The signal follows the thread that started it: the test's."""
    _prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def stop(process, timeout=15):
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _answers(url):
    """Whether a worker answers at all (what it answers is for the test to check: a redirect to https, say)."""
    try:
        return bool(httpx.get(f"{url}/login/", timeout=2))
    except httpx.TransportError:
        return False


def session_cookie(user):
    """The session cookie of `user`, signed in through the test database that the server reads too."""
    client = Client()
    client.force_login(user)
    return client.cookies[settings.SESSION_COOKIE_NAME].value
