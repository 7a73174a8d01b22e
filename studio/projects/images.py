"""Taking in an uploaded image: judged by its content, re-encoded without metadata, stored under a random name."""

import hashlib
import io
import warnings

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.template.defaultfilters import filesizeformat
from PIL import Image, ImageOps, UnidentifiedImageError

from studio.projects.models import ImageAsset

# MPO is how Pillow names a camera JPEG that carries extra preview pictures: to everyone else it is a JPEG.
ACCEPTED = {"PNG": "png", "JPEG": "jpeg", "MPO": "jpeg", "WEBP": "webp"}
MIME = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}


def megapixels(count):
    return f"{count / 1_000_000:.1f} megapixels" if count >= 100_000 else f"{count:,} pixels"


def _open_checked(source):
    """Open and fully decode the image, refusing anything that is not a whole PNG, JPEG or WebP. Pillow reads
    the file in small pieces as it decodes, so only the decoded picture (within STUDIO_MAX_IMAGE_PIXELS) is
    held."""
    size = source.seek(0, io.SEEK_END)
    if size > settings.STUDIO_MAX_IMAGE_BYTES:
        raise ValidationError(
            f"The image is {filesizeformat(size)}; the limit is {filesizeformat(settings.STUDIO_MAX_IMAGE_BYTES)}."
        )
    with warnings.catch_warnings():
        # Pillow only warns about a decompression bomb below twice its limit; here it is an error.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            source.seek(0)
            probe = Image.open(source)
            kind = probe.format
            if kind not in ACCEPTED:
                raise ValidationError(f"{kind or 'This'} images are not accepted: upload a PNG, JPEG or WebP.")
            if probe.width * probe.height > settings.STUDIO_MAX_IMAGE_PIXELS:
                raise ValidationError(
                    f"The image is {probe.width}×{probe.height} pixels; "
                    f"the limit is {megapixels(settings.STUDIO_MAX_IMAGE_PIXELS)}."
                )
            probe.verify()
            source.seek(0)
            image = Image.open(source)
            image.load()
        except (Image.DecompressionBombWarning, Image.DecompressionBombError):
            raise ValidationError("The image is too large to open safely (a decompression bomb?).") from None
        except UnidentifiedImageError:
            raise ValidationError("This file is not an image we can read: upload a PNG, JPEG or WebP.") from None
        except (OSError, SyntaxError, ValueError) as error:
            raise ValidationError(f"The image is damaged or truncated and cannot be read ({error}).") from None
    return image, ACCEPTED[kind]


def _reencoded(image, kind):
    """Apply EXIF orientation, drop every piece of metadata, and encode a fresh file."""
    image = ImageOps.exif_transpose(image)
    if kind == "jpeg" and image.mode not in ("RGB", "L"):
        image = image.convert("RGB")
    if kind in ("png", "webp") and image.mode not in ("RGB", "RGBA", "L", "LA"):
        image = image.convert("RGBA")
    clean = Image.new(image.mode, image.size)
    clean.paste(image)
    buffer = io.BytesIO()
    options = {"png": {"optimize": True}, "jpeg": {"quality": 92}, "webp": {"quality": 92}}[kind]
    clean.save(buffer, format=kind.upper(), **options)
    return buffer.getvalue(), clean.size


def image_ingest(*, project, data, name="", user=None):
    """Store an uploaded image in the project's library; the same picture uploaded twice is kept once. `data`
    is the image's bytes, or a binary file such as an upload (read from its temporary file, never whole)."""
    image, kind = _open_checked(io.BytesIO(data) if isinstance(data, bytes | bytearray) else data)
    content, (width, height) = _reencoded(image, kind)
    digest = hashlib.sha256(content).hexdigest()
    existing = ImageAsset.objects.filter(project=project, sha256=digest).first()
    if existing:
        return existing
    asset = ImageAsset(project=project, format=kind, width=width, height=height, bytes=len(content), sha256=digest,
                       original_name=name[:255], uploaded_by=user)
    asset.file.save(f"upload.{asset.format_extension()}", ContentFile(content), save=False)
    asset.save()
    return asset
