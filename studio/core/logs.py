"""Log lines: plain text by default, one JSON object per line with STUDIO_LOG_FORMAT=json, each naming what
it is about.

What a line is about (the job, its account and provider) is a context, set around a piece of work with
`log_context(**fields)` (for jobs: studio.jobs.logcontext) and kept in a contextvar, so each poller thread
and each task has its own. A filter on the handler copies the context onto every record, and both formats
show it. Keys never reach a line: every record is redacted as it is created (studio.core.redaction).

`configure` is the studio's LOGGING_CONFIG: Django's dictConfig, plus exceptions nobody caught (a thread that
dies, a command that crashes) logged at ERROR with their traceback, and Python's warnings at WARNING, so that
they too are one line in JSON.
"""

import contextvars
import json
import logging
import logging.config
import sys
import threading
from contextlib import contextmanager
from datetime import datetime, timezone

from studio.core.redaction import redact

# Context fields, in the order lines show them.
FIELDS = ("job", "account", "provider", "result")

_context = contextvars.ContextVar("studio_log_context", default={})


@contextmanager
def log_context(**fields):
    """Every line logged inside names these fields (those given as None are left out)."""
    token = _context.set({**_context.get(), **{name: value for name, value in fields.items() if value is not None}})
    try:
        yield
    finally:
        _context.reset(token)


class ContextFilter(logging.Filter):
    """Copies the current context onto each record, leaving a field passed with `extra=` as it is."""

    def filter(self, record):
        for name, value in _context.get().items():
            if not hasattr(record, name):
                setattr(record, name, value)
        return True


def _fields(record):
    return {name: getattr(record, name) for name in FIELDS if hasattr(record, name)}


class PlainFormatter(logging.Formatter):
    """The usual line, then the context: `... job 12 failed: ... [job=12 account=acme provider=qingbo]`."""

    def formatMessage(self, record):
        line = super().formatMessage(record)
        named = " ".join(f"{name}={_plain(value)}" for name, value in _fields(record).items())
        return f"{line} [{named}]" if named else line


def _plain(value):
    text = str(value)
    return json.dumps(text, ensure_ascii=False) if not text or any(c.isspace() or c in '"[]' for c in text) else text


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message, the context's fields, and the
    traceback when there is one (newlines escaped, so a traceback stays on its line)."""

    def format(self, record):
        entry = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **_fields(record),
        }
        if record.exc_info and not record.exc_text:
            record.exc_text = redact(self.formatException(record.exc_info))
        if record.exc_text:
            entry["traceback"] = record.exc_text
        if record.stack_info:
            entry["stack"] = redact(self.formatStack(record.stack_info))
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure(config):
    """LOGGING_CONFIG: apply the dictConfig, then send uncaught exceptions through logging."""
    logging.config.dictConfig(config)
    logging.captureWarnings(True)
    sys.excepthook = _log_uncaught
    threading.excepthook = _log_uncaught_in_thread


def _log_uncaught(kind, error, traceback):
    if issubclass(kind, KeyboardInterrupt):
        return sys.__excepthook__(kind, error, traceback)
    logging.getLogger("studio").error("uncaught %s", kind.__name__, exc_info=(kind, error, traceback))


def _log_uncaught_in_thread(args):
    if args.exc_type is SystemExit:
        return
    logging.getLogger("studio").error("thread %s ended with an uncaught %s", args.thread.name if args.thread else "?",
                                      args.exc_type.__name__,
                                      exc_info=(args.exc_type, args.exc_value, args.exc_traceback))
