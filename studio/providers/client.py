"""The one place that talks HTTP to providers: timeouts, pooling, error translation, redaction.

A POST is retried only when the connection was never made (nothing can have reached the provider).
Once a POST has been sent, a read timeout, a dropped connection, a 5xx or an unreadable answer is
*ambiguous*: the provider may have accepted the job, so it is reported as such and never resent here.
"""

import json
import logging
import threading
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from urllib.parse import urljoin, urlsplit

import httpx
from django.conf import settings

from studio.core.redaction import redact, redact_data
from studio.providers.base import ProviderError
from studio.providers.registry import adapter_for

logger = logging.getLogger(__name__)

CONNECT_RETRIES = 2
PERMANENT_STATUSES = {400: "invalid request", 401: "API key refused", 402: "insufficient balance",
                      403: "access denied", 404: "not found", 405: "method not allowed", 413: "request too large",
                      422: "invalid request"}
PAYLOAD_STRING_LIMIT = 300


def timeouts():
    return httpx.Timeout(
        connect=getattr(settings, "STUDIO_PROVIDER_CONNECT_TIMEOUT", 5.0),
        read=getattr(settings, "STUDIO_PROVIDER_READ_TIMEOUT", 30.0),
        write=30.0,
        pool=10.0,
    )


def retry_after_seconds(value):
    """Retry-After as seconds, from either delta-seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


def loggable(payload):
    """A payload fit for logs and job history: keys redacted, long strings (Base64 images) shortened."""

    def shorten(value):
        if isinstance(value, str) and len(value) > PAYLOAD_STRING_LIMIT:
            return f"{value[:60]}… ({len(value)} characters)"
        if isinstance(value, dict):
            return {k: shorten(v) for k, v in value.items()}
        if isinstance(value, list):
            return [shorten(v) for v in value]
        return value

    return redact_data(shorten(payload))


class ProviderClient:
    """Talks to one provider account. Holds a pooled httpx.Client; reuse it for many calls."""

    def __init__(self, account, *, transport=None):
        self.account = account
        self.adapter = adapter_for(account.provider)
        self._key = account.api_key
        self._http = httpx.Client(
            base_url=account.base_url.rstrip("/") + "/",
            headers={"Authorization": f"Bearer {self._key}", "Accept": "application/json"},
            timeout=timeouts(),
            transport=transport,
            follow_redirects=False,
        )
        self.exchanges = []  # (call, status, body) for the job history; bodies already redacted

    def close(self):
        self._http.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # Protocol steps ------------------------------------------------------------------------------

    def submit(self, request):
        call = self.adapter.build_submit(request)
        submitted = self.adapter.parse_submit(self.send(call))
        # Later paths of some protocols contain the model id; every adapter can count on finding it here.
        submitted.data.setdefault("model", request.model)
        return submitted

    def status(self, task_id, data):
        return self.adapter.parse_status(self.send(self.adapter.build_status(task_id, data)))

    def result(self, task_id, data):
        return self.adapter.parse_result(self.send(self.adapter.build_result(task_id, data)))

    def cancel(self, task_id, data):
        call = self.adapter.build_cancel(task_id, data)
        if call is None:
            raise ProviderError(f"{self.adapter.label} has no way to cancel a job.", permanent=True)
        return self.send(call)

    # HTTP ----------------------------------------------------------------------------------------

    def send(self, call):
        """Make one call and return its JSON body, or raise ProviderError."""
        path = call.path.lstrip("/") if not call.path.startswith("http") else call.path
        for attempt in range(CONNECT_RETRIES + 1):
            try:
                response = self._http.request(call.method, path, json=call.json, params=call.params)
                break
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as error:
                # Nothing reached the provider, so even a POST is safe to try again.
                if attempt == CONNECT_RETRIES:
                    raise ProviderError(f"Could not connect to {self._host()}: {redact(str(error)) or type(error).__name__}") from None
                time.sleep(0.5 * (attempt + 1))
            except httpx.TimeoutException:
                raise self._after_sending(call, f"No answer from {self._host()} within the time limit") from None
            except httpx.TransportError as error:
                raise self._after_sending(call, f"The connection to {self._host()} broke: {redact(str(error))}") from None
        return self._read(call, response)

    def _after_sending(self, call, message):
        if call.is_post:
            return ProviderError(
                f"{message}. The provider may have accepted the job.", ambiguous=True
            )
        return ProviderError(message)

    def _read(self, call, response):
        body = self._json_or_text(response)
        self.exchanges.append({"method": call.method, "path": call.path, "status": response.status_code,
                               "request": loggable(call.json), "response": loggable(body)})
        logger.info("%s %s %s -> %s", self.account.name, call.method, redact(str(response.request.url)), response.status_code)
        status = response.status_code
        if status == 429:
            raise ProviderError(
                f"Rate limited: {self.adapter.error_message(status, body)}",
                retry_after=retry_after_seconds(response.headers.get("Retry-After")),
                status_code=status, body=body,
            )
        if status >= 500:
            message = f"Provider error {status}: {self.adapter.error_message(status, body)}"
            error = self._after_sending(call, message)
            error.status_code, error.body = status, body
            raise error
        if status >= 400:
            raise ProviderError(
                self.adapter.error_message(status, body) or PERMANENT_STATUSES.get(status, f"HTTP {status}"),
                permanent=True, status_code=status, body=body,
            )
        if not isinstance(body, (dict, list)):
            message = f"Unreadable answer from {self._host()} (not JSON): {str(body)[:200]}"
            raise (ProviderError(message + ". The provider may have accepted the job.", ambiguous=True)
                   if call.is_post else ProviderError(message))
        try:
            self.adapter.check_body(status, body)
        except ProviderError as error:
            # An error inside a 200 answer to a POST that is not clearly a refusal may still mean "accepted".
            if call.is_post and error.transient:
                error.ambiguous = True
                error.message = f"{error.message}. The provider may have accepted the job."
                error.args = (error.message,)
            raise
        return body

    @staticmethod
    def _json_or_text(response):
        try:
            return response.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            return redact(response.text[:2000])

    def _host(self):
        return urlsplit(self.account.base_url).netloc or self.account.base_url

    # Downloads -----------------------------------------------------------------------------------

    def absolute_url(self, url):
        """Provider answers give paths like "/v1/queue/…"; they live under the account's base URL."""
        if urlsplit(url).scheme:
            return url
        return urljoin(self.account.base_url.rstrip("/") + "/", url.lstrip("/"))

    def download_headers(self, url):
        """The Bearer header goes only to the provider's own host, and only when the provider needs it."""
        if self.adapter.download_needs_auth and urlsplit(url).netloc == urlsplit(self.account.base_url).netloc:
            return {"Authorization": f"Bearer {self._key}"}
        return {}

    @contextmanager
    def stream_download(self, url, *, http):
        """Open a streaming GET for a video with the right headers; `http` is the caller's guarded client."""
        url = self.absolute_url(url)
        with http.stream("GET", url, headers=self.download_headers(url)) as response:
            yield response


_clients = {}
_clients_lock = threading.Lock()


def client_for(account):
    """A pooled client per account, rebuilt when the account changes (new key, new base URL)."""
    cache_key = (account.pk, account.updated_at, threading.get_ident())
    with _clients_lock:
        client = _clients.get(cache_key)
        if client is None:
            for key in [k for k in _clients if k[0] == account.pk and k[2] == cache_key[2]]:
                _clients.pop(key).close()
            client = _clients[cache_key] = ProviderClient(account)
        client.exchanges = []
        return client
