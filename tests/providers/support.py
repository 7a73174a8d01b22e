"""Driving one provider job over HTTP without the database: submit, poll, fetch the result, download."""

import time

import httpx

from studio.providers.base import State
from studio.providers.client import ProviderClient
from studio.providers.models import ProviderAccount
from tests.conftest import sandbox_key


def sandbox_account(sandbox, provider, *, key=None, name=None):
    """An unsaved ProviderAccount pointing at the sandbox (enough for ProviderClient; no database needed)."""
    account = ProviderAccount(provider=provider, name=name or f"sandbox-{provider}", base_url=sandbox.base_url(provider))
    account.set_api_key(key or sandbox_key(provider))
    return account


def client_for_sandbox(sandbox, provider, **options):
    return ProviderClient(sandbox_account(sandbox, provider, **options))


def run_to_end(client, request, *, timeout=30.0, interval=0.2):
    """Submit and poll until the provider reports a terminal state. Returns (submitted, final StatusUpdate)."""
    submitted = client.submit(request)
    deadline = time.monotonic() + timeout
    while True:
        update = client.status(submitted.task_id, submitted.data)
        if update.state == State.SUCCEEDED and update.needs_result:
            update = client.result(submitted.task_id, submitted.data)
        if update.is_terminal:
            return submitted, update
        if time.monotonic() > deadline:
            raise AssertionError(f"job {submitted.task_id} still {update.raw_status} after {timeout} s")
        time.sleep(interval)


def download(client, url, destination):
    """Fetch a result video with the headers the provider needs; returns the HTTP status."""
    with httpx.Client(timeout=30.0) as http, client.stream_download(url, http=http) as response:
        if response.status_code == 200:
            with open(destination, "wb") as handle:
                for chunk in response.iter_bytes():
                    handle.write(chunk)
        return response.status_code
