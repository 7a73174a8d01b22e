"""Real, playable MP4 files for the sandbox video-generation server.

The sandbox stands in for paid providers, so reviewers must be able to open its output in a browser
and see at a glance that the request was honoured: the prompt and settings are printed on the
picture, a time code and a sweeping progress bar make playback and seeking visible, and any
first/last frame images supplied with the request really are the first and last frames.

Everything is encoded as H.264 (yuv420p, BT.709) plus optional AAC in an MP4 with the index at the
front, which is what Chromium plays and streams without any further processing.
"""

from __future__ import annotations

import colorsys
import functools
import io
import math
import os
import random
import tempfile
from array import array
from fractions import Fraction
from pathlib import Path

import av
from av.video.reformatter import ColorRange, Colorspace
from PIL import Image, ImageDraw, ImageFont, ImageOps

RESOLUTION_SHORT_SIDES = {"540p": 540, "720p": 720, "1080p": 1080, "4k": 2160}
MAX_SIDE = 8192
MAX_FPS = 120
MAX_DURATION_SECONDS = 600
CROSSFADE_SECONDS = 1.0
KEYFRAME_INTERVAL_SECONDS = 1

AUDIO_SAMPLE_RATE = 48000
AUDIO_CHUNK_SAMPLES = 1024
AUDIO_VOLUME = 0.12
AUDIO_EDGE_FADE_SECONDS = 0.05
PENTATONIC_HZ = (220.0, 261.63, 293.66, 329.63, 392.0, 440.0, 523.25)

FONT_DIRECTORY = Path("/usr/share/fonts/truetype/dejavu")
TEXT_FILL = (245, 245, 240)
TEXT_OUTLINE = (20, 20, 24)
BAR_TRACK = (255, 255, 255, 60)
BAR_FILL = (255, 214, 90)
DEFAULT_HUE = 0.58

H264_COLOR_TAGS = {"colorspace": 1, "color_primaries": 1, "color_trc": 1, "color_range": 1}


def dimensions_for(aspect_ratio: str, resolution: str) -> tuple[int, int]:
    """Frame size for a provider-style request; the short side is the named resolution.

    Both sides are even because yuv420p subsamples chroma in 2x2 blocks and libx264 refuses odd sizes.
    """
    short_side = RESOLUTION_SHORT_SIDES.get(str(resolution).lower())
    if short_side is None:
        known = ", ".join(RESOLUTION_SHORT_SIDES)
        raise ValueError(f"unknown resolution {resolution!r}; expected one of {known}")
    ratio_width, ratio_height = _parse_aspect_ratio(aspect_ratio)
    if ratio_width >= ratio_height:
        return _even(short_side * ratio_width / ratio_height), short_side
    return short_side, _even(short_side * ratio_height / ratio_width)


def render_video(
    path,
    *,
    width: int,
    height: int,
    duration: float,
    fps: int = 24,
    audio: bool = False,
    lines: list[str] = (),
    first_frame: bytes | None = None,
    last_frame: bytes | None = None,
    seed: int | None = None,
) -> None:
    """Write an H.264 MP4 (yuv420p, faststart) to `path`, atomically.

    The file is encoded into a temporary file in the same directory and moved into place with
    os.replace, so a reader never sees a half-written video and a failed render leaves nothing behind.
    """
    _check_video_arguments(width, height, duration, fps)
    frame_count = round(duration * fps)
    if frame_count < 1:
        raise ValueError(f"duration {duration}s at {fps} fps gives no frames")
    if first_frame is not None and last_frame is not None and frame_count < 2:
        raise ValueError("a clip with both first_frame and last_frame needs at least two frames")
    size = (width, height)
    first_still = _load_still(first_frame, size, "first_frame")
    last_still = _load_still(last_frame, size, "last_frame")
    scene = _Scene(size, frame_count, fps, list(lines), seed)
    fade_frames = _crossfade_frames(frame_count, fps)

    def picture_at(index: int) -> Image.Image:
        return _picture_at(index, scene, first_still, last_still, fade_frames)

    target = Path(path)
    handle, temp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    os.close(handle)
    try:
        _encode(temp_name, scene, picture_at, audio, seed)
        os.chmod(temp_name, 0o644)
        os.replace(temp_name, target)
    except BaseException:
        _remove_quietly(temp_name)
        raise


def probe(path) -> dict:
    """Summarise an MP4 the way the tests need: duration, size, frame rate, codec, audio presence."""
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        if container.duration is not None:
            duration = container.duration / av.time_base
        else:
            duration = float(video.duration * video.time_base)
        return {
            "duration": duration,
            "width": video.codec_context.width,
            "height": video.codec_context.height,
            "fps": float(video.average_rate) if video.average_rate else None,
            "video_codec": video.codec_context.name,
            "has_audio": len(container.streams.audio) > 0,
        }


class _Scene:
    """The generated picture: static layers are drawn once, only the moving parts per frame."""

    def __init__(self, size, frame_count, fps, lines, seed):
        self.size = size
        self.frame_count = frame_count
        self.fps = fps
        width, height = size
        short_side = min(width, height)
        self.margin = max(8, round(short_side * 0.05))
        self.bar_thickness = max(4, round(short_side * 0.012))
        self.bar_y = height - self.margin - self.bar_thickness
        self.clock_font = _font(max(12, round(short_side / 26)), monospace=True)
        self.clock_stroke = max(1, round(self.clock_font.size / 14))
        clock_height = self.clock_font.size + 2 * self.clock_stroke
        self.clock_y = self.bar_y - self.margin // 2 - clock_height
        self.base = self._draw_base(lines, seed)

    def frame(self, index: int) -> Image.Image:
        """The generated picture for one frame, without any supplied first/last image blended in."""
        picture = self.base.copy()
        draw = ImageDraw.Draw(picture)
        self._draw_progress(draw, index)
        self._draw_clock(draw, index)
        return picture

    def _draw_base(self, lines, seed) -> Image.Image:
        picture = _background(self.size, seed)
        text_bottom = self.clock_y - self.margin // 2
        _draw_text_block(picture, lines, self.margin, text_bottom)
        overlay = Image.new("RGBA", self.size, (0, 0, 0, 0))
        ImageDraw.Draw(overlay).rectangle(self._bar_box(self.size[0] - self.margin), fill=BAR_TRACK)
        picture.paste(overlay, (0, 0), overlay)
        return picture

    def _bar_box(self, right: float) -> tuple[float, float, float, float]:
        return (self.margin, self.bar_y, right, self.bar_y + self.bar_thickness)

    def _draw_progress(self, draw: ImageDraw.ImageDraw, index: int) -> None:
        track_length = self.size[0] - 2 * self.margin
        progress = index / (self.frame_count - 1) if self.frame_count > 1 else 1.0
        head_x = self.margin + track_length * progress
        draw.rectangle(self._bar_box(head_x), fill=BAR_FILL)
        radius = self.bar_thickness * 1.6
        centre_y = self.bar_y + self.bar_thickness / 2
        draw.ellipse((head_x - radius, centre_y - radius, head_x + radius, centre_y + radius), fill=BAR_FILL)

    def _draw_clock(self, draw: ImageDraw.ImageDraw, index: int) -> None:
        label = f"t={index / self.fps:.2f}s   frame {index + 1}/{self.frame_count}"
        draw.text(
            (self.margin, self.clock_y),
            label,
            font=self.clock_font,
            fill=TEXT_FILL,
            stroke_width=self.clock_stroke,
            stroke_fill=TEXT_OUTLINE,
        )


def _picture_at(index, scene, first_still, last_still, fade_frames) -> Image.Image:
    """Blend supplied stills over the generated picture so frame 0 and the final frame are exactly them."""
    frames_to_end = scene.frame_count - 1 - index
    first_weight = _fade_in_weight(index, fade_frames) if first_still is not None else 0.0
    last_weight = _fade_in_weight(frames_to_end, fade_frames) if last_still is not None else 0.0
    if first_weight >= 1.0:
        return first_still
    if last_weight >= 1.0:
        return last_still
    picture = scene.frame(index)
    if first_weight > 0.0:
        picture = Image.blend(picture, first_still, first_weight)
    if last_weight > 0.0:
        picture = Image.blend(picture, last_still, last_weight)
    return picture


def _fade_in_weight(frames_from_still: int, fade_frames: int) -> float:
    """Weight of a still image: 1 on its own frame, falling linearly to 0 over `fade_frames`."""
    return max(0.0, 1.0 - frames_from_still / fade_frames)


def _crossfade_frames(frame_count: int, fps: int) -> int:
    """Crossfade length, capped so a first-frame fade and a last-frame fade never reach each other's end."""
    return max(1, min(round(CROSSFADE_SECONDS * fps), (frame_count - 1) // 2))


def _encode(filename, scene, picture_at, audio: bool, seed) -> None:
    with av.open(filename, mode="w", format="mp4", options={"movflags": "+faststart"}) as container:
        video_stream = _add_video_stream(container, scene)
        audio_stream = container.add_stream("aac", rate=AUDIO_SAMPLE_RATE, layout="mono") if audio else None
        for index in range(scene.frame_count):
            frame = _to_video_frame(picture_at(index), index)
            container.mux(video_stream.encode(frame))
        container.mux(video_stream.encode(None))
        if audio_stream is not None:
            clip_seconds = scene.frame_count / scene.fps
            for frame in _tone_frames(clip_seconds, seed):
                container.mux(audio_stream.encode(frame))
            container.mux(audio_stream.encode(None))


def _add_video_stream(container, scene):
    """H.264 with a short keyframe interval so seeking in the browser lands quickly on the right frame.

    The ultrafast preset roughly halves 1080p render time against veryfast; the mostly static picture
    keeps files small (well under 1 MB for 8 s of 1080p) even so.
    """
    stream = container.add_stream("libx264", rate=scene.fps, options={"preset": "ultrafast"})
    stream.width, stream.height = scene.size
    stream.pix_fmt = "yuv420p"
    stream.time_base = Fraction(1, scene.fps)
    stream.codec_context.gop_size = KEYFRAME_INTERVAL_SECONDS * scene.fps
    for name, value in H264_COLOR_TAGS.items():
        setattr(stream.codec_context, name, value)
    return stream


def _to_video_frame(picture: Image.Image, index: int) -> av.VideoFrame:
    """Use the BT.709 limited-range matrix the stream is tagged with, so browsers show the right colours."""
    frame = av.VideoFrame.from_image(picture).reformat(
        format="yuv420p", dst_colorspace=Colorspace.ITU709, dst_color_range=ColorRange.MPEG
    )
    frame.pts = index
    return frame


def _tone_frames(clip_seconds: float, seed):
    """A quiet sine tone whose pitch steps every second; phase is continuous so the steps do not click."""
    total_samples = round(clip_seconds * AUDIO_SAMPLE_RATE)
    notes = _note_sequence(math.ceil(clip_seconds), seed)
    edge_fade = AUDIO_EDGE_FADE_SECONDS * AUDIO_SAMPLE_RATE
    peak = AUDIO_VOLUME * 32767
    phase = 0.0
    for start in range(0, total_samples, AUDIO_CHUNK_SAMPLES):
        count = min(AUDIO_CHUNK_SAMPLES, total_samples - start)
        samples = array("h")
        for position in range(start, start + count):
            phase += 2 * math.pi * notes[position // AUDIO_SAMPLE_RATE] / AUDIO_SAMPLE_RATE
            envelope = min(1.0, position / edge_fade, (total_samples - 1 - position) / edge_fade)
            samples.append(round(peak * envelope * math.sin(phase)))
        yield _audio_frame(samples, start)


def _note_sequence(seconds: int, seed) -> list[float]:
    rng = random.Random(seed)
    return [rng.choice(PENTATONIC_HZ) for _ in range(seconds)]


def _audio_frame(samples: array, start: int) -> av.AudioFrame:
    frame = av.AudioFrame(format="s16", layout="mono", samples=len(samples))
    frame.planes[0].update(samples.tobytes())
    frame.sample_rate = AUDIO_SAMPLE_RATE
    frame.time_base = Fraction(1, AUDIO_SAMPLE_RATE)
    frame.pts = start
    return frame


def _background(size, seed) -> Image.Image:
    """A muted vertical gradient; the hue comes from the seed so different seeds look different."""
    hue = random.Random(seed).random() if seed is not None else DEFAULT_HUE
    top = _hls_to_rgb(hue, 0.30, 0.35)
    bottom = _hls_to_rgb((hue + 0.08) % 1.0, 0.15, 0.35)
    mask = Image.linear_gradient("L").resize(size)
    return Image.composite(Image.new("RGB", size, bottom), Image.new("RGB", size, top), mask)


def _hls_to_rgb(hue: float, lightness: float, saturation: float) -> tuple[int, int, int]:
    return tuple(round(channel * 255) for channel in colorsys.hls_to_rgb(hue, lightness, saturation))


def _draw_text_block(picture: Image.Image, lines, margin: int, bottom: int) -> None:
    """Draw the request details wrapped to the frame; text that does not fit ends with an ellipsis."""
    width, _ = picture.size
    font = _font(max(12, round(min(picture.size) / 22)))
    stroke = max(1, round(font.size / 16))
    line_height = round(font.size * 1.3)
    wrapped = [row for line in lines for row in _wrap(str(line), font, width - 2 * margin)]
    room = max(0, (bottom - margin) // line_height)
    if len(wrapped) > room:
        wrapped = wrapped[:room]
        if wrapped:
            wrapped[-1] = _with_ellipsis(wrapped[-1], font, width - 2 * margin)
    draw = ImageDraw.Draw(picture)
    for row_number, row in enumerate(wrapped):
        draw.text(
            (margin, margin + row_number * line_height),
            row,
            font=font,
            fill=TEXT_FILL,
            stroke_width=stroke,
            stroke_fill=TEXT_OUTLINE,
        )


def _wrap(text: str, font, max_width: float) -> list[str]:
    """Greedy word wrap; words wider than the frame are split between characters."""
    rows = []
    for paragraph in text.splitlines() or [""]:
        current = ""
        for word in paragraph.split():
            candidate = f"{current} {word}" if current else word
            if font.getlength(candidate) <= max_width:
                current = candidate
                continue
            if current:
                rows.append(current)
            pieces = _split_long_word(word, font, max_width)
            rows.extend(pieces[:-1])
            current = pieces[-1]
        rows.append(current)
    return rows


def _split_long_word(word: str, font, max_width: float) -> list[str]:
    pieces = [""]
    for character in word:
        if pieces[-1] and font.getlength(pieces[-1] + character) > max_width:
            pieces.append("")
        pieces[-1] += character
    return pieces


def _with_ellipsis(row: str, font, max_width: float) -> str:
    while row and font.getlength(row + "…") > max_width:
        row = row[:-1]
    return row + "…"


@functools.lru_cache(maxsize=32)
def _font(size: int, monospace: bool = False):
    """DejaVu when the system has it (wide Unicode coverage); Pillow's bundled scalable font otherwise."""
    name = "DejaVuSansMono.ttf" if monospace else "DejaVuSans.ttf"
    try:
        return ImageFont.truetype(str(FONT_DIRECTORY / name), size)
    except OSError:
        return ImageFont.load_default(size=size)


def _load_still(data: bytes | None, size: tuple[int, int], label: str) -> Image.Image | None:
    """Decode a supplied image and fit it like CSS object-fit: cover (scale to fill, crop the centre)."""
    if data is None:
        return None
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise ValueError(f"{label} must be image bytes, not {type(data).__name__}")
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            rgb = _flatten_to_rgb(ImageOps.exif_transpose(image))
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise ValueError(f"{label} is not a readable PNG/JPEG/WebP image: {error}") from error
    return ImageOps.fit(rgb, size, method=Image.Resampling.LANCZOS)


def _flatten_to_rgb(image: Image.Image) -> Image.Image:
    """Put transparent images on black, as players do, instead of letting convert() expose hidden colours."""
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        backdrop = Image.new("RGB", rgba.size, (0, 0, 0))
        backdrop.paste(rgba, (0, 0), rgba)
        return backdrop
    return image.convert("RGB")


def _check_video_arguments(width, height, duration, fps) -> None:
    for name, value in (("width", width), ("height", height)):
        if not _is_int(value) or not 2 <= value <= MAX_SIDE or value % 2:
            raise ValueError(f"{name} must be an even integer between 2 and {MAX_SIDE}, got {value!r}")
    if not _is_int(fps) or not 1 <= fps <= MAX_FPS:
        raise ValueError(f"fps must be an integer between 1 and {MAX_FPS}, got {fps!r}")
    if _is_int(duration) or isinstance(duration, float):
        if math.isfinite(duration) and 0 < duration <= MAX_DURATION_SECONDS:
            return
    raise ValueError(f"duration must be a number of seconds in (0, {MAX_DURATION_SECONDS}], got {duration!r}")


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _parse_aspect_ratio(aspect_ratio: str) -> tuple[int, int]:
    try:
        ratio_width, ratio_height = (int(part) for part in str(aspect_ratio).split(":"))
    except ValueError:
        raise ValueError(f"aspect ratio must look like '16:9', got {aspect_ratio!r}") from None
    if ratio_width <= 0 or ratio_height <= 0:
        raise ValueError(f"aspect ratio sides must be positive, got {aspect_ratio!r}")
    return ratio_width, ratio_height


def _even(value: float) -> int:
    return 2 * round(value / 2)


def _remove_quietly(filename: str) -> None:
    try:
        os.remove(filename)
    except FileNotFoundError:
        pass
