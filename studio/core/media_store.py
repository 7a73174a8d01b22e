"""Where the studio keeps its files: uploaded images, videos, posters and thumbnail strips.

Every file is in Django's default storage (STORAGES["default"]) under a name that is the same on every
machine ("projects/<id>/videos/<uuid>.mp4"). Two kinds of storage:

- a folder (FileSystemStorage, the default: STUDIO_MEDIA_ROOT). Every name is a path; a download is written
  beside its final place and renamed into it (a reader never sees half a file), and members' media can be
  handed to the front server (STUDIO_MEDIA_HANDOFF). Several machines share it by mounting one folder.
- an object store (S3 or S3-compatible, through django-storages: STUDIO_S3_BUCKET). Nothing is a path: a
  download is written to a scratch folder of this machine, hashed and checked there, then uploaded under its
  name; a program that needs a file on disk (FFmpeg probing a video) gets a local copy for the while; members
  are sent to a short-lived signed link once the studio has checked their access.
"""

import os
import posixpath
import shutil
import tempfile
import uuid
from contextlib import contextmanager
from io import BytesIO
from pathlib import Path

from django.conf import settings
from django.core.files import File
from django.core.files.storage import storages

COPY_CHUNK = 1024 * 1024


def store():
    return storages["default"]


def local_root():
    """The folder files live in when the storage is one, else None."""
    try:
        return Path(store().path(""))
    except NotImplementedError:
        return None


def is_local():
    return local_root() is not None


def scratch_dir(relative_dir):
    """Where a file is written while it is made: beside its final place in a folder (so that it is renamed into
    place), else in this machine's DATA_DIR/partials."""
    root = local_root()
    directory = root / relative_dir if root is not None else Path(settings.DATA_DIR) / "partials"
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def keep(temporary, name):
    """Store the finished file `temporary` (written in scratch_dir) under `name`; the temporary file is gone
    afterwards. Returns the name stored."""
    root = local_root()
    if root is not None:
        final = root / name
        os.replace(temporary, final)
        _fsync_directory(final.parent)
        return name
    try:
        with open(temporary, "rb") as handle:
            return store().save(name, File(handle, name=posixpath.basename(name)))
    finally:
        Path(temporary).unlink(missing_ok=True)


def save_jpeg(image, name, *, quality):
    """A Pillow image as a JPEG under `name`, replacing any earlier one whole (making a poster twice writes the
    same file): in a folder by rename, in an object store by one upload."""
    root = local_root()
    if root is not None:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".partial-{uuid.uuid4().hex}.jpg")
        try:
            image.save(partial, "JPEG", quality=quality)
            os.replace(partial, path)
        finally:
            partial.unlink(missing_ok=True)
        return name
    buffer = BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    buffer.seek(0)
    if store().exists(name):
        store().delete(name)
    return store().save(name, File(buffer, name=posixpath.basename(name)))


@contextmanager
def local_copy(name):
    """A path to the file on this machine for as long as the block runs: the file itself in a folder, else a
    copy downloaded to the scratch folder and removed afterwards."""
    root = local_root()
    if root is not None:
        yield root / name
        return
    suffix = posixpath.splitext(name)[1]
    handle = tempfile.NamedTemporaryFile(dir=scratch_dir(""), prefix=".copy-", suffix=suffix, delete=False)
    try:
        with handle, store().open(name, "rb") as source:
            shutil.copyfileobj(source, handle, COPY_CHUNK)
        yield Path(handle.name)
    finally:
        Path(handle.name).unlink(missing_ok=True)


def delete(name):
    store().delete(name)


def where(name):
    """How to tell a person where a file is: its path in a folder, else its name in the bucket."""
    root = local_root()
    if root is not None:
        return str(root / name)
    bucket = getattr(store(), "bucket_name", "")
    return f"s3://{bucket}/{name}" if bucket else name


def confined_name(project_id, path):
    """The storage name of `path` inside the project's own files, or None: no absolute path, no dot segment,
    no NUL, and the file must exist (the object-store counterpart of core.views.project_file)."""
    if not path or "\x00" in path or "\\" in path or path.startswith("/"):
        return None
    parts = path.split("/")
    if any(part in ("", ".", "..") for part in parts):
        return None
    name = f"projects/{int(project_id)}/{path}"
    try:
        return name if store().exists(name) else None
    except Exception:  # noqa: BLE001 - an unreadable name (too long, odd bytes) is no file
        return None


def _fsync_directory(directory):
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
