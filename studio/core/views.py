import mimetypes
import re
from pathlib import Path
from urllib.parse import quote

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.http import FileResponse, Http404, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.utils.cache import get_conditional_response
from django.utils.http import http_date

from studio.core import media_store
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
    if not media_store.is_local():
        return signed_link_response(project_id, path)
    response = media_response(request, project_file(project_id, path))
    response["Cache-Control"] = "private, max-age=3600"
    response["X-Content-Type-Options"] = "nosniff"
    return response


def signed_link_response(project_id, path):
    """In an object store, a member is sent to a signed link to the file that expires within the hour
    (AWS_QUERYSTRING_EXPIRE): the store answers ranges and conditional requests itself."""
    name = media_store.confined_name(project_id, path)
    if name is None:
        raise Http404("No such file.")
    response = HttpResponseRedirect(media_store.store().url(name))
    response["Cache-Control"] = "private, no-store"
    return response


# Where nginx serves the bytes after the studio's access check (deploy/nginx/studio-locations.conf: an `internal`
# location that clients cannot ask for themselves).
ACCEL_PREFIX = "/protected-media/"


def media_response(request, path):
    """A checked media file, sent as STUDIO_MEDIA_HANDOFF says. Handed off, the front server reads the file and
    answers ranges, ETags and 304s itself, so a video being watched ties up no web thread at all."""
    content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    if settings.STUDIO_MEDIA_HANDOFF == "x-accel-redirect":
        response = HttpResponse(content_type=content_type)
        # The path under MEDIA_ROOT (its projects/ folder may be a symlink: the path is taken from where that
        # leads), escaped: nginx reads the header as a URI, like a request line.
        relative = path.relative_to((Path(settings.MEDIA_ROOT) / "projects").resolve()).as_posix()
        response["X-Accel-Redirect"] = f"{ACCEL_PREFIX}projects/{quote(relative)}"
        return response
    if settings.STUDIO_MEDIA_HANDOFF == "x-sendfile":
        response = HttpResponse(content_type=content_type)
        response["X-Sendfile"] = str(path)
        return response
    return ranged_file_response(request, path, content_type=content_type)


# ASCII digits, at most 18 of them: a range beyond any file, never an int() of thousands of digits.
RANGE = re.compile(r"^bytes=([0-9]{0,18})-([0-9]{0,18})$")
CHUNK = 256 * 1024


def ranged_file_response(request, path, *, content_type):
    """The file, or the one byte range asked for (browsers seek in videos with Range requests), with validators
    (ETag, Last-Modified) and 304 for a copy the browser already has.

    Both are a FileResponse over the open file: under gunicorn the kernel sends it (sendfile, from the range's
    first byte for Content-Length bytes); elsewhere it is read in large blocks, never past the range.
    """
    stat = path.stat()
    size, modified = stat.st_size, int(stat.st_mtime)
    # nginx's own form ("mtime-size" in hex), so a browser's copy stays valid when STUDIO_MEDIA_HANDOFF changes.
    validators = {"ETag": f'"{modified:x}-{size:x}"', "Last-Modified": http_date(modified), "Accept-Ranges": "bytes"}
    response = get_conditional_response(request, etag=validators["ETag"], last_modified=modified)
    if response is not None:  # 304 Not Modified, or 412 for a failed If-Match / If-Unmodified-Since
        return _with_headers(response, validators)
    start, end = 0, size - 1
    match = RANGE.match(request.headers.get("Range", "").strip())
    if match and any(match.groups()) and _range_still_valid(request, validators):
        first, last = match.groups()
        if first:
            start, end = int(first), min(int(last), size - 1) if last else size - 1
        else:
            start = max(0, size - int(last))
        if start > end or start >= size:
            return _with_headers(HttpResponse(status=416), {"Content-Range": f"bytes */{size}"})
    response = FileResponse(_FilePart(path, start, end - start + 1), content_type=content_type)
    response.block_size = CHUNK
    if (start, end) != (0, size - 1):
        response.status_code = 206
        response["Content-Range"] = f"bytes {start}-{end}/{size}"
    response["Content-Length"] = str(end - start + 1)
    return _with_headers(response, validators)


def _range_still_valid(request, validators):
    """If-Range: the range applies only to the copy the browser names (its ETag, or its exact date)."""
    if_range = request.headers.get("If-Range", "").strip()
    return not if_range or if_range in (validators["ETag"], validators["Last-Modified"])


def _with_headers(response, headers):
    for name, value in headers.items():
        response[name] = value
    return response


class _FilePart:
    """`length` bytes of a file from `start`: a file object for FileResponse whose reads stop at the part's end,
    with the open file's descriptor (positioned at `start`) for servers that send it with sendfile."""

    def __init__(self, path, start, length):
        self.file = path.open("rb")
        self.file.seek(start)
        self.remaining = length

    def read(self, size=-1):
        size = self.remaining if size < 0 else min(size, self.remaining)
        data = self.file.read(size)
        self.remaining -= len(data)
        return data

    def fileno(self):
        return self.file.fileno()

    def close(self):
        self.file.close()


def permission_denied(request, exception=None):
    message = str(exception) if exception and str(exception) else "You don’t have permission to do that."
    return render(request, "403.html", {"message": message}, status=403)


@login_not_required
def public_image(request, token, extension):
    """An uploaded image for a provider to fetch: no session, one image per signed, expiring token."""
    image = image_for_token(token)
    # The stored name is relative to the storage; the same rule as members' media keeps it in its project.
    relative = image.file.name.removeprefix(f"projects/{image.project_id}/")
    if media_store.is_local():
        source = project_file(image.project_id, relative).open("rb")
    else:
        # Streamed from the store: a provider's fetcher may not follow a redirect to another host.
        name = media_store.confined_name(image.project_id, relative)
        if name is None:
            raise Http404("No such file.")
        source = media_store.store().open(name, "rb")
    response = FileResponse(source, content_type=f"image/{image.format}")
    response["Cache-Control"] = "private, max-age=300"
    response["X-Content-Type-Options"] = "nosniff"
    return response
