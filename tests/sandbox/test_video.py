"""The sandbox's MP4s must be real, browser-playable videos that show what was requested."""

import io
import struct

import av
import pytest
from PIL import Image, ImageChops, ImageStat

from studio.sandbox import video
from studio.sandbox.video import dimensions_for, probe, render_video

ONE_FRAME_AT_24_FPS = 1 / 24
RED = (255, 0, 0)
BLUE = (0, 0, 255)
GREEN = (0, 255, 0)


@pytest.fixture
def output_dir(tmp_path):
    """A directory only these tests write to, so other fixtures' files under tmp_path do not count."""
    directory = tmp_path / "renders"
    directory.mkdir()
    return directory


def png_bytes(size, colour):
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format="PNG")
    return buffer.getvalue()


RED_PNG = png_bytes((4, 4), RED)
BLUE_PNG = png_bytes((4, 4), BLUE)
TRUNCATED_PNG = RED_PNG[:20]


def decoded_frames(path):
    with av.open(str(path)) as container:
        return [frame.to_image() for frame in container.decode(video=0)]


def top_level_boxes(path):
    """Types of the ISO BMFF boxes at the top of the file, in order."""
    data = path.read_bytes()
    boxes, offset = [], 0
    while offset + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[offset : offset + 8])
        if size == 1:
            size = struct.unpack(">Q", data[offset + 8 : offset + 16])[0]
        boxes.append(kind.decode("latin-1"))
        if size == 0:
            break
        offset += size
    return boxes


def mean_rgb(image):
    return ImageStat.Stat(image).mean


def colour_spread(image):
    """Largest per-channel max-min; a solid image survives H.264 as a perfectly flat frame."""
    return max(high - low for low, high in ImageStat.Stat(image).extrema)


def assert_colour_close(actual, expected, tolerance=30):
    assert all(abs(a - e) <= tolerance for a, e in zip(actual, expected)), (actual, expected)


def assert_directory_empty(directory):
    assert list(directory.iterdir()) == []


@pytest.mark.parametrize(
    ("aspect_ratio", "resolution", "expected"),
    [
        ("16:9", "720p", (1280, 720)),
        ("9:16", "720p", (720, 1280)),
        ("1:1", "720p", (720, 720)),
        ("16:9", "540p", (960, 540)),
        ("9:16", "540p", (540, 960)),
        ("16:9", "1080p", (1920, 1080)),
        ("9:16", "1080p", (1080, 1920)),
        ("16:9", "4k", (3840, 2160)),
        ("4:3", "720p", (960, 720)),
        ("21:9", "1080p", (2520, 1080)),
    ],
)
def test_dimensions_for_uses_the_resolution_as_the_short_side(aspect_ratio, resolution, expected):
    assert dimensions_for(aspect_ratio, resolution) == expected


def test_dimensions_for_rounds_the_long_side_to_an_even_number():
    width, height = dimensions_for("5:3", "540p")
    assert (width, height) == (900, 540)
    assert dimensions_for("7:5", "540p")[0] % 2 == 0


@pytest.mark.parametrize(
    ("aspect_ratio", "resolution"), [("16:9", "480p"), ("wide", "720p"), ("0:9", "720p")]
)
def test_dimensions_for_rejects_unknown_values(aspect_ratio, resolution):
    with pytest.raises(ValueError):
        dimensions_for(aspect_ratio, resolution)


def test_landscape_720p_with_audio_is_browser_ready(output_dir):
    path = output_dir / "clip.mp4"

    render_video(
        path, width=1280, height=720, duration=4, audio=True, lines=["a prompt", "model: veo"], seed=7
    )

    info = probe(path)
    assert (info["width"], info["height"]) == (1280, 720)
    assert info["duration"] == pytest.approx(4.0, abs=ONE_FRAME_AT_24_FPS)
    assert info["fps"] == 24
    assert info["video_codec"] == "h264"
    assert info["has_audio"] is True
    boxes = top_level_boxes(path)
    assert boxes[0] == "ftyp"
    assert boxes.index("moov") < boxes.index("mdat"), boxes


def test_audio_track_is_aac_and_lasts_as_long_as_the_video(output_dir):
    path = output_dir / "clip.mp4"

    render_video(path, width=320, height=180, duration=3, audio=True)

    with av.open(str(path)) as container:
        (audio_stream,) = container.streams.audio
        assert audio_stream.codec_context.name == "aac"
        assert audio_stream.rate == 48000
        audio_seconds = float(audio_stream.duration * audio_stream.time_base)
        assert audio_seconds == pytest.approx(3.0, abs=ONE_FRAME_AT_24_FPS)
        assert container.streams.video[0].codec_context.pix_fmt == "yuv420p"


def test_portrait_540p_without_audio_has_no_audio_stream(output_dir):
    path = output_dir / "clip.mp4"
    width, height = dimensions_for("9:16", "540p")
    assert (width, height) == (540, 960)

    render_video(path, width=width, height=height, duration=2, audio=False, lines=["portrait"])

    info = probe(path)
    assert (info["width"], info["height"]) == (540, 960)
    assert info["duration"] == pytest.approx(2.0, abs=ONE_FRAME_AT_24_FPS)
    assert info["has_audio"] is False
    with av.open(str(path)) as container:
        assert [stream.type for stream in container.streams] == ["video"]


@pytest.mark.parametrize(("duration", "fps", "expected_frames"), [(2, 24, 48), (1.5, 30, 45), (0.5, 24, 12)])
def test_frame_count_is_duration_times_fps(output_dir, duration, fps, expected_frames):
    path = output_dir / "clip.mp4"

    render_video(path, width=160, height=90, duration=duration, fps=fps)

    assert len(decoded_frames(path)) == expected_frames
    assert probe(path)["fps"] == fps


def test_first_and_last_frames_are_the_supplied_images(output_dir):
    path = output_dir / "clip.mp4"

    render_video(
        path,
        width=640,
        height=360,
        duration=3,
        lines=["this text must not cover the supplied frames"],
        first_frame=png_bytes((300, 200), RED),
        last_frame=png_bytes((200, 300), BLUE),
    )

    frames = decoded_frames(path)
    first, last = frames[0], frames[-1]
    assert_colour_close(mean_rgb(first), RED)
    assert_colour_close(mean_rgb(last), BLUE)
    assert colour_spread(first) <= 4, "frame 0 should be the plain image, with nothing blended over it"
    assert colour_spread(last) <= 4, "the final frame should be the plain image, with nothing blended over it"


def test_supplied_images_crossfade_into_the_generated_picture(output_dir):
    path = output_dir / "clip.mp4"

    render_video(path, width=320, height=180, duration=4, first_frame=png_bytes((64, 64), RED), seed=1)

    frames = decoded_frames(path)
    reds = [mean_rgb(frame)[0] for frame in frames[:30]]
    assert reds[0] > 230
    assert reds[6] < reds[0] and reds[12] < reds[6], "red should fade out gradually, not cut"
    assert reds[29] < 120, "after the crossfade the generated picture should show"


def test_supplied_images_cover_the_frame_and_are_centre_cropped(output_dir):
    path = output_dir / "clip.mp4"
    wide_image = Image.new("RGB", (800, 200), GREEN)
    wide_image.paste(Image.new("RGB", (400, 200), RED), (200, 0))
    buffer = io.BytesIO()
    wide_image.save(buffer, format="JPEG", quality=95)

    render_video(path, width=320, height=180, duration=1, first_frame=buffer.getvalue())

    first = decoded_frames(path)[0]
    assert first.size == (320, 180)
    assert_colour_close(first.getpixel((4, 90)), RED)
    assert_colour_close(first.getpixel((315, 90)), RED)


def test_frames_change_over_time_without_supplied_images(output_dir):
    path = output_dir / "clip.mp4"

    render_video(path, width=640, height=360, duration=2, lines=["moving"], seed=3)

    frames = decoded_frames(path)
    early, late = frames[12], frames[36]
    difference = ImageChops.difference(early, late).convert("L").point(lambda value: 255 if value > 40 else 0)
    changed_pixels = ImageStat.Stat(difference).sum[0] / 255
    assert changed_pixels > 500, "the moving bar and the time code should make t=0.5s and t=1.5s differ"


def test_lines_are_drawn_on_the_picture(output_dir):
    with_text, without_text = output_dir / "text.mp4", output_dir / "plain.mp4"

    render_video(with_text, width=640, height=360, duration=0.5, lines=["A cat surfing a wave"], seed=5)
    render_video(without_text, width=640, height=360, duration=0.5, lines=[], seed=5)

    top_band = (0, 0, 640, 120)
    difference = ImageChops.difference(
        decoded_frames(with_text)[0].crop(top_band), decoded_frames(without_text)[0].crop(top_band)
    )
    assert difference.getbbox() is not None
    assert max(ImageStat.Stat(difference).extrema[channel][1] for channel in range(3)) > 100


def test_very_long_lines_wrap_instead_of_failing(output_dir):
    path = output_dir / "clip.mp4"
    long_prompt = "word " * 400 + "x" * 300

    render_video(path, width=320, height=180, duration=0.5, lines=[long_prompt, "model: veo", "seed: 1"])

    assert probe(path)["width"] == 320


def test_seed_decides_the_background_colour(output_dir):
    paths = {name: output_dir / f"{name}.mp4" for name in ("a", "b", "c")}
    for name, seed in (("a", 1), ("b", 1), ("c", 2)):
        render_video(paths[name], width=160, height=90, duration=0.5, seed=seed)

    colours = {name: mean_rgb(decoded_frames(path)[0]) for name, path in paths.items()}
    assert colours["a"] == colours["b"]
    assert max(abs(a - c) for a, c in zip(colours["a"], colours["c"])) > 5


def test_render_prints_nothing(output_dir, capfd):
    render_video(output_dir / "clip.mp4", width=320, height=180, duration=1, audio=True, lines=["quiet"])

    captured = capfd.readouterr()
    assert (captured.out, captured.err) == ("", "")


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"width": 0, "height": 720, "duration": 1}, "width"),
        ({"width": 1280, "height": -2, "duration": 1}, "height"),
        ({"width": 641, "height": 360, "duration": 1}, "even"),
        ({"width": 640, "height": 360, "duration": 0}, "duration"),
        ({"width": 640, "height": 360, "duration": float("nan")}, "duration"),
        ({"width": 640, "height": 360, "duration": 1, "fps": 0}, "fps"),
        ({"width": 640, "height": 360, "duration": 0.01}, "no frames"),
        ({"width": 640, "height": 360, "duration": 1, "first_frame": b"not an image"}, "first_frame"),
        ({"width": 640, "height": 360, "duration": 1, "last_frame": TRUNCATED_PNG}, "last_frame"),
        (
            {"width": 640, "height": 360, "duration": 1 / 24, "first_frame": RED_PNG, "last_frame": BLUE_PNG},
            "two frames",
        ),
    ],
)
def test_bad_arguments_raise_value_error_and_leave_no_file(output_dir, arguments, message):
    path = output_dir / "clip.mp4"

    with pytest.raises(ValueError, match=message):
        render_video(path, **arguments)

    assert_directory_empty(output_dir)


def test_failure_during_encoding_removes_the_temp_file_and_keeps_the_old_video(output_dir, monkeypatch):
    path = output_dir / "clip.mp4"
    path.write_bytes(b"previous video")
    real_to_video_frame = video._to_video_frame

    def fail_on_fifth_frame(picture, index):
        if index == 5:
            raise RuntimeError("encoder exploded")
        return real_to_video_frame(picture, index)

    monkeypatch.setattr(video, "_to_video_frame", fail_on_fifth_frame)

    with pytest.raises(RuntimeError, match="encoder exploded"):
        render_video(path, width=320, height=180, duration=1, audio=True)

    assert [entry.name for entry in output_dir.iterdir()] == ["clip.mp4"]
    assert path.read_bytes() == b"previous video"


def test_successful_render_replaces_an_existing_file_and_leaves_no_temp_file(output_dir):
    path = output_dir / "clip.mp4"
    path.write_bytes(b"previous video")

    render_video(str(path), width=320, height=180, duration=1)

    assert [entry.name for entry in output_dir.iterdir()] == ["clip.mp4"]
    assert probe(path)["video_codec"] == "h264"
