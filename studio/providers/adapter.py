"""The base every provider adapter extends: pure mapping between our types and a provider's JSON."""

import base64
import logging
from datetime import datetime, timezone

from studio.providers.base import HttpCall, ProviderError, State, StatusUpdate, Submitted

logger = logging.getLogger(__name__)


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
                return str(error["message"])
            if isinstance(error, str) and error:
                return error
            for key in ("message", "msg", "detail", "fail_reason"):
                if body.get(key):
                    return str(body[key])
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

    @staticmethod
    def require(body, *keys):
        """Read a nested value from a provider answer or raise a transient ProviderError naming what is missing."""
        value = body
        for key in keys:
            if not isinstance(value, dict) or key not in value:
                raise ProviderError(f"The provider's answer has no {'.'.join(keys)}: {str(body)[:300]}", body=body)
            value = value[key]
        return value


def unix_seconds(value):
    """Normalise a timestamp that may be unix seconds, unix milliseconds or an ISO string (assumed UTC)."""
    if value in (None, ""):
        return None
    if isinstance(value, (int, float)) or (isinstance(value, str) and value.replace(".", "", 1).isdigit()):
        number = float(value)
        return number / 1000 if number > 100_000_000_000 else number
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.timestamp()


def percent(value):
    """Progress as an int 0–100 from 42, 42.0, "42" or "42%"; None when absent or unreadable."""
    if value in (None, ""):
        return None
    try:
        number = float(str(value).strip().rstrip("%"))
    except ValueError:
        return None
    return max(0, min(100, round(number)))
