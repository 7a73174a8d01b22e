"""Account health and the circuit breaker, shared by every worker through the AccountHealth row.

A provider *fault* is a call that got no usable answer: a timeout, a refused or broken connection, a 5xx,
a redirect, an unreadable or oversized answer. A clear answer, even a refusal (400, 401, 429), shows the
provider alive. After `STUDIO_BREAKER_FAILURES` faults in a row the account is paused for
`STUDIO_BREAKER_COOLING_SECONDS`: calls are refused before they are made, except one probe per cooling
period (taken with a compare-and-set, so one per period across all machines); the probe's success
resumes the account. So a broken reseller costs one call a minute, not a thread pool.

Faults are written at once (they drive the breaker). Successes are counted in memory and written at most
every FLUSH_SECONDS per account, or at once when the account was failing, so a healthy account costs no
extra write per call. Each process keeps a view of which accounts are paused, refreshed by its own writes.
"""

import threading
import time
from datetime import timedelta

from django.conf import settings
from django.db.models import F
from django.utils import timezone

from studio.core.redaction import public_text
from studio.providers.base import NotNow
from studio.providers.models import AccountHealth

FLUSH_SECONDS = 5.0
WINDOW = timedelta(minutes=15)
FAULT_KINDS = {"timeout", "connect", "broken", "malformed", "redirect", "too_large"}


class Paused(NotNow):
    """The account's breaker is open: the call was not made."""

    def __init__(self, message, *, until):
        super().__init__(message, kind="paused", retry_after=max(0.0, (until - timezone.now()).total_seconds()))
        self.until = until


def is_fault(error):
    if error is None or isinstance(error, NotNow):
        return False
    return error.kind in FAULT_KINDS or (error.status_code or 0) >= 500


class HealthTracker:
    """This process's recorder; one per process (module-level `tracker`)."""

    def __init__(self, *, monotonic=time.monotonic):
        self.monotonic = monotonic
        self.lock = threading.Lock()
        self.pending = {}  # account id -> successes not yet written
        self.last_write = {}  # account id -> monotonic time of the last write
        self.failing = set()  # accounts whose last known state has failures in a row
        self.paused_until = {}  # account id -> datetime, as last seen

    # Before a call --------------------------------------------------------------------------------

    def gate(self, account):
        """Raise Paused unless the account may be called now; during a pause, let one probe through."""
        until = self.paused_until.get(account.pk)
        now = timezone.now()
        if until is None or until <= now and self._take_probe(account, now):
            return
        until = self.paused_until.get(account.pk) or now
        if until <= now:
            return
        raise Paused(f"{account.name} is paused after {settings.STUDIO_BREAKER_FAILURES} failures in a row; "
                     f"the next try is at {timezone.localtime(until):%H:%M:%S}.", until=until)

    def _take_probe(self, account, now):
        """The first caller after the cooling period probes, and pushes the pause on for everyone else."""
        cooling = timedelta(seconds=settings.STUDIO_BREAKER_COOLING_SECONDS)
        taken = AccountHealth.objects.filter(account=account, paused_until__lte=now).update(paused_until=now + cooling)
        if not taken:
            self._refresh(account)
        return bool(taken)

    def _refresh(self, account):
        row = AccountHealth.objects.filter(account=account).values("paused_until", "consecutive_failures").first()
        with self.lock:
            self.paused_until[account.pk] = row["paused_until"] if row else None
            (self.failing.add if row and row["consecutive_failures"] else self.failing.discard)(account.pk)

    # After a call ---------------------------------------------------------------------------------

    def record(self, account, error):
        if is_fault(error):
            self.fault(account, public_text(error.message, 500))
        elif not isinstance(error, NotNow):
            self.success(account)

    def success(self, account):
        with self.lock:
            self.pending[account.pk] = self.pending.get(account.pk, 0) + 1
            due = (account.pk in self.failing or account.pk in self.paused_until
                   or self.monotonic() - self.last_write.get(account.pk, -FLUSH_SECONDS) >= FLUSH_SECONDS)
            if not due:
                return
            count = self.pending.pop(account.pk)
            self.last_write[account.pk] = self.monotonic()
            self.failing.discard(account.pk)
            self.paused_until.pop(account.pk, None)
        now = timezone.now()
        self._roll_window(account, now)
        _update(account, calls=F("calls") + count, last_success_at=now, consecutive_failures=0, paused_until=None,
                paused_at=None)

    def fault(self, account, message):
        with self.lock:
            count = self.pending.pop(account.pk, 0) + 1
            self.last_write[account.pk] = self.monotonic()
            self.failing.add(account.pk)
        now = timezone.now()
        self._roll_window(account, now)
        _update(account, calls=F("calls") + count, failures=F("failures") + 1,
                consecutive_failures=F("consecutive_failures") + 1, last_failure_at=now, last_failure=message)
        cooling = timedelta(seconds=settings.STUDIO_BREAKER_COOLING_SECONDS)
        # Open the breaker once the run is long enough; a probe that failed has already pushed paused_until on.
        AccountHealth.objects.filter(
            account=account, consecutive_failures__gte=settings.STUDIO_BREAKER_FAILURES, paused_until__isnull=True,
        ).update(paused_until=now + cooling, paused_at=now)
        self._refresh(account)

    @staticmethod
    def _roll_window(account, now):
        AccountHealth.objects.filter(account=account, window_started_at__lt=now - WINDOW).update(
            window_started_at=now, calls=0, failures=0)

    def forget(self):
        """Drop this process's view (tests that reset the database between runs)."""
        with self.lock:
            self.pending.clear()
            self.last_write.clear()
            self.failing.clear()
            self.paused_until.clear()


tracker = HealthTracker()


def _update(account, **fields):
    """Update the account's row, creating it on its first use."""
    if not AccountHealth.objects.filter(account=account).update(**fields):
        AccountHealth.objects.get_or_create(account=account)
        AccountHealth.objects.filter(account=account).update(**fields)


def account_health(account):
    """The account's health row, or an unsaved empty one (never called: healthy)."""
    return AccountHealth.objects.filter(account=account).first() or AccountHealth(account=account)


def health_summary(health, now=None):
    """The account's health in one sentence for people (admin, composer)."""
    now = now or timezone.now()
    if health is None or health.pk is None or not (health.calls or health.last_success_at or health.last_failure_at):
        return "No calls yet."
    parts = []
    if health.is_paused(now):
        parts.append(f"Paused since {_clock(health.paused_at or now)} after {health.consecutive_failures} failed calls "
                     f"in a row; nothing is sent to it but one try at {_clock(health.paused_until)}.")
    elif health.consecutive_failures:
        count = health.consecutive_failures
        parts.append(f"{count} failed call{'s' if count != 1 else ''} in a row.")
    else:
        parts.append("Answering normally.")
    if health.calls:
        parts.append(f"{health.failures} of {health.calls} calls failed since {_clock(health.window_started_at)}.")
    if health.last_success_at:
        parts.append(f"Last good answer {_clock(health.last_success_at)}.")
    if health.last_failure_at and health.last_failure:
        parts.append(f"Last failure {_clock(health.last_failure_at)}: {public_text(health.last_failure, 200)}")
    return " ".join(parts)


def health_word(health, now=None):
    """The account's health in a few words, for a list."""
    if health is None or health.pk is None:
        return "No calls yet"
    if health.is_paused(now):
        return f"Paused until {_clock(health.paused_until)}"
    if health.consecutive_failures:
        return f"{health.consecutive_failures} failed in a row"
    if health.calls:
        return f"OK · {health.failures} of {health.calls} calls failed"
    return "No recent calls"


def pause_note(health, now=None):
    """For the composer: why an account's jobs will wait, or "" when it is not paused."""
    if health is None or not health.is_paused(now):
        return ""
    return (f"Paused: its last {health.consecutive_failures} calls failed ({public_text(health.last_failure, 120)}). "
            f"Jobs for it wait; the next try is at {_clock(health.paused_until)}.")


def _clock(when):
    local = timezone.localtime(when)
    return f"{local:%H:%M}" if local.date() == timezone.localdate() else f"{local:%-d %b %H:%M}"
