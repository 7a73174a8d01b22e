"""Total time limits for HTTP calls, which httpx does not have.

httpx's timeouts bound each read, not a call: an answer that drips one byte every few seconds never
trips a 30 s read timeout and can hold a thread for hours. Here every socket operation of a call is
clipped to what is left of the call's **budget** (connect, TLS, headers, body: one deadline), waits in
slices of at most half a second, and gives up early when the budget is cancelled (the poller stopping,
or the job's lease lost). The budget is per thread, set around a call with `call_budget(...)`; code
outside any budget behaves as plain httpx.

    with call_budget(30.0, cancel=event) as budget:
        response = client.send(request, stream=True)
        ...
        budget.extend(2.0)   # e.g. a download earns time by the bytes it receives

`BoundedTransport` is httpx's own transport with this network layer underneath; the studio connects
directly (no proxies from the environment), as its address checks assume. `guarded_transport()` adds the
address check for links that come from outside (videos): the host is resolved, every address checked, and
the connection made to the checked address itself, so a name that resolves differently a moment later
(DNS rebinding) never gets a request; the Host header and the TLS server name stay the link's.
"""

import ipaddress
import socket
import threading
import time
from contextlib import contextmanager

import httpcore
import httpx
from django.conf import settings

SLICE_SECONDS = 0.5


class CallCancelled(Exception):
    """The call was abandoned on purpose (shutdown, lease lost); nothing about the provider is implied."""


class CallBudget:
    def __init__(self, seconds, *, cancel=None, clock=time.monotonic):
        self.clock = clock
        self.started = clock()
        self.deadline = self.started + seconds
        self.cancel = cancel or threading.Event()

    def remaining(self):
        return self.deadline - self.clock()

    def elapsed(self):
        return self.clock() - self.started

    def extend_to(self, seconds_after_start):
        """Move the deadline (never earlier than now would make sense; callers cap it themselves)."""
        self.deadline = self.started + seconds_after_start

    def check(self):
        if self.cancel.is_set():
            raise CallCancelled("The call was stopped (the studio is shutting down or gave the job to another worker).")
        if self.remaining() <= 0:
            raise httpcore.ReadTimeout("The call's total time limit ran out.")

    def clip(self, timeout):
        """The timeout for one socket operation: never past the deadline, never longer than a slice."""
        self.check()
        limit = min(self.remaining(), SLICE_SECONDS)
        return limit if timeout is None else min(timeout, limit)


_local = threading.local()


def current_budget():
    return getattr(_local, "budget", None)


@contextmanager
def call_budget(seconds, *, cancel=None):
    outer = current_budget()
    budget = CallBudget(seconds, cancel=cancel)
    _local.budget = budget
    try:
        yield budget
    finally:
        _local.budget = outer


def _waiting(operation, timeout, timeout_error):
    """Run a blocking socket operation in slices until it completes, its own timeout passes, or the budget
    ends. Plain httpx behaviour when no budget is set."""
    budget = current_budget()
    if budget is None:
        return operation(timeout)
    waited = 0.0
    while True:
        piece = budget.clip(None if timeout is None else timeout - waited)
        try:
            return operation(piece)
        except timeout_error:
            waited += piece
            if timeout is not None and waited >= timeout:
                raise
            budget.check()


class BoundedStream(httpcore.NetworkStream):
    def __init__(self, stream):
        self._stream = stream

    def read(self, max_bytes, timeout=None):
        return _waiting(lambda t: self._stream.read(max_bytes, t), timeout, httpcore.ReadTimeout)

    def write(self, buffer, timeout=None):
        # A write is not sliced (a partial sendall cannot be resumed); it is clipped to the budget instead.
        budget = current_budget()
        if budget is not None:
            budget.check()
            timeout = budget.remaining() if timeout is None else min(timeout, budget.remaining())
        self._stream.write(buffer, timeout)

    def close(self):
        self._stream.close()

    def start_tls(self, ssl_context, server_hostname=None, timeout=None):
        budget = current_budget()
        if budget is not None:
            budget.check()
            timeout = budget.remaining() if timeout is None else min(timeout, budget.remaining())
        return BoundedStream(self._stream.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info):
        return self._stream.get_extra_info(info)


class BoundedBackend(httpcore.NetworkBackend):
    def __init__(self, *, guard=None):
        self._backend = httpcore.SyncBackend()
        self._guard = guard

    def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        budget = current_budget()
        if budget is not None:
            budget.check()
            timeout = budget.remaining() if timeout is None else min(timeout, budget.remaining())
        if self._guard is not None:
            host = self._checked_address(host, port)
        stream = self._backend.connect_tcp(host, port, timeout, local_address, socket_options)
        return BoundedStream(stream)

    def _checked_address(self, host, port):
        """Resolve once, check every address, and hand back the one to connect to."""
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except socket.gaierror as error:
            raise httpcore.ConnectError(f"Cannot resolve {host}: {error}") from None
        addresses = [info[4][0] for info in infos]
        for address in addresses:
            self._guard(host, port, address)
        return addresses[0]

    def connect_unix_socket(self, path, timeout=None, socket_options=None):  # pragma: no cover - not used
        return BoundedStream(self._backend.connect_unix_socket(path, timeout, socket_options))

    def sleep(self, seconds):
        time.sleep(seconds)


class BoundedTransport(httpx.HTTPTransport):
    """httpx's transport over the bounded network layer (HTTP/1.1, certificate checks on, no proxy)."""

    def __init__(self, *, limits=httpx.Limits(max_connections=20, max_keepalive_connections=10), retries=0,
                 guard=None):
        context = shared_ssl_context()
        super().__init__(verify=context, limits=limits)
        # httpx builds its pool without a way to pass a network backend; rebuild it with the same settings.
        self._pool = httpcore.ConnectionPool(
            ssl_context=context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            http1=True,
            http2=False,
            retries=retries,
            socket_options=[(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)],
            network_backend=BoundedBackend(guard=guard),
        )


def guarded_transport():
    """A bounded transport that connects only to addresses check_address() allows."""
    return BoundedTransport(guard=check_address)


# Which addresses links from outside may reach ---------------------------------------------------------


class AddressRefused(Exception):
    """A link pointed at an address the studio does not fetch from; nothing was sent to it."""


def is_public_address(address):
    ip = ipaddress.ip_address(address)
    if ip.version == 6 and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    # is_global, not "not is_private": shared address space (100.64.0.0/10, where some clouds keep their
    # metadata service) is neither private nor global.
    return ip.is_global and not ip.is_multicast


def check_address(host, port, address):
    """Refuse a non-public address unless its host name or network (and port, where the entry names one)
    is listed in STUDIO_DOWNLOAD_ALLOW_HOSTS."""
    ip = ipaddress.ip_address(address)
    for name, network, allowed_port in allow_list():
        if allowed_port is not None and allowed_port != port:
            continue
        if (name and name == host.lower()) or (network and ip in network):
            return
    if not is_public_address(address):
        raise AddressRefused(
            f"Refusing to download from {host} ({address}): a private, loopback or link-local address. "
            "List it in STUDIO_DOWNLOAD_ALLOW_HOSTS if it is yours.")


def allow_list():
    """STUDIO_DOWNLOAD_ALLOW_HOSTS as (host name, network, port) triples: "sandbox.local", "10.0.0.0/8",
    "127.0.0.1:8001", "[::1]:8001"; a port, when given, must match too."""
    entries = []
    for item in settings.STUDIO_DOWNLOAD_ALLOW_HOSTS:
        item = item.strip().lower()
        host, port = item, None
        if "/" not in item and (item.startswith("[") or item.count(":") == 1):
            head, _, tail = item.rpartition(":")
            if tail.isascii() and tail.isdigit() and head:
                host, port = head.strip("[]"), int(tail)
        try:
            entries.append(("", ipaddress.ip_network(host, strict=False), port))
        except ValueError:
            entries.append((host, None, port))
    return entries


_ssl = {}
_ssl_lock = threading.Lock()


def shared_ssl_context():
    """One certificate-checking SSL context for every client: building one loads the CA bundle (~20 ms of
    CPU), and a poller has a client per account per thread. An SSLContext may be shared between threads."""
    with _ssl_lock:
        if "context" not in _ssl:
            _ssl["context"] = httpx.create_ssl_context()
        return _ssl["context"]


def read_limited(response, limit):
    """The body of a streamed response, or None when it is larger than `limit` bytes (stops reading there)."""
    declared = response.headers.get("Content-Length", "")
    if declared.isascii() and declared.isdigit() and (len(declared) > 18 or int(declared) > limit):
        return None
    chunks, size = [], 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)
