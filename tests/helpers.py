"""Small builders shared by tests."""

import io

from PIL import Image


def png_bytes(color=(200, 30, 30), size=(64, 48)):
    """A solid-colour PNG, e.g. for first and last frames whose colour a test can look for in a video."""
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="PNG")
    return buffer.getvalue()


def jpeg_bytes(color=(30, 30, 200), size=(64, 48)):
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="JPEG", quality=95)
    return buffer.getvalue()
