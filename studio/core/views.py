import mimetypes
import re
from pathlib import Path

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.http import FileResponse, Http404, HttpResponse, StreamingHttpResponse
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
    response = ranged_file_response(request, full_path)
    response["Cache-Control"] = "private, max-age=3600"
    response["X-Content-Type-Options"] = "nosniff"
    return response


RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
CHUNK = 256 * 1024


def ranged_file_response(request, path):
    """The file, or the one byte range asked for (browsers seek in videos with Range requests)."""
    size = path.stat().st_size
    content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    match = RANGE.match(request.headers.get("Range", "").strip())
    if not match or not any(match.groups()):
        response = FileResponse(path.open("rb"), content_type=content_type)
        response["Accept-Ranges"] = "bytes"
        return response
    first, last = match.groups()
    if first:
        start, end = int(first), min(int(last), size - 1) if last else size - 1
    else:
        start, end = max(0, size - int(last)), size - 1
    if start > end or start >= size:
        response = HttpResponse(status=416)
        response["Content-Range"] = f"bytes */{size}"
        return response
    response = StreamingHttpResponse(_read_range(path, start, end), status=206, content_type=content_type)
    response["Content-Range"] = f"bytes {start}-{end}/{size}"
    response["Content-Length"] = str(end - start + 1)
    response["Accept-Ranges"] = "bytes"
    return response


def _read_range(path, start, end):
    with path.open("rb") as handle:
        handle.seek(start)
        remaining = end - start + 1
        while remaining > 0:
            chunk = handle.read(min(CHUNK, remaining))
            if not chunk:
                break
            remaining -= len(chunk)
            yield chunk


def permission_denied(request, exception=None):
    message = str(exception) if exception and str(exception) else "You don’t have permission to do that."
    return render(request, "403.html", {"message": message}, status=403)


@login_not_required
def public_image(request, token, extension):
    """An uploaded image for a provider to fetch: no session, one image per signed, expiring token."""
    return serve_signed_image(token)
