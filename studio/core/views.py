from pathlib import Path

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, render
from django.utils._os import safe_join

from studio.projects.image_links import serve_signed_image
from studio.projects.models import Project


def media_file(request, project_id, path):
    """Uploaded images and stored videos, served only to members of the project that owns them."""
    get_object_or_404(Project.objects.for_user(request.user), pk=project_id)
    try:
        full_path = Path(safe_join(settings.MEDIA_ROOT, "projects", str(project_id), path))
    except ValueError:
        raise Http404("No such file.") from None
    if not full_path.is_file():
        raise Http404("No such file.")
    response = FileResponse(full_path.open("rb"))
    response["Cache-Control"] = "private, max-age=3600"
    response["X-Content-Type-Options"] = "nosniff"
    return response


def permission_denied(request, exception=None):
    message = str(exception) if exception and str(exception) else "You don’t have permission to do that."
    return render(request, "403.html", {"message": message}, status=403)


@login_not_required
def public_image(request, token, extension):
    """An uploaded image for a provider to fetch: no session, one image per signed, expiring token."""
    return serve_signed_image(token)
