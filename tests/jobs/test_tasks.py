"""django-q2's side of the engine: the CPU work on a stored video (probe, poster, strip, mismatches), safe to
run twice, and the periodic sweeps, registered as schedules when a cluster starts."""

import hashlib
import os
import time

import pytest
from django.utils import timezone
from django_q.models import Schedule

from studio.jobs import tasks
from studio.jobs.models import Job, JobEvent, JobState, Result
from studio.projects.models import Project, Prompt, PromptVersion
from studio.providers.models import ProviderAccount
from studio.sandbox.video import render_video
from tests.backends import queued_tasks

pytestmark = pytest.mark.django_db


@pytest.fixture
def stored(media_root):
    """A succeeded job whose video is on disk and in the database, not yet probed (as the poller leaves it)."""
    project = Project.objects.create(name="Harbour", slug="harbour")
    account = ProviderAccount.objects.create(provider="qingbo", name="q", base_url="http://127.0.0.1:9/qingbo")
    version = PromptVersion.objects.create(prompt=Prompt.objects.create(project=project, title="t"), number=1,
                                           text="Gulls over a pier")
    job = Job.objects.create(project=project, prompt_version=version, account=account, provider="qingbo",
                             model="veo-3.0", params={"prompt": "Gulls over a pier", "duration": 4,
                                                      "resolution": "1080p"}, state=JobState.SUCCEEDED)
    relative = f"projects/{project.pk}/videos/clip.mp4"
    path = media_root / relative
    path.parent.mkdir(parents=True)
    render_video(path, width=320, height=180, duration=1.0, fps=24, audio=False, lines=["task test"])
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return Result.objects.create(job=job, file=relative, sha256=digest, bytes=path.stat().st_size)


def test_processing_a_stored_video_probes_it_and_makes_its_poster_and_strip(stored, media_root):
    tasks.process_result(stored.pk)
    stored.refresh_from_db()
    assert stored.processed_at is not None and stored.processing_error == ""
    assert (stored.width, stored.height, stored.fps, stored.has_audio) == (320, 180, 24.0, False)
    assert (media_root / stored.poster.name).stat().st_size > 0
    assert (media_root / stored.thumbnail_strip.name).stat().st_size > 0
    assert stored.thumbnail_count == 10
    assert any("1080p" in mismatch for mismatch in stored.mismatches)
    assert JobEvent.objects.filter(job=stored.job, message__startswith="Video 1 checked").count() == 1


def test_processing_twice_changes_nothing_and_leaves_no_extra_files(stored, media_root):
    tasks.process_result(stored.pk)
    first = Result.objects.get(pk=stored.pk)
    files = sorted(p.name for p in media_root.rglob("*") if p.is_file())
    Result.objects.filter(pk=stored.pk).update(processed_at=None)  # as if the first run's write were lost
    tasks.process_result(stored.pk)
    tasks.process_result(stored.pk)
    again = Result.objects.get(pk=stored.pk)
    assert (again.poster.name, again.thumbnail_strip.name) == (first.poster.name, first.thumbnail_strip.name)
    assert sorted(p.name for p in media_root.rglob("*") if p.is_file()) == files
    assert not [p for p in media_root.rglob(".partial-*")]


def test_a_stored_file_that_is_not_a_video_is_marked_unreadable_and_kept(stored, media_root):
    (media_root / stored.file.name).write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"garbage" * 100)
    tasks.process_result(stored.pk)
    stored.refresh_from_db()
    assert stored.processed_at is not None
    assert "not a readable video" in stored.processing_error
    assert str(media_root) not in stored.processing_error
    assert (media_root / stored.file.name).exists(), "nothing already stored is lost"


def test_the_sweep_queues_videos_whose_processing_task_was_lost(stored):
    assert tasks.process_pending_results() == 0, "a video stored a moment ago still has its own task coming"
    Result.objects.filter(pk=stored.pk).update(created_at=timezone.now() - timezone.timedelta(minutes=5))
    assert tasks.process_pending_results() == 1
    assert queued_tasks() == [
        ("studio.jobs.tasks.process_result", (stored.pk,))]


def test_the_sweep_removes_partial_downloads_left_by_a_crash_and_keeps_live_ones(media_root):
    videos = media_root / "projects/7/videos"
    videos.mkdir(parents=True)
    stale, live = videos / ".partial-old.mp4", videos / ".partial-new.mp4"
    stale.write_bytes(b"x")
    live.write_bytes(b"x")
    two_hours_ago = time.time() - 7200
    os.utime(stale, (two_hours_ago, two_hours_ago))
    assert tasks.sweep_partial_downloads() == 1
    assert not stale.exists() and live.exists()


def test_the_periodic_work_is_registered_once_as_django_q_schedules():
    tasks.ensure_schedules()
    tasks.ensure_schedules()
    schedules = {s.func: s.minutes for s in Schedule.objects.all()}
    assert schedules == tasks.SCHEDULES
    assert all(s.repeats == -1 and s.schedule_type == Schedule.MINUTES for s in Schedule.objects.all())
