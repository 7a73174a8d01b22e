"""Keeping API keys out of logs, stored payloads and error reports.

Two layers: every key the studio decrypts is remembered in this process and replaced wherever it
appears, and anything shaped like a credential (a Bearer header, an `sk-` token) is masked even if
it was never seen before.
"""

import logging
import re
import threading

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
    """Register a secret so that later logs and payloads never show it."""
    if value and len(value) >= 4:
        with _lock:
            _known_secrets.add(value)


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
