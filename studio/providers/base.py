"""The shapes every provider adapter speaks, and the one error type.

Adapters are pure: they turn a GenerationRequest into an HttpCall and a provider's JSON into
Submitted / StatusUpdate values. Only studio.providers.client does I/O.
"""

from dataclasses import dataclass, field
from typing import Any


class State:
    """Our view of a provider task, whatever words the provider uses."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    TERMINAL = {SUCCEEDED, FAILED, CANCELLED}


@dataclass
class ImageInput:
    """An image handed to a provider: its bytes (for Base64 providers) and a signed URL (for URL providers)."""

    content: bytes
    mime: str
    url: str = ""
    name: str = ""


@dataclass
class GenerationRequest:
    """One job's request in our unified terms, already validated against the catalog (defaults filled in)."""

    model: str
    params: dict
    first_frame: ImageInput | None = None
    last_frame: ImageInput | None = None
    reference_images: list[ImageInput] = field(default_factory=list)
    callback_url: str = ""

    @property
    def prompt(self):
        return self.params["prompt"]


@dataclass
class HttpCall:
    """A request for the shared client to make. `path` is relative to the account's base URL unless absolute."""

    method: str
    path: str
    json: Any = None
    params: dict | None = None

    @property
    def is_post(self):
        return self.method.upper() == "POST"


@dataclass
class Submitted:
    """A provider accepted a job. `data` is kept on the job and handed back to later calls."""

    task_id: str
    raw_status: str = ""
    state: str = State.QUEUED
    data: dict = field(default_factory=dict)
    created_at: float | None = None  # unix seconds, normalised


@dataclass
class StatusUpdate:
    state: str
    raw_status: str = ""
    progress: int | None = None
    video_urls: list[str] = field(default_factory=list)
    error: str = ""
    enhanced_prompt: str = ""
    # ModelMax: the status says COMPLETED but the video URLs come from a separate, billed result call.
    needs_result: bool = False
    # The model the provider says the task is for, where its answer names one (checks a callback's task).
    model: str = ""

    @property
    def is_terminal(self):
        return self.state in State.TERMINAL


class ProviderError(Exception):
    """Anything that went wrong talking to a provider.

    permanent: retrying cannot help (bad key, bad request, no balance); the job fails with `message`.
    ambiguous: the request may have reached the provider (read timeout or 5xx after sending a POST);
               the job must not be resent on its own.
    Otherwise the error is transient: try again later, after `retry_after` seconds when given.

    kind: a short word for *how* it failed ("timeout", "connect", "http_500", "malformed", "rate_limited",
          "refused", ...). Failing "the same way" N times in a row ends a job, and the account's health
          counts provider faults by it; an adapter that cannot read an answer raises kind="malformed".
    """

    def __init__(self, message, *, permanent=False, ambiguous=False, retry_after=None, status_code=None, body=None,
                 kind=""):
        super().__init__(message)
        self.message = message
        self.permanent = permanent
        self.ambiguous = ambiguous
        self.retry_after = retry_after
        self.status_code = status_code
        self.body = body
        self.kind = kind or (f"http_{status_code}" if status_code else "error")

    @property
    def transient(self):
        return not self.permanent and not self.ambiguous


class NotNow(ProviderError):
    """The call was not made (the account is paused, or its request budget is spent): try at `retry_after`.
    Not a failure of the job."""

    def __init__(self, message, *, kind, retry_after):
        super().__init__(message, kind=kind, retry_after=retry_after)


class ValidationFailed(Exception):
    """A request breaks a catalog rule; raised before anything is sent."""

    def __init__(self, violations):
        self.violations = violations
        super().__init__("; ".join(v.message for v in violations))


@dataclass(frozen=True)
class Violation:
    field: str
    code: str
    message: str
