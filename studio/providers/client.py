"""The one place that talks HTTP to providers: time and size limits, error translation, redaction.

Every call has a total time limit (connect, send, every read: one deadline, see studio.providers.http)
and an answer size limit; an answer over the limit is an error, never parsed. Requests stay under the
account's base URL: a provider id can never steer an authenticated call elsewhere.

Whether a failed POST may have reached the provider is decided by what actually happened on the wire:
the request is built (body encoded) first, then `hooks.before_bytes()` runs at the last moment before
the first byte is written (the job layer commits its "sent" mark there), and only an error after that
point can be *ambiguous*. Before it, nothing left this machine, so any error is safe to retry.
"""

import json
import logging
import threading
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

import httpx
from django.conf import settings

from studio.core.redaction import bounded_payload, public_text, redact, redact_data
from studio.providers.base import NotNow, ProviderError
from studio.providers.http import BoundedTransport, CallCancelled, call_budget, guarded_transport, read_limited
from studio.providers.registry import adapter_for

logger = logging.getLogger(__name__)

CONNECT_RETRIES = 2
PERMANENT_STATUSES = {400: "invalid request", 401: "API key refused", 402: "insufficient balance",
                      403: "access denied", 404: "not found", 405: "method not allowed", 413: "request too large",
                      422: "invalid request"}
PAYLOAD_STRING_LIMIT = 300
EXCERPT = 300
MAX_TASK_ID = 200  # the column's length


def retry_after_seconds(value):
    """Retry-After as seconds, from either delta-seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return min(float(value), 24 * 3600.0)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return min(24 * 3600.0, max(0.0, (when - datetime.now(timezone.utc)).total_seconds()))


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


class CallHooks:
    """What the job layer plugs into each call. The defaults do nothing (scripts, adapter tests)."""

    cancel = None  # a threading.Event that abandons the call in flight

    def before_call(self, call):
        """Raise to refuse the call before anything is built: no budget left, account paused, lease lost."""

    def before_bytes(self, call):
        """The request is fully built and its first byte is about to be written."""

    def after_call(self, call, error=None):
        """The call ended: `error` is the ProviderError it raised, or None."""


NO_HOOKS = CallHooks()


class ProviderClient:
    """Talks to one provider account. Holds pooled connections; reuse it for many calls (one thread at a time)."""

    def __init__(self, account, *, transport=None):
        self.account = account
        self.adapter = adapter_for(account.provider)
        self._key = account.api_key
        self._base = httpx.URL(account.base_url.rstrip("/") + "/")
        headers = {"Authorization": f"Bearer {self._key}", "Accept": "application/json"}
        options = {"timeout": timeouts(), "follow_redirects": False, "trust_env": False}
        self._http = httpx.Client(base_url=self._base, headers=headers, transport=transport or BoundedTransport(),
                                  **options)
        # A POST always goes out on a fresh connection: on a kept-alive one the server may have just closed,
        # a failure after the first byte could not be told from a lost answer, and the job would be ambiguous.
        fresh = BoundedTransport(limits=httpx.Limits(max_connections=4, max_keepalive_connections=0))
        self._posts = httpx.Client(base_url=self._base, headers=headers, transport=transport or fresh, **options)
        self._downloads = httpx.Client(transport=transport or guarded_transport(), **options)
        self.calls_made = []  # (call, status, body) of each call, kept raw: most are never stored

    def close(self):
        for http in (self._http, self._posts, self._downloads):
            http.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # Protocol steps ------------------------------------------------------------------------------

    def submit(self, request, hooks=NO_HOOKS):
        call = self.adapter.build_submit(request)
        submitted = self._call(call, hooks, self._read_submitted)
        # Later paths of some protocols contain the model id; every adapter can count on finding it here.
        submitted.data.setdefault("model", request.model)
        return submitted

    def _read_submitted(self, body):
        submitted = self.adapter.parse_submit(body)
        if len(submitted.task_id) > MAX_TASK_ID:
            raise ProviderError(f"{self._host()} accepted the job with a task id of {len(submitted.task_id)} "
                                f"characters, more than the {MAX_TASK_ID} the studio keeps", kind="malformed",
                                body=body)
        return submitted

    def status(self, task_id, data, hooks=NO_HOOKS):
        return self._call(self.adapter.build_status(task_id, data), hooks, self.adapter.parse_status)

    def result(self, task_id, data, hooks=NO_HOOKS):
        return self._call(self.adapter.build_result(task_id, data), hooks, self.adapter.parse_result)

    def cancel(self, task_id, data, hooks=NO_HOOKS):
        call = self.adapter.build_cancel(task_id, data)
        if call is None:
            raise ProviderError(f"{self.adapter.label} has no way to cancel a job.", permanent=True, kind="unsupported")
        return self.send(call, hooks)

    def _parse(self, call, parse, body):
        """An adapter's reading of an answer; an answer it cannot read is the provider's fault, not a crash."""
        try:
            return parse(body)
        except ProviderError as error:
            if call.is_post and not error.permanent:
                error.ambiguous = True
                error.message = f"{error.message}. The provider may have accepted the job."
            raise
        except Exception as error:  # noqa: BLE001 - any shape of answer must end as a ProviderError
            excerpt = public_text(json.dumps(body, ensure_ascii=False, default=str), EXCERPT)
            why = f"{type(error).__name__}: {public_text(error, 200)}"
            message = f"Unreadable answer from {self._host()} ({why}): {excerpt}"
            raise self._failed(call, message, kind="malformed", sent=True, body=body) from None

    # HTTP ----------------------------------------------------------------------------------------

    def _call(self, call, hooks, parse):
        """One protocol step: the call, then the adapter's reading of its answer. The hooks hear how it went
        (an answer that cannot be read counts as the provider's fault, like a 5xx); a call abandoned on
        purpose (CallCancelled) says nothing about the provider."""
        try:
            value = self._parse(call, parse, self.send(call, hooks))
        except ProviderError as error:
            if not isinstance(error, NotNow):
                hooks.after_call(call, error)
            raise
        hooks.after_call(call, None)
        return value

    def send(self, call, hooks=NO_HOOKS):
        """Make one call and return its JSON body, or raise ProviderError (or CallCancelled)."""
        hooks.before_call(call)
        request = self._http.build_request(call.method, self._relative(call.path), json=call.json, params=call.params)
        self._check_under_base(request.url)
        seconds = settings.STUDIO_PROVIDER_SUBMIT_SECONDS if call.is_post else settings.STUDIO_PROVIDER_CALL_SECONDS
        with call_budget(seconds, cancel=hooks.cancel):
            return self._exchange(call, request, hooks)

    def _exchange(self, call, request, hooks):
        wire = _Wire(call, hooks)
        request.extensions["trace"] = wire.trace
        for attempt in range(CONNECT_RETRIES + 1):
            try:
                response = (self._posts if call.is_post else self._http).send(request, stream=True)
                break
            except CallCancelled:
                raise
            except httpx.HTTPError as error:
                unconnected = isinstance(error, (httpx.ConnectError, httpx.ConnectTimeout))
                if unconnected and not wire.sent and attempt < CONNECT_RETRIES:
                    time.sleep(0.5 * (attempt + 1))  # nothing reached the provider: even a POST may go again
                    continue
                raise self._transport_failed(call, error, sent=wire.sent) from None
        try:
            return self._read(call, response)
        except CallCancelled:
            raise
        except httpx.HTTPError as error:
            raise self._transport_failed(call, error, sent=True) from None
        finally:
            response.close()

    def _transport_failed(self, call, error, *, sent):
        host = self._host()
        if isinstance(error, httpx.TimeoutException):
            if not sent:
                return self._failed(call, f"Could not connect to {host} within the time limit", kind="connect",
                                    sent=False)
            return self._failed(call, f"No complete answer from {host} within the time limit", kind="timeout",
                                sent=True)
        detail = public_text(str(error) or type(error).__name__, 200)
        if not sent:
            return self._failed(call, f"Could not connect to {host}: {detail}", kind="connect", sent=False)
        return self._failed(call, f"The connection to {host} broke: {detail}", kind="broken", sent=True)

    def _failed(self, call, message, *, kind, sent, status_code=None, body=None):
        """An error that is not a clear answer: ambiguous for a POST that left, transient otherwise."""
        if call.is_post and sent:
            return ProviderError(f"{message}. The provider may have accepted the job.", ambiguous=True, kind=kind,
                                 status_code=status_code, body=body)
        return ProviderError(message, kind=kind, status_code=status_code, body=body)

    def _read(self, call, response):
        status = response.status_code
        raw = read_limited(response, settings.STUDIO_PROVIDER_MAX_ANSWER_BYTES)
        if raw is None:
            self._note(call, status, {"note": "answer not read: over the size limit"})
            limit = settings.STUDIO_PROVIDER_MAX_ANSWER_BYTES
            if 400 <= status < 500 and status != 429:
                # The status line alone is a clear refusal; only its words are lost.
                raise ProviderError(f"HTTP {status} ({PERMANENT_STATUSES.get(status, 'refused')}); the provider's "
                                    f"explanation was too large to read (over {limit:,} bytes)", permanent=True,
                                    kind=f"http_{status}", status_code=status)
            raise self._failed(call, f"The answer from {self._host()} is larger than {limit:,} bytes; it was not read",
                               kind="too_large", sent=True, status_code=status)
        body = self._decode(raw)
        self._note(call, status, body)
        logger.debug("%s %s %s -> %s in %.0f ms", self.account.name, call.method, redact(str(response.request.url)),
                     status, response.elapsed.total_seconds() * 1000)  # the body is read: elapsed is known
        if 300 <= status < 400:
            where = public_text(response.headers.get("Location", "nowhere"), 200)
            raise self._failed(call, f"{self._host()} answered with a redirect (HTTP {status} to {where}); "
                                     "the studio does not follow redirects of API calls", kind="redirect", sent=True,
                               status_code=status, body=body)
        if status == 429:
            raise ProviderError(f"Rate limited: {self._words(status, body)}", kind="rate_limited",
                                retry_after=retry_after_seconds(response.headers.get("Retry-After")),
                                status_code=status, body=body)
        if status >= 500:
            raise self._failed(call, f"Provider error {status}: {self._words(status, body)}", kind=f"http_{status}",
                               sent=True, status_code=status, body=body)
        if status >= 400:
            fallback = PERMANENT_STATUSES.get(status, f"HTTP {status}")
            words = self._words(status, body) if body not in ("", None) else fallback
            raise ProviderError(words, permanent=True, kind=f"http_{status}", status_code=status, body=body)
        if not isinstance(body, (dict, list)):
            shown = public_text(body, 200) if body else "an empty body"
            raise self._failed(call, f"Unreadable answer from {self._host()} (not JSON): {shown}", kind="malformed",
                               sent=True, status_code=status, body=body)
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

    def _words(self, status, body):
        return public_text(self.adapter.error_message(status, body), 500)

    @staticmethod
    def _decode(raw):
        try:
            return json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
            return raw.decode("utf-8", errors="replace")

    def _note(self, call, status, body):
        self.calls_made.append((call, status, body))

    @property
    def exchanges(self):
        """The calls made since the client was handed out, fit for a job's history: redacted and bounded.
        Built when asked for, since a steady poll stores none."""
        return [{"method": call.method, "path": public_text(call.path, 300), "status": status,
                 "request": bounded_payload(loggable(call.json)), "response": bounded_payload(loggable(body))}
                for call, status, body in self.calls_made]

    def _host(self):
        return urlsplit(self.account.base_url).netloc or self.account.base_url

    # Staying under the base URL --------------------------------------------------------------------

    def _relative(self, path):
        if urlsplit(path).scheme:
            return path
        return path.lstrip("/")

    def _check_under_base(self, url):
        base = self._base
        inside = (url.scheme == base.scheme and url.host == base.host and url.port == base.port
                  and url.raw_path.startswith(base.raw_path))
        if not inside:
            where = public_text(str(url.copy_with(query=None)), 200)
            raise ProviderError(f"Refused to call {where}: it is outside the "
                                f"account's base URL {self.account.base_url}.", permanent=True, kind="outside_base")

    # Downloads -----------------------------------------------------------------------------------

    def absolute_url(self, url):
        """Provider answers give paths like "/v1/queue/…"; they live under the account's base URL."""
        if urlsplit(url).scheme:
            return url
        absolute = self._base.join(url.lstrip("/"))
        self._check_under_base(absolute)
        return str(absolute)

    def download_headers(self, url):
        """The Bearer header goes only to the provider's own host, and only when the provider needs it."""
        if self.adapter.download_needs_auth and urlsplit(url).netloc == urlsplit(self.account.base_url).netloc:
            return {"Authorization": f"Bearer {self._key}"}
        return {}

    @contextmanager
    def stream_download(self, url, *, http=None):
        """Open a streaming GET for a video with the right headers (no redirects followed here)."""
        url = self.absolute_url(url)
        with (http or self._downloads).stream("GET", url, headers=self.download_headers(url)) as response:
            yield response


class _Wire:
    """Follows one request on the wire: calls hooks.before_bytes() exactly once, right before the first byte."""

    def __init__(self, call, hooks):
        self.call, self.hooks, self.sent = call, hooks, False

    def trace(self, event, info):
        if event == "http11.send_request_headers.started" and not self.sent:
            self.hooks.before_bytes(self.call)
            self.sent = True


def timeouts():
    """Per-operation limits; the total per call comes from the call budget."""
    return httpx.Timeout(connect=settings.STUDIO_PROVIDER_CONNECT_TIMEOUT, read=settings.STUDIO_PROVIDER_READ_TIMEOUT,
                         write=30.0, pool=10.0)


_clients = {}
_clients_lock = threading.Lock()


def client_for(account):
    """A pooled client per account and thread, rebuilt when the account changes (new key, new base URL)."""
    cache_key = (account.pk, account.updated_at, threading.get_ident())
    with _clients_lock:
        client = _clients.get(cache_key)
        if client is None:
            for key in [k for k in _clients if k[0] == account.pk and k[2] == cache_key[2]]:
                _clients.pop(key).close()
            client = _clients[cache_key] = ProviderClient(account)
        client.calls_made = []
        return client
