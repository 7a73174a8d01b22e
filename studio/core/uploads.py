"""Uploads are capped while they arrive, so no request can make the web process hold a big file.

Django parses a multipart body part by part and hands each file to its upload handlers a chunk (64 KiB) at
a time. The studio has one handler (settings.FILE_UPLOAD_HANDLERS): it writes each file to a temporary file as
it comes (a whole request smaller than FILE_UPLOAD_MAX_MEMORY_SIZE stays in memory), drops a file at the chunk
that takes it past STUDIO_MAX_IMAGE_BYTES, and takes no more than STUDIO_MAX_UPLOAD_FILES files from one
request. The rest of the body is still read (and thrown away as it comes), so the person gets an answer and not
a broken connection, and the other fields and files of the request are kept. What was refused, and why, is
refused_uploads(request), for the view to show.
"""

from dataclasses import dataclass
from io import BytesIO

from django.conf import settings
from django.core.files.uploadedfile import InMemoryUploadedFile, TemporaryUploadedFile
from django.core.files.uploadhandler import FileUploadHandler, SkipFile
from django.template.defaultfilters import filesizeformat


@dataclass(frozen=True)
class RefusedUpload:
    field_name: str
    file_name: str
    reason: str


class UploadLimitHandler(FileUploadHandler):
    """Receives every uploaded file, within the limits.

    `self.file` exists only while a file is arriving: it is handed over when the file is complete and closed
    (which deletes a temporary file) when the file is refused. Django, on skipping a file, closes whatever
    each handler's `file` is; holding none then is what keeps a finished file of the same request from being
    closed with it."""

    def __init__(self, request=None):
        super().__init__(request)
        self.in_memory = False
        self.files_started = 0
        self.refused = []

    def handle_raw_input(self, input_data, META, content_length, boundary, encoding=None):
        self.in_memory = content_length <= settings.FILE_UPLOAD_MAX_MEMORY_SIZE

    def new_file(self, field_name, file_name, *args, **kwargs):
        self.files_started += 1
        limit = settings.STUDIO_MAX_UPLOAD_FILES
        if self.files_started > limit:
            self._refuse(field_name, file_name, f"Not taken: at most {limit} images can be uploaded at once.")
        super().new_file(field_name, file_name, *args, **kwargs)
        if self.in_memory:
            self.file = BytesIO()
        else:
            self.file = TemporaryUploadedFile(self.file_name, self.content_type, 0, self.charset,
                                              self.content_type_extra)

    def receive_data_chunk(self, raw_data, start):
        if start + len(raw_data) > settings.STUDIO_MAX_IMAGE_BYTES:
            self._drop_file()
            limit = filesizeformat(settings.STUDIO_MAX_IMAGE_BYTES)
            self._refuse(self.field_name, self.file_name, f"The image is too large: the limit is {limit}.")
        self.file.write(raw_data)

    def file_complete(self, file_size):
        file = self.file
        del self.file
        file.seek(0)
        if isinstance(file, TemporaryUploadedFile):
            file.size = file_size
            return file
        return InMemoryUploadedFile(file, self.field_name, self.file_name, self.content_type, file_size,
                                    self.charset, self.content_type_extra)

    def upload_interrupted(self):
        """The client went away in the middle of a file: its part is deleted now, not when collected."""
        if hasattr(self, "file"):
            self._drop_file()

    def _drop_file(self):
        self.file.close()
        del self.file

    def _refuse(self, field_name, file_name, reason):
        self.refused.append(RefusedUpload(field_name, file_name, reason))
        raise SkipFile(reason)


def refused_uploads(request):
    """The files of this request that the upload handler did not take, with the reason for each."""
    return [refusal for handler in request.upload_handlers if isinstance(handler, UploadLimitHandler)
            for refusal in handler.refused]
