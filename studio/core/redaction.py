"""Keeping API keys out of logs, stored payloads and error reports.

Two layers: every key the studio decrypts is remembered in this process and replaced wherever it
appears, and anything shaped like a credential (a Bearer header, an `sk-` token) is masked even if
it was never seen before.
"""

import base64
import json
import logging
import re
import threading
from urllib.parse import quote

from django.views.debug import SafeExceptionReporterFilter

MASK = "***"

_known_secrets = set()
_lock = threading.Lock()

_PATTERNS = [
    (re.compile(r"(?i)(bearer\s+)[^\s\"',;]+"), r"\1" + MASK),
    (re.compile(r"\bsk-[A-Za-z0-9_\-]{6,}"), MASK),
    (re.compile(r"(?i)((?:(?:x-)?api[_-]?key|access[_-]?token|secret[_-]?key|authorization)[\"']?\s*[:=]\s*[\"']?)[^\s\"'&,;}]+"), r"\1" + MASK),
]


def remember_secret(value):
    """Register a secret so that later logs and payloads never show it, nor its usual disguises: a provider
    that echoes a request back may show the key Base64- or URL-encoded."""
    if value and len(value) >= 4:
        with _lock:
            _known_secrets.update(_disguises(value))


def _disguises(value):
    raw = value.encode()
    forms = {value, quote(value, safe=""), f"Bearer {value}"}
    for encode in (base64.b64encode, base64.urlsafe_b64encode):
        encoded = encode(raw).decode("ascii")
        forms.update({encoded, encoded.rstrip("=")})
        bearer = encode(f"Bearer {value}".encode()).decode("ascii")
        forms.update({bearer, bearer.rstrip("=")})
    # A Base64 form shorter than 8 characters would mask ordinary words.
    return {form for form in forms if len(form) >= 8 or form == value}


def redact(text):
    """Mask known secrets and credential-shaped substrings in a string."""
    if not text:
        return text
    with _lock:
        known = sorted(_known_secrets, key=len, reverse=True)
    for secret in known:
        text = text.replace(secret, MASK)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def redact_data(value):
    """Redact every string inside JSON-like data (dicts, lists, strings)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {key: redact_data(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact_data(item) for item in value]
    return value


# Outside text: bounded, redacted, no server paths ----------------------------------------------------

TEXT_LIMIT = 1000
PAYLOAD_LIMIT = 4096
# An absolute path not part of a URL ("https://host/a/b" is preceded by a host, "file:///x" by slashes).
_SERVER_PATH = re.compile(r"(?<![\w:/.~-])/(?:[^\s'\"/<>]+/)+([^\s'\"/<>]+)")


def public_text(text, limit=TEXT_LIMIT):
    """Text from outside (a provider's answer, an exception) fit to store and show: keys masked, server file
    paths reduced to the file's name, at most `limit` characters with a note of what was cut."""
    if text is None:
        return ""
    text = _SERVER_PATH.sub(r"\1", redact(str(text).replace("\x00", "")))
    if len(text) > limit:
        text = f"{text[:limit]}… ({len(text) - limit:,} more characters not kept)"
    return text


def short_text(text, max_length):
    """Outside text for a column of `max_length` characters: as public_text, cut hard to fit."""
    text = public_text(text, max_length)
    return text if len(text) <= max_length else text[:max_length - 1] + "…"


def bounded_payload(value, limit=PAYLOAD_LIMIT):
    """JSON-like data fit to store in a job's history: redacted, and at most about `limit` characters of JSON;
    anything larger is kept as an excerpt with a note of its full size."""
    value = redact_data(value)
    try:
        text = json.dumps(value, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError):
        text = json.dumps(redact(repr(value)), ensure_ascii=False)
        value = json.loads(text)
    if len(text) <= limit:
        return value
    return {"excerpt": text[:limit], "cut": f"{len(text):,} characters; the first {limit:,} are kept"}


def install_log_redaction():
    """Redact every log record as it is created, so no handler (console, file, test capture) sees a key."""
    make_record = logging.getLogRecordFactory()
    if getattr(make_record, "studio_redacts", False):
        return

    def redacting_record_factory(*args, **kwargs):
        record = make_record(*args, **kwargs)
        message = record.getMessage()
        record.msg, record.args = redact(message), None
        if record.exc_info:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        return record

    redacting_record_factory.studio_redacts = True
    logging.setLogRecordFactory(redacting_record_factory)


class RedactingExceptionReporterFilter(SafeExceptionReporterFilter):
    """Error reports (DEBUG pages, e-mails to ADMINS) show local variables; mask any key among them."""

    def get_traceback_frame_variables(self, request, tb_frame):
        return [(name, redact(value) if isinstance(value, str) else value)
                for name, value in super().get_traceback_frame_variables(request, tb_frame)]

    def get_post_parameters(self, request):
        return {name: redact(value) if isinstance(value, str) else value
                for name, value in super().get_post_parameters(request).items()}
