"""A per-account request budget shared by every worker on every machine, kept in the database."""

import time

from django.db import IntegrityError, transaction
from django.db.models import F

from studio.providers.models import RequestWindow


def take_request_slot(account):
    """Count one request against the account's budget for this minute; False when the budget is spent."""
    limit = account.max_requests_per_minute
    if not limit:
        return True
    minute = int(time.time() // 60)
    for _ in range(2):
        if RequestWindow.objects.filter(account=account, minute=minute, count__lt=limit).update(count=F("count") + 1):
            return True
        if RequestWindow.objects.filter(account=account, minute=minute).exists():
            return False
        try:
            with transaction.atomic():
                RequestWindow.objects.create(account=account, minute=minute, count=1)
            RequestWindow.objects.filter(account=account, minute__lt=minute - 5).delete()
            return True
        except IntegrityError:
            continue  # another worker opened this minute's window first: count against it
    return False


def seconds_until_next_window():
    return 60 - time.time() % 60
