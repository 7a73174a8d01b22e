"""Sign-in throttling, as django-axes is told to do it (AXES_CLIENT_IP_CALLABLE and AXES_LOCKOUT_CALLABLE in
settings): which address a sign-in comes from, and what a sign-in refused by the lock gets."""

import ipaddress
import logging

from axes.helpers import get_client_username, get_cool_off
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import AuthenticationForm
from django.core.validators import MaxLengthValidator
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


def username_limit():
    return get_user_model()._meta.get_field("username").max_length


class SignInForm(AuthenticationForm):
    """Django's sign-in form, which sets the username's length limit after the field is built, so that no
    check comes of it: a name longer than any account's is refused here, with the rule, and never looked up."""

    def __init__(self, request=None, *args, **kwargs):
        super().__init__(request, *args, **kwargs)
        limit = username_limit()
        self.fields["username"].validators.append(
            MaxLengthValidator(limit, message=f"That is longer than any username (at most {limit} characters)."))


def attempted_username(request, credentials=None):
    """The account a sign-in names, as django-axes records it (AXES_USERNAME_CALLABLE): cut to the longest
    username there can be, since its table holds 255 characters and PostgreSQL refuses more (the admin's
    sign-in page reaches it without our form)."""
    if credentials:
        name = credentials.get(settings.AXES_USERNAME_FORM_FIELD)
    else:
        name = request.POST.get(settings.AXES_USERNAME_FORM_FIELD)
    return str(name)[:username_limit()] if name is not None else None


def locked_out(request, original_response, credentials):
    """The sign-in page saying that signing in is paused (429), for every attempt the lock refuses; each one
    is logged with the account tried and the address."""
    username = (get_client_username(request, credentials) or "")[:150]
    address = getattr(request, "axes_ip_address", None) or client_address(request)
    log.warning("Sign-in refused, locked after repeated failures: account %r from %s at %s",
                username, address, request.path)
    context = {
        "form": SignInForm(request, initial={"username": username}),
        "next": request.POST.get("next") or request.GET.get("next", ""),
        "minutes": int(get_cool_off(request).total_seconds() // 60),
    }
    return render(request, "registration/locked_out.html", context, status=429)
