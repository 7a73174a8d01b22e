"""Ids read from URLs, forms and query strings one strict way, and requests with more fields than the studio
ever sends answered with a plain 400.

`str.isdigit()` and `int()` disagree ("²" is a digit to one and not to the other, while "٣" and " 7" are
numbers to `int()`), `int()` refuses more than 4,300 digits, and an id past the database's integer overflows
in SQLite's driver (PostgreSQL refuses it too). An id here is ASCII digits from 1 to 2**63 - 1, the largest
bigint of both; anything else is None, which the caller turns into "no such object": a 404, a refusal in
words, or a filter left out.
"""

import re

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.http import HttpResponseBadRequest, UnreadablePostError

MAX_ID = 2**63 - 1
ID_PATTERN = "[0-9]{1,19}"
_ID = re.compile(ID_PATTERN)


def parse_id(value):
    """The id `value` spells, or None."""
    if not isinstance(value, str) or not _ID.fullmatch(value):
        return None
    number = int(value)
    return number if 1 <= number <= MAX_ID else None


def parse_ids(values, *, limit):
    """The ids, in the order given and without repeats; None if one is not an id or there are over `limit`."""
    ids = [parse_id(value) for value in values]
    if None in ids:
        return None
    ids = list(dict.fromkeys(ids))
    return ids if len(ids) <= limit else None


class IdConverter:
    """`<id:name>` in a URL: an id as parse_id reads it. Anything else (0, past the largest bigint) matches no
    URL, so it is a 404 before any view runs."""

    regex = ID_PATTERN

    def to_python(self, value):
        number = parse_id(value)
        if number is None:
            raise ValueError(value)  # the resolver's "no match"
        return number

    def to_url(self, value):
        return str(value)


class FieldLimitMiddleware:
    """Answers a request with more fields than DATA_UPLOAD_MAX_NUMBER_FIELDS (or more files, or a bigger form,
    than Django takes) with a plain 400 that says so, before any view or CSRF check reads the fields.

    Django refuses such a request where the fields are first read, but with a bare "Bad Request", and with
    DEBUG on its error page reads them again, which turns the refusal into a 500. The query string is read
    for every request; a POST's form where CSRF reads it anyway: a csrf-exempt view (a provider's callback)
    reads its own body, which a form parsed here would have consumed.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        try:
            request.GET  # noqa: B018 (parsed here, where a refusal can be answered)
        except TooManyFieldsSent:
            return _refused(_too_many())
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        if request.method != "POST" or getattr(view_func, "csrf_exempt", False):
            return None
        try:
            request.POST  # noqa: B018
        except (TooManyFieldsSent, TooManyFilesSent):
            return _refused(_too_many())
        except RequestDataTooBig:
            limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
            return _refused(f"This form is too large (at most {limit:,} bytes besides files are taken)")
        except UnreadablePostError:
            return None  # the client went away: the CSRF check answers as it always has
        return None


def _too_many():
    fields, files = settings.DATA_UPLOAD_MAX_NUMBER_FIELDS, settings.DATA_UPLOAD_MAX_NUMBER_FILES
    return f"This request has too many fields (at most {fields:,} are taken, and {files:,} files)"


def _refused(reason):
    return HttpResponseBadRequest(f"{reason}; nothing was done.\n", content_type="text/plain; charset=utf-8")
