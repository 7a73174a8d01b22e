from django.conf import settings
from django.shortcuts import resolve_url
from django_htmx.http import HttpResponseClientRedirect


class HtmxLoginRedirectMiddleware:
    """A live fragment whose session has expired must not swap the sign-in page into a card: tell htmx to
    load the sign-in page as a whole instead."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        login_url = resolve_url(settings.LOGIN_URL)
        if getattr(request, "htmx", False) and response.status_code == 302 \
                and response["Location"].startswith(login_url):
            return HttpResponseClientRedirect(response["Location"])
        return response
