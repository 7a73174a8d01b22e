"""Small builders shared by tests."""

import io
import threading
from contextlib import contextmanager

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


@contextmanager
def poller_running(*, threads=8, owner=None, seconds=30):
    """The studio's poller on a thread of this test, stopped (and checked to have stopped) on the way out."""
    from studio.jobs.poller import Poller

    poller = Poller(threads=threads, owner=owner)
    thread = threading.Thread(target=poller.run, kwargs={"seconds": seconds}, name=f"poller-{owner}")
    thread.start()
    try:
        yield poller
    finally:
        poller.stop()
        thread.join(timeout=30)
        assert not thread.is_alive(), "the poller did not stop"
