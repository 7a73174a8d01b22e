"""The base every provider adapter extends: pure mapping between our types and a provider's JSON."""

import base64
import logging
import math
from datetime import datetime, timezone
from urllib.parse import quote

from studio.providers.base import HttpCall, ProviderError, State, StatusUpdate, Submitted

logger = logging.getLogger(__name__)

# How much of an unreadable answer an error message quotes.
EXCERPT_CHARS = 300
# How much of a provider's own error text is kept (the whole of it, unless it is absurd).
ERROR_MESSAGE_CHARS = 2000
# 9999-12-31T23:59:59Z, the last second a datetime can hold.
LATEST_UNIX_SECONDS = 253_402_300_799


class ProviderAdapter:
    """Subclasses set the class attributes and implement build_submit / parse_submit / build_status / parse_status."""

    slug = ""
    label = ""
    # "base64": images travel inside the request; "url": the provider fetches signed studio URLs.
    image_transport = "url"
    # Raw status value -> our State. Unknown values are logged and treated as running, never success.
    status_table = {}
    # Fetching the video needs the account's Bearer header (ModelMax serves bytes behind auth).
    download_needs_auth = False
    # Suggested polling: first poll after `first_poll_seconds`, then every `poll_seconds` (with backoff).
    first_poll_seconds = 10
    poll_seconds = 5
    # A job still unfinished this long after submission is failed (and revisited for a day in case it ends).
    deadline_hours = 6
    models = ()

    # Requests ------------------------------------------------------------------------------------

    def build_submit(self, request) -> HttpCall:
        raise NotImplementedError

    def parse_submit(self, body) -> Submitted:
        raise NotImplementedError

    def build_status(self, task_id, data) -> HttpCall:
        raise NotImplementedError

    def parse_status(self, body) -> StatusUpdate:
        raise NotImplementedError

    def build_result(self, task_id, data) -> HttpCall | None:
        """Only for providers whose video URLs come from a separate call after success."""
        return None

    def parse_result(self, body) -> StatusUpdate:
        raise NotImplementedError

    def build_cancel(self, task_id, data) -> HttpCall | None:
        return None

    # Answers -------------------------------------------------------------------------------------

    def map_status(self, raw):
        state = self.status_table.get(raw)
        if state is None:
            logger.warning("%s: unknown status value %r, treated as running", self.slug, raw)
            return State.RUNNING
        return state

    def error_message(self, status_code, body):
        """The provider's own words from an error answer; subclasses read their error shape."""
        if isinstance(body, dict):
            error = body.get("error")
            if isinstance(error, dict) and error.get("message"):
                return excerpt(error["message"], ERROR_MESSAGE_CHARS)
            if isinstance(error, str) and error:
                return error
            for key in ("message", "msg", "detail", "fail_reason"):
                if body.get(key):
                    return excerpt(body[key], ERROR_MESSAGE_CHARS)
        if isinstance(body, str) and body.strip():
            return body.strip()[:500]
        return f"HTTP {status_code}"

    def check_body(self, status_code, body):
        """Raise ProviderError for an error reported inside a 200 answer (some gateways do that)."""

    # Helpers for subclasses ----------------------------------------------------------------------

    @staticmethod
    def base64_image(image):
        """Plain Base64 of the image bytes (no data: prefix), as the Base64 providers document."""
        return base64.b64encode(image.content).decode("ascii")

    def malformed(self, problem, body):
        """The error for an answer we cannot read. Transient: the provider may answer properly next time."""
        return ProviderError(f"{self.label}'s answer {problem}: {excerpt(body)}", kind="malformed", body=body)

    @staticmethod
    def require(body, *keys):
        """Read a nested value from a provider answer or raise a transient ProviderError naming what is missing."""
        value = body
        for key in keys:
            if not isinstance(value, dict) or key not in value:
                raise ProviderError(f"The provider's answer has no {'.'.join(keys)}: {excerpt(body)}",
                                    kind="malformed", body=body)
            value = value[key]
        return value

    def require_status(self, body, *keys):
        """The raw status at `keys`: a string (an unknown one, even "", maps to running), else malformed."""
        raw = self.require(body, *keys)
        if not isinstance(raw, str):
            raise self.malformed(f"has a {'.'.join(keys)} that is not a string", body)
        return raw

    def require_id(self, body, *keys):
        """The provider's id for a task at `keys`, as a string fit to go into a path."""
        task_id = identifier(self.require(body, *keys))
        if task_id is None:
            raise self.malformed(f"has a {'.'.join(keys)} that is not an id", body)
        return task_id


# Reading answers ---------------------------------------------------------------------------------------


def excerpt(value, limit=EXCERPT_CHARS):
    """At most `limit` characters of any value, for messages; safe even for ints too long for str()."""
    try:
        shown = str(value)
    except (ValueError, RecursionError):
        shown = f"<a {type(value).__name__} too large to show>"
    return shown if len(shown) <= limit else shown[:limit] + "…"


def text(value, default=""):
    """A string field of an answer; null, a number, a list or an object reads as `default`, as does blank."""
    return value if isinstance(value, str) and value.strip() else default


def identifier(value):
    """A provider's id as a string (whole numbers accepted), or None when the value cannot be one.

    It must be storable and mean one thing in a path: not blank, not a dot-segment, no NUL, valid Unicode.
    """
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) < 10**30:
        return str(value)
    if not isinstance(value, str) or not value.strip() or value in (".", "..") or "\x00" in value:
        return None
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate from a "\ud800" escape
        return None
    return value


def path_segment(value) -> str:
    """`value` as exactly one URL path segment, for every provider-supplied value placed in a path.

    "/" cannot add segments, "?" and "#" cannot start a query or fragment, and "." or ".." cannot climb
    out of the account's base path (they are not otherwise encoded, so they are spelled %2E here).
    """
    segment = quote(str(value), safe="")
    return {".": "%2E", "..": "%2E%2E"}.get(segment, segment)


def unix_seconds(value):
    """Normalise a timestamp that may be unix seconds, unix milliseconds or an ISO string (assumed UTC).

    None when absent or unreadable, and for times before 1970 or beyond what a datetime can hold.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    if isinstance(value, str) and not value.replace(".", "", 1).isdigit():
        return iso_seconds(value)
    try:
        number = float(value)
    except (ValueError, OverflowError):  # "²" passes isdigit; an int can be too big for a float
        return None
    if number > 100_000_000_000:
        number /= 1000
    return number if 0 <= number <= LATEST_UNIX_SECONDS else None  # NaN fails both comparisons


def iso_seconds(value):
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    seconds = parsed.timestamp()
    return seconds if 0 <= seconds <= LATEST_UNIX_SECONDS else None


def percent(value):
    """Progress as an int 0–100 from 42, 42.0, "42" or "42%"; None when absent, unreadable or not finite."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return max(0, min(100, value))
    if isinstance(value, str):
        try:
            value = float(value.strip().rstrip("%"))
        except ValueError:
            return None
    if not isinstance(value, float) or not math.isfinite(value):
        return None
    return max(0, min(100, round(value)))
