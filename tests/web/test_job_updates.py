"""The project page's one live request: every card of the grid names itself and the version of what it shows,
and the answer carries only the cards whose job changed, the time of the others, jobs made elsewhere and the
updater again, with the delay the server chose (none when nothing is left to follow)."""

import itertools
import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from studio.jobs.models import Job, JobState, Result
from studio.jobs.selectors import NEW_CARD_GRACE, prepare_cards
from studio.jobs.views import MAX_PAGE_CARDS
from studio.projects.models import Membership, Project, Prompt, PromptVersion, Role
from tests.web.support import as_user

pytestmark = pytest.mark.django_db

PROMPT = "A heron lifts off a misty canal at first light"
SETTLED = timezone.now() - 2 * NEW_CARD_GRACE  # made long enough ago to join an open page


@pytest.fixture
def make_job(team, account):
    project, users = team
    version = PromptVersion.objects.create(prompt=Prompt.objects.create(project=project, title="Heron"), number=1,
                                           text=PROMPT)

    order = itertools.count()

    def make(state=JobState.RUNNING, *, project=project, created_at=None, **fields):
        job = Job.objects.create(
            project=project, prompt_version=version, account=account, provider=account.provider, model="veo-3.0",
            params={"prompt": PROMPT, "duration": 4}, cost_estimate=Decimal("0.4000"), state=state,
            created_by=users["editor"], **fields)
        # Made in the order of their ids, as in life: the page's `after` (its newest id) depends on it.
        created_at = created_at or SETTLED + timedelta(milliseconds=next(order))
        Job.objects.filter(pk=job.pk).update(created_at=created_at)
        return job

    return make


def page(client, project):
    return client.get(reverse("project_detail", args=[project.slug])).content.decode()


def shown_fields(html):
    """The fields the page's updater form sends: every card's v, and after (what htmx puts in the query)."""
    fields = [("v", value) for value in re.findall(r'name="v" value="([^"]*)" form="job-updater"', html)]
    return fields + [("after", re.search(r'name="after" value="([^"]*)"', html)[1])]


def grid_fields(jobs):
    """The fields of a page whose grid grew to hold all these cards (it is drawn with 24; new ones join it)."""
    cards = prepare_cards(list(Job.objects.filter(pk__in=[job.pk for job in jobs]).prefetch_related("results")))
    return [("v", f"{job.pk}.{job.version}") for job in cards] + [("after", str(cards.newest_id))]


def ask(client, project, fields):
    response = client.get(reverse("job_updates", args=[project.slug]), fields, headers={"HX-Request": "true"})
    assert response.status_code == 200
    return response.content.decode()


def updater_trigger(html):
    return re.search(r'<form id="job-updater"[^>]*hx-trigger="([^"]*)"', html)[1]


def cards_in(html):
    return re.findall(r'<article id="job-(\d+)"', html)


# The page ---------------------------------------------------------------------------------------------------


def test_cards_in_the_grid_have_no_timer_and_the_page_asks_once_at_the_pace_of_the_quickest(client, team, make_job):
    project, users = team
    running, queued = make_job(JobState.RUNNING, progress=10), make_job(JobState.QUEUED)
    done = make_job(JobState.FAILED, error_message="Content policy violation.")
    html = page(as_user(client, users, "viewer"), project)
    assert sorted(cards_in(html)) == sorted(str(job.pk) for job in (running, queued, done))
    assert "hx-trigger=\"load" not in html.split('<form id="job-updater"')[0], "no card asks for itself"
    assert updater_trigger(html) == "load delay:1s"
    fields = dict(shown_fields(html))
    assert fields["after"] == str(done.pk)
    values = [value for name, value in shown_fields(html) if name == "v"]
    assert str(done.pk) in values, "a finished card names its job alone"
    assert any(value.startswith(f"{running.pk}.") for value in values)
    assert any(value.startswith(f"{queued.pk}.") for value in values)


def test_a_page_with_nothing_live_has_no_timer(client, team, make_job):
    project, users = team
    make_job(JobState.SUCCEEDED)
    make_job(JobState.SUBMIT_UNKNOWN)
    html = page(as_user(client, users, "viewer"), project)
    assert updater_trigger(html) == "htmx:load from:#job-grid", "it asks only when a card is put into the grid"


def test_an_empty_project_page_still_has_its_updater(client, team):
    _, users = team
    empty = Project.objects.create(name="Empty")
    Membership.objects.create(project=empty, user=users["owner"], role=Role.OWNER)
    html = page(as_user(client, users, "owner"), empty)
    assert updater_trigger(html) == "htmx:load from:#job-grid"
    assert 'name="after" value="0"' in html


# The answer -------------------------------------------------------------------------------------------------


def test_nothing_changed_sends_no_card_only_the_time_and_the_updater(client, team, make_job):
    project, users = team
    jobs = [make_job(JobState.RUNNING, progress=30) for _ in range(3)]
    client = as_user(client, users, "viewer")
    html = ask(client, project, shown_fields(page(client, project)))
    assert cards_in(html) == []
    assert updater_trigger(html) == "load delay:2s"
    for job in jobs:
        assert re.search(rf'<span id="job-{job.pk}-time" class="job-time"[^>]*hx-swap-oob="true">[^<]+ so far', html)
    assert "<html" not in html


def test_a_changed_job_sends_only_its_card_out_of_band(client, team, make_job):
    project, users = team
    moving, still = make_job(JobState.RUNNING, progress=30), make_job(JobState.RUNNING, progress=30)
    client = as_user(client, users, "viewer")
    fields = shown_fields(page(client, project))
    Job.objects.filter(pk=moving.pk).update(progress=55)
    html = ask(client, project, fields)
    assert cards_in(html) == [str(moving.pk)]
    card = html[html.index(f'<article id="job-{moving.pk}"'):]
    assert 'hx-swap-oob="true"' in card.split(">", 1)[0]
    assert "Generating the video · 55%" in card
    assert "hx-trigger" not in card, "a card swapped into the grid does not ask for itself either"
    assert f'id="job-{still.pk}-time"' in html and f'<article id="job-{still.pk}"' not in html
    # The card it sent names its new version: asked again with it, nothing is sent.
    new_version = re.search(rf'name="v" value="({moving.pk}\.[0-9a-f]+)"', html)[1]
    fields = [(name, new_version if value.startswith(f"{moving.pk}.") else value) for name, value in fields]
    assert cards_in(ask(client, project, fields)) == []


@pytest.mark.parametrize("change", [
    {"state": JobState.DOWNLOADING}, {"provider_status": "rendering"}, {"error_message": "Slow upstream."},
])
def test_what_a_card_shows_changes_its_version(client, team, make_job, change):
    project, users = team
    job = make_job(JobState.RUNNING)
    client = as_user(client, users, "viewer")
    fields = shown_fields(page(client, project))
    Job.objects.filter(pk=job.pk).update(**change)
    assert cards_in(ask(client, project, fields)) == [str(job.pk)]


def test_a_finished_job_leaves_the_updater_and_then_nothing_is_followed(client, team, make_job):
    project, users = team
    quick, slow = make_job(JobState.DOWNLOADING), make_job(JobState.RUNNING, progress=80)
    client = as_user(client, users, "viewer")
    fields = shown_fields(page(client, project))
    assert updater_trigger(page(client, project)) == "load delay:1s"

    Job.objects.filter(pk=quick.pk).update(state=JobState.FAILED, error_message="The link had expired.")
    html = ask(client, project, fields)
    assert cards_in(html) == [str(quick.pk)]
    assert f'name="v" value="{quick.pk}" form="job-updater"' in html, "its card now names its job alone"
    assert updater_trigger(html) == "load delay:2s", "the pace of the one still live"

    fields = [(name, str(quick.pk) if value.startswith(f"{quick.pk}.") else value) for name, value in fields]
    Job.objects.filter(pk=slow.pk).update(state=JobState.CANCELLED, finished_at=timezone.now())
    html = ask(client, project, fields)
    assert cards_in(html) == [str(slow.pk)]
    assert updater_trigger(html) == "htmx:load from:#job-grid", "nothing left to follow: no timer"
    assert "load delay" not in html


def test_a_stored_video_is_followed_until_its_poster_is_made(client, team, make_job):
    project, users = team
    job = make_job(JobState.SUCCEEDED, finished_at=timezone.now())
    result = Result.objects.create(job=job, file=f"projects/{project.pk}/videos/heron.mp4", sha256="0" * 64,
                                   bytes=1000)
    client = as_user(client, users, "viewer")
    fields = shown_fields(page(client, project))
    assert updater_trigger(page(client, project)) == "load delay:1s"
    html = ask(client, project, fields)
    assert cards_in(html) == [] and f"job-{job.pk}-time" not in html, "a finished card's time does not change"
    Result.objects.filter(pk=result.pk).update(processed_at=timezone.now(), poster=f"projects/{project.pk}/p.jpg",
                                               width=1280, height=720, duration=4.0, fps=24.0)
    html = ask(client, project, fields)
    assert cards_in(html) == [str(job.pk)]
    assert f'poster="/media/projects/{project.pk}/p.jpg"' in html
    assert updater_trigger(html) == "htmx:load from:#job-grid"


# Jobs made elsewhere ----------------------------------------------------------------------------------------


def test_a_job_made_elsewhere_joins_the_top_of_the_grid(client, team, make_job):
    project, users = team
    make_job(JobState.SUCCEEDED)
    client = as_user(client, users, "viewer")
    fields = shown_fields(page(client, project))
    older_new, newer_new = make_job(JobState.RUNNING, progress=5), make_job(JobState.QUEUED)
    html = ask(client, project, fields)
    inserted = html[html.index('<div hx-swap-oob="afterbegin:#job-grid">'):]
    assert cards_in(inserted) == [str(newer_new.pk), str(older_new.pk)], "newest first, as the page shows them"
    assert "hx-swap-oob" not in inserted.split(">", 1)[1], "the cards themselves are plain"
    assert updater_trigger(html) == "load delay:1s", "and followed from now on"


def test_a_card_already_in_the_grid_or_too_young_is_not_added_again(client, team, make_job):
    project, users = team
    client = as_user(client, users, "viewer")
    fields = shown_fields(page(client, project))
    composed = make_job(JobState.QUEUED)  # put in the grid by the page's own composer: the page names it
    in_flight = make_job(JobState.QUEUED, created_at=timezone.now())  # the composer's answer is on its way
    html = ask(client, project, fields + [("v", str(composed.pk))])
    assert "afterbegin" not in html and cards_in(html) == []
    assert str(in_flight.pk) not in html


@pytest.mark.parametrize("after", [None, "", "x", "-3", "²", "9" * 40])
def test_without_a_readable_after_no_card_is_added(client, team, make_job, after):
    project, users = team
    make_job(JobState.RUNNING)
    fields = [("after", after)] if after is not None else []
    assert cards_in(ask(as_user(client, users, "viewer"), project, fields)) == []


def test_past_the_cap_of_cards_read_no_card_is_added(client, team, make_job):
    project, users = team
    job = make_job(JobState.RUNNING)
    fields = [("after", "0")] + [("v", str(n)) for n in range(10**6, 10**6 + MAX_PAGE_CARDS + 1)]
    html = ask(as_user(client, users, "viewer"), project, fields)
    assert cards_in(html) == []
    assert cards_in(ask(client, project, [("after", "0")])) == [str(job.pk)]


# Who asks, and what they may ask about ----------------------------------------------------------------------


@pytest.mark.parametrize("who,expected", [("anonymous", 302), ("outsider", 404), ("viewer", 200),
                                          ("editor", 200), ("owner", 200)])
def test_only_members_get_updates(client, team, make_job, who, expected):
    project, users = team
    job = make_job(JobState.RUNNING)
    response = as_user(client, users, who).get(reverse("job_updates", args=[project.slug]),
                                               {"v": f"{job.pk}.00000000", "after": "0"})
    assert response.status_code == expected
    if expected == 200:
        html = response.content.decode()
        assert cards_in(html) == [str(job.pk)]
        assert ("Run again" in html) is (who != "viewer"), "a viewer's cards are read-only, as on the page"
    else:
        assert PROMPT not in response.content.decode()


def test_a_job_of_another_project_is_never_sent(client, team, make_job):
    project, users = team
    elsewhere = Project.objects.create(name="Elsewhere")
    Membership.objects.create(project=elsewhere, user=users["viewer"], role=Role.VIEWER)
    theirs = make_job(JobState.RUNNING, project=elsewhere)
    client = as_user(client, users, "viewer")
    html = ask(client, project, [("v", f"{theirs.pk}.00000000"), ("after", "0")])
    assert cards_in(html) == [] and PROMPT not in html
    assert updater_trigger(html) == "htmx:load from:#job-grid"


@pytest.mark.parametrize("value", ["", ".", "abc", "0.1a2b3c4d", "-1.x", "²", "7" * 30, "1.2.3", "%00", "12 .ab"])
def test_a_value_that_is_not_a_card_is_left_out(client, team, make_job, value):
    project, users = team
    job = make_job(JobState.RUNNING)
    html = ask(as_user(client, users, "viewer"), project, [("v", value), ("v", f"{job.pk}.zz"), ("after", "x")])
    assert cards_in(html) == [str(job.pk)], "an unreadable version is no version: the card is sent again"


def test_updates_are_only_read(client, team, make_job):
    project, users = team
    client = as_user(client, users, "editor")
    assert client.post(reverse("job_updates", args=[project.slug])).status_code == 405


def test_an_update_costs_the_same_queries_for_one_card_or_forty(client, team, make_job):
    project, users = team
    client = as_user(client, users, "editor")

    def queries(count):
        Job.objects.all().delete()
        jobs = [make_job(JobState.RUNNING, progress=10) for _ in range(count)]
        fields = grid_fields(jobs)
        Job.objects.filter(pk__in=[job.pk for job in jobs]).update(progress=20)  # every card changed
        for job in jobs:
            Result.objects.create(job=job, file=f"projects/{project.pk}/videos/{job.pk}.mp4", sha256="0" * 64,
                                  bytes=1)
        make_job(JobState.QUEUED)  # and one made elsewhere
        with CaptureQueriesContext(connection) as captured:
            html = ask(client, project, fields)
        assert len(cards_in(html)) == count + 1
        return len(captured)

    assert queries(1) == queries(40)


def test_forty_cards_are_updated_in_at_most_ten_queries(client, team, make_job, django_assert_max_num_queries):
    project, users = team
    client = as_user(client, users, "editor")
    jobs = [make_job(JobState.RUNNING, progress=10) for _ in range(40)]
    fields = grid_fields(jobs)
    Job.objects.filter(pk__in=[job.pk for job in jobs[::2]]).update(progress=20)
    with django_assert_max_num_queries(10):
        html = ask(client, project, fields)
    assert len(cards_in(html)) == 20


# A single card put back into the grid ----------------------------------------------------------------------


def test_a_card_asked_for_from_the_project_page_joins_the_grid(client, team, make_job):
    project, users = team
    job = make_job(JobState.QUEUED)
    client = as_user(client, users, "viewer")
    url = reverse("job_card", args=[project.slug, job.pk])
    on_project = {"HX-Request": "true", "HX-Current-URL": f"http://testserver/p/{project.slug}/?from_job=3"}
    on_job_page = {"HX-Request": "true", "HX-Current-URL": f"http://testserver/p/{project.slug}/jobs/{job.pk}/"}
    in_grid = client.get(url, headers=on_project).content.decode()
    assert "hx-trigger" not in in_grid and f'name="v" value="{job.pk}.' in in_grid
    alone = client.get(url, headers=on_job_page).content.decode()
    assert 'hx-trigger="load delay:1s"' in alone and 'name="v"' not in alone
