"""The README's run command: demo data made once, every process started, Ctrl-C stops them all."""

import io
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from studio.projects.models import Project
from tests.backends import studio_env

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.django_db
def test_demo_setup_twice_creates_everything_once(monkeypatch):
    monkeypatch.setenv("STUDIO_ADMIN_PASSWORD", "demo-pass-123")
    first, second = io.StringIO(), io.StringIO()
    call_command("demo_setup", stdout=first)
    call_command("demo_setup", stdout=second)
    assert get_user_model().objects.filter(username="admin", is_superuser=True).count() == 1
    assert Project.objects.filter(slug="demo").count() == 1
    assert "Sign in as: admin / demo-pass-123" in second.getvalue()
    assert "Created" not in second.getvalue()
    assert get_user_model().objects.get(username="admin").check_password("demo-pass-123")


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def answer(url, timeout=60):
    """The first answer from a server that is still starting."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return httpx.get(url, timeout=2)
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


def processes_started_with(marker):
    """Every live process whose environment holds `marker`: children, grandchildren, orphans alike."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker.encode() in (entry / "environ").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


@pytest.mark.parametrize("stop", ["ctrl-c", "sigterm"])
def test_runstudio_serves_pages_and_stopping_it_stops_every_process(tmp_path, stop, transactional_db):
    sandbox_port = free_port()
    env = studio_env(STUDIO_DATA_DIR=tmp_path, STUDIO_SANDBOX_URL=f"http://127.0.0.1:{sandbox_port}")
    port = free_port()
    process = subprocess.Popen([sys.executable, "manage.py", "runstudio", "--port", str(port)], cwd=ROOT, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        assert answer(f"http://127.0.0.1:{port}/").status_code == 302
        assert answer(f"http://127.0.0.1:{sandbox_port}/_sandbox/requests").json()["count"] == 0
        time.sleep(1.0)
        if stop == "ctrl-c":
            os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in a terminal does: the whole foreground group
        else:
            process.send_signal(signal.SIGTERM)  # what a supervisor does: only the parent is told
        output, _ = process.communicate(timeout=60)
    except BaseException:
        # honcho starts each process in its own session: a failed test must find them by their environment.
        for pid in processes_started_with(f"STUDIO_DATA_DIR={tmp_path}"):
            os.kill(pid, signal.SIGKILL)
        raise
    assert f"Studio is starting at http://127.0.0.1:{port}/" in output
    assert len(re.findall(r"(?:web|cluster|sandbox) started \(pid=\d+\)", output)) == 3, output
    deadline = time.monotonic() + 15
    while processes_started_with(f"STUDIO_DATA_DIR={tmp_path}") and time.monotonic() < deadline:
        time.sleep(0.3)
    assert processes_started_with(f"STUDIO_DATA_DIR={tmp_path}") == [], output
    assert "Q Cluster" in output and "stopped" in output


@pytest.mark.django_db
def test_demo_setup_adds_one_sandbox_account_per_protocol(settings, monkeypatch):
    monkeypatch.setenv("STUDIO_ADMIN_PASSWORD", "demo-pass-123")
    from studio.providers.models import Protocol, ProviderAccount

    call_command("demo_setup", stdout=io.StringIO())
    call_command("demo_setup", stdout=io.StringIO())
    accounts = ProviderAccount.objects.order_by("provider")
    assert sorted(a.provider for a in accounts) == sorted(Protocol.values)
    for account in accounts:
        assert account.base_url == f"{settings.STUDIO_SANDBOX_URL}/{account.provider}"
        assert account.api_key.startswith("sk-sandbox-")
