import mimetypes
import re
from pathlib import Path

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.http import FileResponse, Http404, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, render

from studio.projects.image_links import image_for_token
from studio.projects.models import Project


def project_file(project_id, path):
    """The file at `path` inside the project's own media folder, with symlinks resolved; Http404 otherwise.

    The one rule for every file the studio serves (members' media and providers' signed image links).
    Checking only that a path stays inside MEDIA_ROOT let a member of one project read another's videos
    with "../<other id>/…", and a symlink could point anywhere: the resolved path must lie under
    MEDIA_ROOT/projects/<id>/ itself.
    """
    folder = (Path(settings.MEDIA_ROOT) / "projects").resolve() / str(int(project_id))
    try:
        full_path = (folder / path).resolve(strict=True)
        is_file = full_path.is_file()
    except (OSError, ValueError, RuntimeError):  # missing, a NUL byte, a name too long, a symlink loop
        raise Http404("No such file.") from None
    if not is_file or not full_path.is_relative_to(folder):
        raise Http404("No such file.")
    return full_path


def media_file(request, project_id, path):
    """Uploaded images and stored videos, served only to members of the project that owns them."""
    get_object_or_404(Project.objects.for_user(request.user), pk=project_id)
    response = ranged_file_response(request, project_file(project_id, path))
    response["Cache-Control"] = "private, max-age=3600"
    response["X-Content-Type-Options"] = "nosniff"
    return response


# ASCII digits, at most 18 of them: a range beyond any file, never an int() of thousands of digits.
RANGE = re.compile(r"^bytes=([0-9]{0,18})-([0-9]{0,18})$")
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
    image = image_for_token(token)
    # The stored name is relative to MEDIA_ROOT; the same rule as members' media keeps it in its project.
    path = project_file(image.project_id, image.file.name.removeprefix(f"projects/{image.project_id}/"))
    response = FileResponse(path.open("rb"), content_type=f"image/{image.format}")
    response["Cache-Control"] = "private, max-age=300"
    response["X-Content-Type-Options"] = "nosniff"
    return response
