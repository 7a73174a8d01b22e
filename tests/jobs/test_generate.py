"""`manage.py generate`: every model in the catalog, in every image mode it takes, end to end."""

import io
import json

import av
import pytest
from django.core.management import call_command
from PIL import ImageStat

from studio.jobs.models import Job, JobState
from studio.providers.registry import all_specs
from tests.helpers import png_bytes

RED, BLUE, GREEN, AMBER = (220, 20, 20), (20, 40, 220), (20, 180, 60), (230, 160, 20)


def image_modes(spec):
    slots, modes = spec.images, []
    if slots.min_references == 0:
        modes.append("text")
    if slots.first_frame:
        modes.append("first")
    if slots.last_frame:
        modes.append("first_last")
    if slots.max_references:
        modes.append("references")
    return modes


def quick_settings(spec, mode):
    """The cheapest valid request for the model: shortest duration its rules allow."""
    sets = {}
    duration = spec.param("duration")
    if duration is not None:
        shortest = min(duration.choices) if duration.choices else max(duration.minimum, 2)
        sets["duration"] = 8 if mode == "references" and spec.provider == "qingbo" else shortest
    return sets


CASES = [(spec.provider, spec.model_id, mode) for spec in all_specs() for mode in image_modes(spec)]


def run_generate(*args):
    out = io.StringIO()
    with pytest.raises(SystemExit) as exit_info:
        call_command("generate", *args, stdout=out)
    return exit_info.value.code, out.getvalue()


def mean_colour(path, last=False):
    with av.open(str(path)) as container:
        frames = list(container.decode(video=0)) if last else [next(container.decode(video=0))]
    return tuple(int(value) for value in ImageStat.Stat(frames[-1].to_image().convert("RGB")).mean)


def close_to(colour, target, tolerance=40):
    return all(abs(a - b) <= tolerance for a, b in zip(colour, target))


@pytest.mark.parametrize("provider,model,mode", CASES, ids=[f"{p}-{m}-{mode}" for p, m, mode in CASES])
def test_generate_wait_json_succeeds(provider, model, mode, sandbox_accounts, demo_project, tmp_path):
    spec = next(s for s in all_specs() if s.provider == provider and s.model_id == model)
    args = ["--account", f"sandbox-{provider}", "--model", model, "--prompt", f"A paper boat on a pond ({mode})",
            "--wait", "--json", "--timeout", "60"]
    for key, value in quick_settings(spec, mode).items():
        args += ["--set", f"{key}={value}"]
    if mode in ("first", "first_last"):
        (tmp_path / "first.png").write_bytes(png_bytes(RED, (320, 180)))
        args += ["--first-frame", str(tmp_path / "first.png")]
    if mode == "first_last":
        (tmp_path / "last.png").write_bytes(png_bytes(BLUE, (320, 180)))
        args += ["--last-frame", str(tmp_path / "last.png")]
    if mode == "references":
        for n, colour in enumerate([GREEN, AMBER]):
            (tmp_path / f"ref{n}.png").write_bytes(png_bytes(colour, (256, 256)))
            args += ["--reference", str(tmp_path / f"ref{n}.png")]

    code, output = run_generate(*args)
    report = json.loads(output)

    assert code == 0, report
    assert report["state"] == "succeeded"
    assert report["provider"] == provider and report["model"] == model
    assert report["provider_task_id"]
    assert float(report["cost_estimate"]) > 0
    assert report["results"], "no video stored"
    video = report["results"][0]
    assert video["bytes"] > 1000 and len(video["sha256"]) == 64
    assert video["duration"] > 0 and video["width"] > 0 and video["fps"] == 24
    if mode in ("first", "first_last"):
        assert close_to(mean_colour(video["path"]), RED), "the video does not start from the first frame"
    if mode == "first_last":
        assert close_to(mean_colour(video["path"], last=True), BLUE), "the video does not end on the last frame"
    job = Job.objects.get(pk=report["id"])
    assert job.state == JobState.SUCCEEDED
    assert job.results.count() == len(report["results"])
