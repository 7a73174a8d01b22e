"""Sign-in throttling, as django-axes is told to do it (AXES_CLIENT_IP_CALLABLE and AXES_LOCKOUT_CALLABLE in
settings): which address a sign-in comes from, and what a sign-in refused by the lock gets."""

import ipaddress
import logging

from axes.helpers import get_client_username, get_cool_off
from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm
from django.shortcuts import render

log = logging.getLogger("studio.signin")


def client_address(request):
    """The address failures are counted against. Reached directly, the peer's own. Behind
    STUDIO_TRUSTED_PROXY_COUNT proxies that each append the address they were reached from to X-Forwarded-For,
    the one the outermost proxy saw: counted from the right, because anything further left was written by the
    client. A request that did not come through them all (or a malformed entry) counts as its peer."""
    peer = request.META.get("REMOTE_ADDR")
    count = settings.STUDIO_TRUSTED_PROXY_COUNT
    if count <= 0:
        return peer
    hops = [hop.strip() for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if hop.strip()]
    if len(hops) < count:
        return peer
    try:
        return str(ipaddress.ip_address(hops[-count]))
    except ValueError:
        return peer


def locked_out(request, original_response, credentials):
    """The sign-in page saying that signing in is paused (429), for every attempt the lock refuses; each one
    is logged with the account tried and the address."""
    username = (get_client_username(request, credentials) or "")[:150]
    address = getattr(request, "axes_ip_address", None) or client_address(request)
    log.warning("Sign-in refused, locked after repeated failures: account %r from %s at %s",
                username, address, request.path)
    context = {
        "form": AuthenticationForm(request, initial={"username": username}),
        "next": request.POST.get("next") or request.GET.get("next", ""),
        "minutes": int(get_cool_off(request).total_seconds() // 60),
    }
    return render(request, "registration/locked_out.html", context, status=429)
