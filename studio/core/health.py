"""Can this server do its work? `/healthz` for load balancers, and the web-side half of `manage.py health`.

Three checks, each one cheap round trip, so a load balancer may ask every few seconds: the database answers
a query, the media folder takes a new file (the studio writes videos and images there itself, by path), and
the task broker answers django-q2's ping. /healthz says 200 when all pass and 503 naming the ones that did
not, and nothing more: why a check failed (paths, hosts, error texts) goes to the log, never in the answer.

/healthz is answered by a middleware placed first, before host validation and the HTTPS redirect: a load
balancer probes each server by its address, over plain HTTP, and must get the health, not a 400 or a 301.
"""

import logging
import tempfile
import threading
import uuid
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import connection
from django.http import HttpResponseNotAllowed, JsonResponse

from studio.core import media_store
from studio.core.redaction import redact

logger = logging.getLogger(__name__)

PATH = "/healthz"


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str = ""  # why it failed: for the log and the operator's command, never for /healthz


def check_database():
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as error:  # noqa: BLE001 - any failure to answer is the finding
        return Check("database", False, _why(error))
    return Check("database", True)


def check_storage():
    """A file created, written and removed where the studio keeps files: in its folder (created if missing,
    as the studio's own writes do), or as an object in its bucket."""
    try:
        folder = media_store.local_root()
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=folder, prefix=".healthz-") as probe:
                probe.write(b"ok")
                probe.flush()
        else:
            name = media_store.store().save(f"healthz/{uuid.uuid4().hex}", ContentFile(b"ok"))
            media_store.delete(name)
    except Exception as error:  # noqa: BLE001 - OSError from a folder, anything from a store's client
        return Check("storage", False, _why(error))
    return Check("storage", True)


def check_broker():
    """django-q2's broker ping: Redis answers PING; the ORM broker is the database, checked above."""
    try:
        answered = _pinger.ping(timeout=settings.STUDIO_HEALTH_BROKER_SECONDS)
    except FutureTimeout:
        return Check("broker", False, f"no answer within {settings.STUDIO_HEALTH_BROKER_SECONDS:g} s")
    except Exception as error:  # noqa: BLE001 - any failure to answer is the finding
        return Check("broker", False, _why(error))
    return Check("broker", True) if answered else Check("broker", False, "the ping was not answered")


class BrokerPinger:
    """Pings on a daemon thread, one ping in flight at a time, shared by the probes that come meanwhile: a broker
    that never answers (its packets dropped) holds one thread, not one per probe, and never holds up the
    process's exit; each probe waits its timeout at most. The broker is kept, so its connection is reused."""

    def __init__(self):
        self.lock = threading.Lock()
        self.in_flight = None
        self.broker = None

    def ping(self, *, timeout):
        with self.lock:
            if self.in_flight is None or self.in_flight.done():
                self.in_flight = Future()
                threading.Thread(target=self._ping, args=(self.in_flight,), name="health-broker", daemon=True).start()
            in_flight = self.in_flight
        return in_flight.result(timeout=timeout)

    def _ping(self, future):
        from django_q.brokers import get_broker

        try:
            if self.broker is None:
                self.broker = get_broker()
            future.set_result(self.broker.ping() is not False)  # a broker class without its own ping gives None
        except BaseException as error:  # noqa: BLE001 - handed to the probe waiting for it
            future.set_exception(error)


_pinger = BrokerPinger()


def web_checks():
    return [check_database(), check_storage(), check_broker()]


def _why(error):
    return redact(f"{type(error).__name__}: {error}")[:300]


def healthz(request):
    if request.method not in ("GET", "HEAD"):
        return HttpResponseNotAllowed(["GET", "HEAD"])
    checks = web_checks()
    for check in checks:
        if not check.ok:
            logger.warning("health check failed: %s: %s", check.name, check.detail)
    failing = [check.name for check in checks if not check.ok]
    answer = {"status": "failing" if failing else "ok",
              "checks": {check.name: "ok" if check.ok else "failing" for check in checks}}
    response = JsonResponse(answer, status=503 if failing else 200)
    response["Cache-Control"] = "no-store"
    return response


class HealthzMiddleware:
    """Answers /healthz before any other middleware (see the module's docstring)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path_info == PATH:
            return healthz(request)
        return self.get_response(request)
