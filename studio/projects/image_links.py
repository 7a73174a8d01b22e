"""Signed, expiring links to one uploaded image, for providers that fetch images by URL.

The link works without signing in (a provider has no session), names exactly one image, and expires
after STUDIO_IMAGE_LINK_SECONDS. Its token is signed with SECRET_KEY, so it cannot be guessed or altered.
The file itself is served by studio.core.views.public_image, through the same project-folder rule as members'
media.
"""

from django.conf import settings
from django.core import signing
from django.http import Http404
from django.urls import reverse

from studio.projects.models import ImageAsset

SALT = "studio.image-link"


def signed_image_url(image):
    token = signing.TimestampSigner(salt=SALT).sign_object({"image": image.pk, "sha": image.sha256[:16]})
    path = reverse("public_image", args=[token, image.format_extension()])
    return settings.STUDIO_PUBLIC_URL.rstrip("/") + path


def image_for_token(token):
    try:
        claims = signing.TimestampSigner(salt=SALT).unsign_object(token, max_age=settings.STUDIO_IMAGE_LINK_SECONDS)
    except signing.BadSignature:
        raise Http404("This image link is not valid or has expired.") from None
    image = ImageAsset.objects.filter(pk=claims.get("image"), sha256__startswith=claims.get("sha", "-")).first()
    if image is None:
        raise Http404("This image no longer exists.")
    return image
