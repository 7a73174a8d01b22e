"""Jobs run for real: database rows, the sandbox over HTTP, files on disk, the studio serving signed images."""

import pytest

from studio.projects.models import Project
from studio.providers.models import Protocol, ProviderAccount
from tests.conftest import sandbox_key


@pytest.fixture
def studio_for_sandbox(settings, live_server, sandbox):
    """Settings a demo machine has: providers fetch images from the live studio, downloads from loopback."""
    settings.STUDIO_PUBLIC_URL = live_server.url
    settings.STUDIO_DOWNLOAD_ALLOW_HOSTS = ["127.0.0.1"]
    settings.STUDIO_PROVIDER_READ_TIMEOUT = 10.0
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
