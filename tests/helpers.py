"""Small builders shared by tests."""

import io
import threading
from contextlib import contextmanager

from PIL import Image

# One cheap model per provider (short clips render fast in the sandbox): provider -> (model, params).
CHEAP_MODELS = {
    "qingbo": ("veo-3.0", {"duration": 4}),
    "uniall": ("viduq3t-540p", {"duration": 2}),
    "modelmax": ("veo-3-fast", {"duration": 4}),
    "apimp": ("veo-3.0-fast-generate-001", {"duration": 4}),
    "veoquery": ("veo3-fast", {}),
}


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
