"""Reviewing through the web: the gallery's filters and cost, a result's provenance, ratings, comments,
comparisons, and who may do what."""

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from studio.jobs import services
from studio.jobs.models import Batch, JobState, Result, ReviewState
from studio.jobs.poller import drive_job
from studio.projects.models import Membership, Project, Role
from studio.review.models import Comment, Comparison, Rating
from studio.review.services import comparison_create
from tests.web.support import BOAT, as_user, batch_url, comparison_url, gallery_url, result_url

pytestmark = pytest.mark.django_db

LIGHTHOUSE = "A lighthouse at dusk, waves rolling in"
FOX = "A red fox asleep in fresh snow"
TIMECODE_RULE = ("Write a time code as seconds (3.5) or minutes and seconds (0:03.50), or leave it empty "
                 "for a note.")
EDITORS_ONLY = "Only editors and owners of this project can do that."


def rate(result, user, stars=None, picked=False):
    return Rating.objects.create(result=result, user=user, stars=stars, picked=picked)


def ids_in(html):
    """The videos a gallery page lists, in the order shown (each card has a compare checkbox)."""
    return [int(pk) for pk in re.findall(r'name="result" value="(\d+)"', html)]


def compared_ids(html):
    return [int(pk) for pk in re.findall(r'<figure class="compare-cell" data-result="(\d+)"', html)]


def page_text(client, url):
    response = client.get(url)
    assert response.status_code == 200
    return response.content.decode()


# The gallery's filters and sorts --------------------------------------------------------------------------


@pytest.fixture
def library(team, make_result):
    """Five videos, oldest first, each with a different mix of what the filters look at."""
    project, users = team
    start = timezone.now() - timedelta(days=1)
    boats = Batch.objects.create(project=project, prompt_version=make_result.version_of(project, BOAT),
                                 name="Boats")
    lights = Batch.objects.create(project=project, prompt_version=make_result.version_of(project, LIGHTHOUSE),
                                  name="Lights")
    videos = {
        "boat_a": make_result(prompt=BOAT, model="veo-3.0", batch=boats, state=ReviewState.APPROVED,
                              created=start + timedelta(minutes=1)),
        "boat_b": make_result(prompt=BOAT, model="veo-3.1", batch=boats, state=ReviewState.CHANGES_WANTED,
                              created=start + timedelta(minutes=2)),
        "light_a": make_result(prompt=LIGHTHOUSE, model="veo-3.1-fast-generate-preview", provider="apimp",
                               batch=lights, created=start + timedelta(minutes=3)),
        "light_b": make_result(prompt=LIGHTHOUSE, model="veo-3.1-fast-generate-preview", provider="apimp",
                               created=start + timedelta(minutes=4)),
        "fox": make_result(prompt=FOX, model="veo-3.0", state=ReviewState.APPROVED,
                           created=start + timedelta(minutes=5)),
    }
    rate(videos["boat_a"], users["viewer"], stars=5)
    rate(videos["boat_a"], users["editor"], stars=4, picked=True)  # average 4.5, picked by the editor
    rate(videos["boat_b"], users["viewer"], stars=2)
    rate(videos["light_a"], users["viewer"], picked=True)  # a pick without stars is not a rating
    rate(videos["light_b"], users["owner"], stars=5)
    return project, users, videos, {"boats": boats, "lights": lights}


def listed(client, library, query, who="viewer"):
    project, users, videos, _ = library
    names = {video.pk: name for name, video in videos.items()}
    html = page_text(as_user(client, users, who), gallery_url(project, query))
    return [names[pk] for pk in ids_in(html)]


NEWEST_FIRST = ["fox", "light_b", "light_a", "boat_b", "boat_a"]


@pytest.mark.parametrize("query,expected", [
    ("", NEWEST_FIRST),
    ("model=veo-3.0", ["fox", "boat_a"]),
    ("model=veo-3.1-fast-generate-preview", ["light_b", "light_a"]),
    ("provider=apimp", ["light_b", "light_a"]),
    ("provider=qingbo", ["fox", "boat_b", "boat_a"]),
    ("q=lighthouse", ["light_b", "light_a"]),
    ("q=PAPER+BOAT", ["boat_b", "boat_a"]),
    ("q=nothing+like+this", []),
    ("state=approved", ["fox", "boat_a"]),
    ("state=changes_wanted", ["boat_b"]),
    ("state=to_review", ["light_b", "light_a"]),
    ("rating=5", ["light_b"]),
    ("rating=4", ["light_b", "boat_a"]),
    ("rating=3", ["light_b", "boat_a"]),
    ("rating=2", ["light_b", "boat_b", "boat_a"]),
    ("rating=1", ["light_b", "boat_b", "boat_a"]),
    ("rating=none", ["fox", "light_a"]),
    ("picked=any", ["light_a", "boat_a"]),
    ("picked=none", ["fox", "light_b", "boat_b"]),
    ("picked=mine", ["light_a"]),
    ("model=veo-3.0&state=approved&rating=4", ["boat_a"]),
])
def test_each_gallery_filter_narrows_to_exactly_the_matching_videos(client, library, query, expected):
    assert listed(client, library, query) == expected


def test_the_batch_filter_lists_only_that_batchs_videos(client, library):
    batches = library[3]
    assert listed(client, library, f"batch={batches['boats'].pk}") == ["boat_b", "boat_a"]
    assert listed(client, library, f"batch={batches['lights'].pk}") == ["light_a"]


@pytest.mark.parametrize("who,expected", [("viewer", ["light_a"]), ("editor", ["boat_a"]), ("owner", [])])
def test_picked_by_me_means_the_signed_in_person(client, library, who, expected):
    assert listed(client, library, "picked=mine", who=who) == expected


@pytest.mark.parametrize("sort,expected", [
    ("newest", NEWEST_FIRST),
    ("oldest", list(reversed(NEWEST_FIRST))),
    # By average stars; unrated last, a picked one before one nobody picked.
    ("rating", ["light_b", "boat_a", "boat_b", "light_a", "fox"]),
])
def test_the_gallery_sorts_as_asked(client, library, sort, expected):
    assert listed(client, library, f"sort={sort}") == expected


def test_the_count_says_how_many_videos_match(client, library):
    project, users, _, _ = library
    html = page_text(as_user(client, users, "viewer"), gallery_url(project, "provider=apimp&state=to_review"))
    assert "<strong>2</strong> videos match these 2 filters" in html
    assert "Clear filters" in html
    html = page_text(client, gallery_url(project, "rating=5"))
    assert "<strong>1</strong> video matches this filter" in html


def test_a_filter_that_matches_nothing_says_so(client, library):
    project, users, _, _ = library
    html = page_text(as_user(client, users, "viewer"), gallery_url(project, "q=submarine"))
    assert "No video matches" in html


@pytest.mark.parametrize("query", [
    "rating=9", "rating=abc", "picked=everyone", "sort=sideways", "state=lost", "model=sora-2",
    "provider=nowhere", "batch=999999", "page=abc", "page=0", "page=-3", "page=999",
    "q=" + "x" * 500, "rating=&picked=&sort=", "state[]=approved",
])
def test_malformed_gallery_values_are_ignored_not_errors(client, library, query):
    assert listed(client, library, query) == NEWEST_FIRST


@pytest.mark.parametrize("query", ["batch=abc", "batch=-1", "batch=1.5"])
def test_a_batch_value_that_is_not_a_number_is_ignored_not_an_error(client, library, query):
    assert listed(client, library, query) == NEWEST_FIRST


def test_an_ignored_batch_value_offers_no_batch_comparison(client, library):
    project, users, _, _ = library
    html = page_text(as_user(client, users, "viewer"), gallery_url(project, "batch=999999"))
    assert len(ids_in(html)) == 5
    assert "Compare this batch" not in html


def test_a_malformed_value_leaves_the_valid_filters_working(client, library):
    assert listed(client, library, "model=veo-3.0&rating=abc&sort=nonsense") == ["fox", "boat_a"]


def test_a_batch_of_another_project_is_not_a_filter_here(client, library, make_result):
    project, users, _, _ = library
    elsewhere = Project.objects.create(name="Elsewhere")
    Membership.objects.create(project=elsewhere, user=users["viewer"], role=Role.OWNER)
    foreign_batch = Batch.objects.create(project=elsewhere, name="Theirs",
                                         prompt_version=make_result.version_of(elsewhere, FOX))
    foreign = make_result(project=elsewhere, batch=foreign_batch)
    html = page_text(as_user(client, users, "viewer"), gallery_url(project, f"batch={foreign_batch.pk}"))
    assert foreign.pk not in ids_in(html)
    assert len(ids_in(html)) == 5


def test_the_gallery_shows_24_a_page_and_page_2_holds_the_rest(client, team, make_result):
    project, users = team
    start = timezone.now() - timedelta(days=1)
    videos = [make_result(model="veo-3.0", created=start + timedelta(minutes=n)) for n in range(26)]
    others = [make_result(model="veo-3.1", created=start + timedelta(minutes=30 + n)) for n in range(2)]
    as_user(client, users, "viewer")
    newest_first = [v.pk for v in reversed(videos + others)]

    first = page_text(client, gallery_url(project))
    assert ids_in(first) == newest_first[:24]
    assert "Page 1 of 2" in first
    second = page_text(client, gallery_url(project, "page=2"))
    assert ids_in(second) == newest_first[24:]
    assert "Page 2 of 2" in second

    filtered = page_text(client, gallery_url(project, "model=veo-3.0&page=2"))
    assert ids_in(filtered) == [v.pk for v in reversed(videos)][24:]
    assert "?model=veo-3.0&amp;page=1" in filtered, "the previous-page link keeps the filter"


def test_with_htmx_the_gallery_returns_only_its_results(client, library):
    project, users, videos, _ = library
    url = gallery_url(project, "model=veo-3.0")
    response = as_user(client, users, "viewer").get(url, HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert response.status_code == 200
    assert html.lstrip().startswith('<div id="gallery-results"')
    assert "<html" not in html and 'role="search"' not in html
    assert ids_in(html) == [videos["fox"].pk, videos["boat_a"].pk]


def test_the_gallery_card_shows_the_teams_average_and_picks(client, library):
    project, users, _, _ = library
    html = page_text(as_user(client, users, "viewer"), gallery_url(project, "rating=4"))
    assert 'title="4.5 from 2 ratings"' in html
    assert 'title="Picked by 1">♥ 1<' in html


# What the gallery costs ---------------------------------------------------------------------------------


def queries_for(client, url, **headers):
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url, **headers)
    assert response.status_code == 200
    return len(captured), response.content.decode()


def test_the_gallery_runs_the_same_queries_for_500_videos_as_for_a_handful(
    client, team, make_result, django_user_model
):
    project, users = team
    raters = [users["viewer"], users["editor"], users["owner"]]
    for n in range(3):
        extra = django_user_model.objects.create_user(f"rater{n}", f"r{n}@example.com", "pw")
        Membership.objects.create(project=project, user=extra, role=Role.VIEWER)
        raters.append(extra)
    version = make_result.version_of(project, BOAT)
    batch = Batch.objects.create(project=project, name="B", prompt_version=version)
    handful = [make_result(batch=batch), make_result(model="veo-3.1"), make_result(prompt=FOX)]
    rate(handful[0], users["viewer"], stars=4, picked=True)
    Comment.objects.create(result=handful[0], author=users["editor"], body="Too dark", timecode=1.0)
    client.force_login(users["viewer"])
    pages = {
        "page": (gallery_url(project), {}),
        "fragment": (gallery_url(project), {"HTTP_HX_REQUEST": "true"}),
        "filtered": (gallery_url(project, f"rating=3&picked=any&sort=rating&batch={batch.pk}&q=boat"), {}),
    }
    before = {name: queries_for(client, url, **headers)[0] for name, (url, headers) in pages.items()}

    jobs = [make_result(model=model).job for model in ("veo-3.0", "veo-3.1", "veo-3.1-fast")]
    rows = [Result(job=jobs[n % 3], index=1 + n // 3, file=f"projects/{project.pk}/videos/bulk-{n}.mp4",
                   sha256="1" * 64, bytes=1000, duration=4.0, width=1280, height=720, fps=24.0,
                   has_audio=True, poster=f"projects/{project.pk}/posters/bulk-{n}.jpg",
                   thumbnail_strip=f"projects/{project.pk}/posters/bulk-{n}-strip.jpg", thumbnail_count=10)
            for n in range(500 - len(handful) - len(jobs))]
    Result.objects.bulk_create(rows)
    everything = list(Result.objects.filter(job__project=project))
    Rating.objects.bulk_create(
        Rating(result=result, user=user, stars=1 + (n + k) % 5, picked=(n + k) % 7 == 0)
        for n, result in enumerate(everything) for k, user in enumerate(raters)
        if (n + k) % 3 == 0 and result != handful[0]
    )
    Comment.objects.bulk_create(
        Comment(result=result, author=raters[n % len(raters)], body=f"Note {n}", timecode=n % 4 or None)
        for n, result in enumerate(everything) if n % 2 == 0
    )
    assert Result.objects.filter(job__project=project).count() == 500

    after = {}
    for name, (url, headers) in pages.items():
        after[name], html = queries_for(client, url, **headers)
        if name != "filtered":
            assert len(ids_in(html)) == 24
            assert "<strong>500</strong> videos" in html
    print(f"gallery queries with 3 videos: {before}; with 500: {after}")
    assert after == before


def test_the_comparison_list_does_not_grow_with_comparisons_ratings_or_comments(
    client, team, make_result
):
    project, users = team
    owner = users["owner"]
    first = [make_result(), make_result()]
    comparison_create(project=project, user=owner, results=first, title="First")
    client.force_login(users["viewer"])
    url = reverse("comparison_list", args=[project.slug])
    few, _ = queries_for(client, url)

    for n in range(9):
        results = [make_result(model=model) for model in ("veo-3.0", "veo-3.1", "veo-3.1-fast")[: 2 + n % 3]]
        for result in results:
            for who in ("viewer", "editor", "owner"):
                rate(result, users[who], stars=1 + n % 5, picked=n % 2 == 0)
                Comment.objects.create(result=result, author=users[who], body="Hmm", timecode=0.5)
        comparison = comparison_create(project=project, user=users["editor"], results=results,
                                       title=f"Set {n}")
        comparison.winner = results[-1]
        comparison.save()
    many, html = queries_for(client, url)
    print(f"comparison list queries with 1 comparison: {few}; with 10: {many}")
    assert html.count('class="comparison-card"') == 10
    assert many == few


def test_the_result_page_does_not_grow_with_ratings_or_comments(client, team, make_result, django_user_model):
    project, users = team
    result = make_result(duration=30.0)
    client.force_login(users["viewer"])
    empty, _ = queries_for(client, result_url(result))

    for n in range(8):
        person = django_user_model.objects.create_user(f"member{n}", f"m{n}@example.com", "pw")
        Membership.objects.create(project=project, user=person, role=Role.EDITOR)
        rate(result, person, stars=1 + n % 5, picked=n % 3 == 0)
        for k in range(5):
            Comment.objects.create(result=result, author=person, body=f"Point {k}",
                                   timecode=k * 2.5 if k else None)
    busy, html = queries_for(client, result_url(result))
    print(f"result page queries with no ratings or comments: {empty}; with 8 ratings and 40 comments: {busy}")
    assert html.count('class="comment"') == 40
    assert busy == empty


def test_the_comparison_page_runs_the_same_queries_for_2_and_4_videos(client, team, make_result):
    project, users = team
    two = comparison_create(project=project, user=users["owner"], results=[make_result(), make_result()])
    four = comparison_create(project=project, user=users["owner"], results=[make_result() for _ in range(4)])
    for result in [item.result for item in four.items.all()]:
        for who in ("viewer", "editor", "owner"):
            rate(result, users[who], stars=3)
            Comment.objects.create(result=result, author=users[who], body="ok")
    client.force_login(users["editor"])
    with_two, _ = queries_for(client, comparison_url(two))
    with_four, html = queries_for(client, comparison_url(four))
    print(f"comparison page queries with 2 videos: {with_two}; with 4: {with_four}")
    assert len(compared_ids(html)) == 4
    assert with_four == with_two


# How a video was made -------------------------------------------------------------------------------------


def provenance_rows(html):
    """The "Requested and delivered" table: label -> (requested, delivered, flagged)."""
    table = html[html.index('<table class="table provenance">'):]
    table = table[: table.index("</table>")]
    rows = {}
    row = r'<tr( class="mismatch")?>\s*<th scope="row">(.*?)</th>\s*<td>(.*?)</td>\s*<td>(.*?)</td>'
    for flagged, label, requested, delivered in re.findall(row, table, re.DOTALL):
        rows[label] = (requested, delivered, bool(flagged))
    return rows


@pytest.mark.django_db(transaction=True)
def test_a_sandbox_videos_page_shows_how_it_was_made_and_flags_what_differs(
    client, sandbox_accounts, demo_project, tiny_sandbox_videos, django_user_model
):
    viewer = django_user_model.objects.create_user("vera", "vera@example.com", "pw")
    Membership.objects.create(project=demo_project, user=viewer, role=Role.VIEWER)
    account = sandbox_accounts["qingbo"]
    params = {"prompt": "A heron wading through reeds at first light", "negative_prompt": "text, watermark",
              "duration": 4, "aspect_ratio": "16:9", "resolution": "720p", "seed": 4242,
              "person_generation": "allow_adult"}
    job = services.job_create(project=demo_project, user=viewer, account=account, model="veo-3.1",
                              params=params)
    job = drive_job(job, timeout=60)
    assert job.state == JobState.SUCCEEDED
    result = job.results.get()
    client.force_login(viewer)
    html = page_text(client, result_url(result))

    assert "A heron wading through reeds at first light" in html
    assert "Negative prompt:</span> text, watermark" in html
    rows = provenance_rows(html)
    note = '<span class="mismatch-note">{}</span>'
    assert rows["Duration"] == ("4 s", "1.00 s" + note.format("Asked for 4 s; delivered 1.00 s."), True)
    assert rows["Resolution"] == ("720p", "160×90" + note.format("Asked for 720p; delivered 160×90."), True)
    assert rows["Aspect ratio"] == ("16:9", "16:9", False)
    assert rows["Audio"] == ("Yes", "Yes", False), "qingbo's Veo always has sound"
    assert rows["Frame rate"][1] == "24 fps" and not rows["Frame rate"][2]
    assert rows["Seed"][0] == "4242"
    assert rows["People"][0] == "allow_adult"
    assert rows["Codec"][1] == "h264"
    assert '<span class="flag-count">2 differences</span>' in html
    assert "<span>160×90</span><span>1.00 s</span>" in html
    assert "<span>24 fps</span><span>With sound</span>" in html

    assert f'<dd class="mono id">{job.provider_task_id}</dd>' in html and job.provider_task_id
    assert f"<dt>Account</dt><dd>{account.name}</dd>" in html
    assert f"<dt>Cost estimate</dt><dd>{job.cost_estimate:.2f} USD</dd>" in html and job.cost_estimate
    for stage in ("Created", "Accepted by the provider", "Started generating",
                  "Finished generating", "Video stored", "In all"):
        assert f'<th scope="row">{stage}</th>' in html
    assert "The provider’s raw answers (" in html and "keys masked" in html
    assert f"Accepted by the provider as {job.provider_task_id}" in html
    assert "&quot;status&quot;: &quot;completed&quot;" in html, "the provider's own answers are shown"
    assert account.api_key not in html
    assert account.api_key.split("-")[-1] not in html


def test_a_stored_result_that_no_longer_matches_its_request_is_flagged(client, team, make_result):
    """Delivered values are checked against the request when the page is shown, row by row."""
    _, users = team
    result = make_result(duration=4.0, width=1280, height=720)
    html = page_text(as_user(client, users, "viewer"), result_url(result))
    assert not any(flagged for _, _, flagged in provenance_rows(html).values())
    Result.objects.filter(pk=result.pk).update(width=720, height=720, duration=6.0)
    rows = provenance_rows(page_text(client, result_url(result)))
    assert rows["Aspect ratio"][2] and "Asked for 16:9; delivered 720×720." in rows["Aspect ratio"][1]
    assert rows["Duration"][2] and "Asked for 4 s; delivered 6.00 s." in rows["Duration"][1]
    assert not rows["Resolution"][2], "720 is the short side asked for"


def test_a_result_of_another_project_is_404_even_for_its_owner(client, team, make_result):
    _, users = team
    elsewhere = Project.objects.create(name="Elsewhere")
    Membership.objects.create(project=elsewhere, user=users["owner"], role=Role.OWNER)
    result = make_result()
    client.force_login(users["owner"])
    assert client.get(reverse("result_detail", args=[elsewhere.slug, result.pk])).status_code == 404
    response = client.post(reverse("result_rate", args=[elsewhere.slug, result.pk]), {"stars": "5"})
    assert response.status_code == 404
    assert not Rating.objects.exists()


# Stars, picks and the review state ----------------------------------------------------------------------


def rate_url(result):
    return reverse("result_rate", args=[result.job.project.slug, result.pk])


def my_rating(result, user):
    rating = Rating.objects.filter(result=result, user=user).first()
    return (rating.stars, rating.picked) if rating else None


def test_stars_are_set_changed_and_cleared_with_0(client, team, make_result):
    _, users = team
    result = make_result()
    as_user(client, users, "viewer")
    client.post(rate_url(result), {"stars": "4"})
    assert my_rating(result, users["viewer"]) == (4, False)
    assert "4.0 ★ from 1" in page_text(client, result_url(result))
    client.post(rate_url(result), {"stars": "2"})
    assert my_rating(result, users["viewer"]) == (2, False)
    client.post(rate_url(result), {"stars": "0"})
    assert my_rating(result, users["viewer"]) == (None, False)
    assert "No ratings yet" in page_text(client, result_url(result))


@pytest.mark.parametrize("stars", ["6", "-1", "three", "2.5"])
def test_stars_outside_1_to_5_change_nothing(client, team, make_result, stars):
    _, users = team
    result = make_result()
    as_user(client, users, "viewer").post(rate_url(result), {"stars": "3"})
    client.post(rate_url(result), {"stars": stars})
    assert my_rating(result, users["viewer"]) == (3, False)


def test_pick_toggles_and_leaves_the_stars_alone(client, team, make_result):
    _, users = team
    result = make_result()
    as_user(client, users, "viewer").post(rate_url(result), {"stars": "3"})
    client.post(rate_url(result), {"picked": "1"})
    assert my_rating(result, users["viewer"]) == (3, True)
    html = page_text(client, result_url(result))
    assert "♥ Picked" in html and 'name="picked" value="0"' in html
    client.post(rate_url(result), {"picked": "0"})
    assert my_rating(result, users["viewer"]) == (3, False)
    assert "♡ Pick" in page_text(client, result_url(result))


def test_two_peoples_ratings_are_independent_and_averaged(client, team, make_result):
    _, users = team
    result = make_result()
    as_user(client, users, "viewer").post(rate_url(result), {"stars": "5", "picked": "1"})
    as_user(client, users, "editor").post(rate_url(result), {"stars": "2"})
    assert my_rating(result, users["viewer"]) == (5, True)
    assert my_rating(result, users["editor"]) == (2, False)

    html = page_text(client, result_url(result))  # as the editor
    assert "3.5 ★ from 2 · ♥ 1" in html
    assert re.search(r'name="stars" value="0" class="star on"\s+aria-pressed="true"\s+'
                     r'title="Clear your rating">★<span class="sr-only">2 stars', html), \
        "the editor sees their own 2 stars"
    assert '<span class="who-name">viewer</span>' in html and '<span class="who-name">editor</span>' in html

    as_user(client, users, "viewer").post(rate_url(result), {"stars": "0"})
    assert my_rating(result, users["editor"]) == (2, False), "clearing mine leaves theirs"
    assert "2.0 ★ from 1 · ♥ 1" in page_text(client, result_url(result))


def test_rating_with_htmx_returns_the_new_panel(client, team, make_result):
    _, users = team
    result = make_result()
    response = as_user(client, users, "viewer").post(rate_url(result), {"stars": "4"}, HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert response.status_code == 200
    assert html.lstrip().startswith(f'<div class="review-panel" id="review-{result.pk}">')
    assert "4.0 ★ from 1" in html and "<html" not in html


def test_rating_without_htmx_goes_back_where_it_came_from(client, team, make_result):
    project, users = team
    result = make_result()
    back = f"http://testserver{gallery_url(project, 'rating=4')}"
    response = as_user(client, users, "viewer").post(rate_url(result), {"stars": "4"}, HTTP_REFERER=back)
    assert response.status_code == 302 and response["Location"] == back
    response = client.post(rate_url(result), {"stars": "4"}, HTTP_REFERER="https://evil.example/")
    assert response["Location"] == result_url(result)


def state_url(result):
    return reverse("result_review_state", args=[result.job.project.slug, result.pk])


@pytest.mark.parametrize("who", ["editor", "owner"])
def test_an_editor_or_owner_sets_the_review_state(client, team, make_result, who):
    _, users = team
    result = make_result()
    response = as_user(client, users, who).post(state_url(result), {"state": "approved"})
    assert response.status_code == 302
    result.refresh_from_db()
    assert result.review_state == ReviewState.APPROVED
    assert result.review_state_by == users[who]
    assert f"by {who}, " in page_text(client, result_url(result))


def test_a_viewer_cannot_set_the_review_state(client, team, make_result):
    _, users = team
    result = make_result()
    response = as_user(client, users, "viewer").post(state_url(result), {"state": "approved"})
    assert response.status_code == 403
    assert EDITORS_ONLY in response.content.decode()
    result.refresh_from_db()
    assert result.review_state == ReviewState.TO_REVIEW and result.review_state_by is None
    html = page_text(client, result_url(result))
    assert 'name="state"' not in html, "a viewer is not offered the state buttons"
    assert '<span class="review-state review-to_review">To review</span>' in html


def test_an_unknown_review_state_is_refused_with_the_choices(client, team, make_result):
    _, users = team
    result = make_result(state=ReviewState.APPROVED)
    response = as_user(client, users, "editor").post(state_url(result), {"state": "perfect"}, follow=True)
    assert "A review state is one of: To review, Changes wanted, Approved." in response.content.decode()
    result.refresh_from_db()
    assert result.review_state == ReviewState.APPROVED


# Comments ----------------------------------------------------------------------------------------------


def comment_url(result):
    return reverse("result_comment", args=[result.job.project.slug, result.pk])


def delete_url(comment):
    return reverse("comment_delete", args=[comment.result.job.project.slug, comment.result_id, comment.pk])


@pytest.mark.parametrize("typed,seconds,shown", [
    ("3.5", 3.5, "0:03.50"), ("0:03.50", 3.5, "0:03.50"), ("1:02", 62.0, "1:02.00"),
    ("3,25", 3.25, "0:03.25"), (" 12 ", 12.0, "0:12.00"), ("0", 0.0, "0:00.00"),
])
def test_a_comment_keeps_its_time_code_in_each_written_form(client, team, make_result, typed, seconds, shown):
    _, users = team
    result = make_result(duration=90.0)
    as_user(client, users, "viewer")
    response = client.post(comment_url(result), {"body": "Look here", "timecode": typed})
    assert response.status_code == 302 and response["Location"].endswith("#comments")
    comment = Comment.objects.get()
    assert (comment.body, comment.timecode, comment.author) == ("Look here", seconds, users["viewer"])
    html = page_text(client, result_url(result))
    assert f'data-seek="{seconds:.3f}" title="Play from {shown}">{shown}</a>' in html


def test_a_comment_without_a_time_code_is_a_note_listed_after_the_pinned_ones(client, team, make_result):
    _, users = team
    result = make_result(duration=10.0)
    as_user(client, users, "viewer")
    client.post(comment_url(result), {"body": "Overall: lovely", "timecode": ""})
    client.post(comment_url(result), {"body": "The wave breaks oddly", "timecode": "7"})
    client.post(comment_url(result), {"body": "Sky flickers", "timecode": "1.5"})
    assert Comment.objects.get(body="Overall: lovely").timecode is None
    html = page_text(client, result_url(result))
    order = [html.index(text) for text in ("Sky flickers", "The wave breaks oddly", "Overall: lovely")]
    assert order == sorted(order)
    assert '<span class="timecode timecode-none">Note</span>' in html


@pytest.mark.parametrize("htmx", [False, True], ids=["page", "htmx"])
def test_a_blank_comment_is_refused(client, team, make_result, htmx):
    _, users = team
    result = make_result()
    blank = {"body": "   \n ", "timecode": "1"}
    as_user(client, users, "viewer")
    if htmx:
        response = client.post(comment_url(result), blank, HTTP_HX_REQUEST="true")
        assert response.status_code == 200
        html = response.content.decode()
        assert html.lstrip().startswith('<section class="card comments" id="comments"')
    else:
        html = client.post(comment_url(result), blank, follow=True).content.decode()
    assert "Write something first." in html
    assert not Comment.objects.exists()


@pytest.mark.parametrize("typed,seconds", [("4.5", "4.50"), ("0:05", "5.00"), ("1:00", "60.00")])
def test_a_time_past_the_videos_end_is_refused_saying_its_length(client, team, make_result, typed, seconds):
    _, users = team
    result = make_result(duration=4.0)
    response = as_user(client, users, "viewer").post(comment_url(result), {"body": "Here", "timecode": typed},
                                                      HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert f"The video is 4.00 s long; {seconds} s is past its end." in response.content.decode()
    assert not Comment.objects.exists()


def test_the_last_frame_of_the_video_can_take_a_comment(client, team, make_result):
    _, users = team
    result = make_result(duration=4.0)
    as_user(client, users, "viewer").post(comment_url(result), {"body": "Ends", "timecode": "0:04.00"})
    assert Comment.objects.get().timecode == 4.0


@pytest.mark.parametrize("typed", ["abc", "1:75", "-2", "3.5s", "1:2:3", "3.", "+3"])
def test_a_malformed_time_code_is_refused_with_its_rule(client, team, make_result, typed):
    _, users = team
    result = make_result(duration=90.0)
    as_user(client, users, "viewer")
    response = client.post(comment_url(result), {"body": "Here", "timecode": typed}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    html = response.content.decode()
    assert TIMECODE_RULE in html
    assert "Here</textarea>" in html, "what was written is kept for another try"
    response = client.post(comment_url(result), {"body": "Here", "timecode": typed}, follow=True)
    html = response.content.decode()
    assert TIMECODE_RULE in html
    assert response.status_code == 422 and "Here</textarea>" in html, "without JavaScript too, nothing typed is lost"
    assert not Comment.objects.exists()


def test_a_comment_longer_than_5000_characters_is_refused(client, team, make_result):
    _, users = team
    result = make_result()
    response = as_user(client, users, "viewer").post(comment_url(result), {"body": "a" * 5001},
                                                      HTTP_HX_REQUEST="true")
    assert "A comment is at most 5,000 characters; this one has 5,001." in response.content.decode()
    assert not Comment.objects.exists()


def test_a_comment_posted_with_htmx_returns_the_comments_with_it(client, team, make_result):
    _, users = team
    result = make_result()
    as_user(client, users, "viewer")
    data = {"body": "Nice light", "timecode": "2"}
    response = client.post(comment_url(result), data, HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert response.status_code == 200
    assert html.lstrip().startswith('<section class="card comments" id="comments"')
    assert "Nice light" in html and 'Comments <span class="muted">1</span>' in html
    assert 'name="body" rows="2" placeholder="Write a comment…" data-comment-body></textarea>' in html, \
        "the box is emptied for the next comment"


def test_a_comment_is_shown_as_text_not_markup(client, team, make_result):
    _, users = team
    result = make_result()
    as_user(client, users, "viewer").post(comment_url(result), {"body": "<script>alert(1)</script>\nline two"})
    html = page_text(client, result_url(result))
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;<br>line two" in html


def test_a_comment_of_someone_since_removed_is_kept_as_a_former_members(client, team, make_result,
                                                                       django_user_model):
    _, users = team
    result = make_result()
    gone = django_user_model.objects.create_user("gone", "gone@example.com", "pw")
    Comment.objects.create(result=result, author=gone, body="Before I left")
    gone.delete()
    html = page_text(as_user(client, users, "viewer"), result_url(result))
    assert "<strong>Former member</strong>" in html and "Before I left" in html


@pytest.fixture
def discussion(team, make_result):
    _, users = team
    result = make_result()
    return result, {who: Comment.objects.create(result=result, author=users[who], body=f"From {who}")
                    for who in ("viewer", "editor", "owner")}


def test_anyone_deletes_their_own_comment(client, team, discussion):
    _, users = team
    _, comments = discussion
    for who in ("viewer", "editor"):
        response = as_user(client, users, who).post(delete_url(comments[who]))
        assert response.status_code == 302
        assert not Comment.objects.filter(pk=comments[who].pk).exists()


@pytest.mark.parametrize("who,whose", [("viewer", "editor"), ("editor", "viewer"), ("editor", "owner")])
def test_a_viewer_or_editor_cannot_delete_anothers_comment(client, team, discussion, who, whose):
    _, users = team
    _, comments = discussion
    response = as_user(client, users, who).post(delete_url(comments[whose]), follow=True)
    assert "Only its author or a project owner can delete a comment." in response.content.decode()
    assert Comment.objects.filter(pk=comments[whose].pk).exists()


def test_only_their_own_comments_offer_a_delete_button_to_a_viewer(client, team, discussion):
    _, users = team
    result, comments = discussion
    html = page_text(as_user(client, users, "viewer"), result_url(result))
    assert delete_url(comments["viewer"]) in html
    assert delete_url(comments["editor"]) not in html and delete_url(comments["owner"]) not in html
    html = page_text(as_user(client, users, "owner"), result_url(result))
    assert all(delete_url(comment) in html for comment in comments.values())


@pytest.mark.parametrize("whose", ["viewer", "editor"])
def test_an_owner_deletes_anyones_comment(client, team, discussion, whose):
    _, users = team
    _, comments = discussion
    response = as_user(client, users, "owner").post(delete_url(comments[whose]), HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert f"From {whose}" not in response.content.decode()
    assert not Comment.objects.filter(pk=comments[whose].pk).exists()


def test_a_comment_cannot_be_deleted_through_another_videos_address(client, team, discussion, make_result):
    project, users = team
    _, comments = discussion
    other = make_result()
    url = reverse("comment_delete", args=[project.slug, other.pk, comments["owner"].pk])
    assert as_user(client, users, "owner").post(url).status_code == 404
    assert Comment.objects.filter(pk=comments["owner"].pk).exists()


# Comparisons ----------------------------------------------------------------------------------------------


def create_url(project):
    return reverse("comparison_create", args=[project.slug])


@pytest.mark.parametrize("count", [2, 3, 4])
def test_a_comparison_of_2_to_4_videos_keeps_the_order_they_were_sent_in(client, team, make_result, count):
    project, users = team
    videos = [make_result() for _ in range(count)]
    chosen = [v.pk for v in reversed(videos)]
    response = as_user(client, users, "viewer").post(create_url(project),
                                                     {"result": chosen, "title": " Boats, round 1 "})
    comparison = Comparison.objects.get()
    assert response.status_code == 302 and response["Location"] == comparison_url(comparison)
    assert [item.result_id for item in comparison.items.order_by("position")] == chosen
    assert (comparison.title, comparison.created_by) == ("Boats, round 1", users["viewer"])
    html = page_text(client, comparison_url(comparison))
    assert compared_ids(html) == chosen
    assert f"{count} videos · saved" in html


@pytest.mark.parametrize("count,sentence", [(1, "1 was chosen"), (5, "5 were chosen"), (0, "0 were chosen")])
def test_fewer_than_2_or_more_than_4_videos_are_refused_with_the_rule(client, team, make_result, count,
                                                                        sentence):
    project, users = team
    chosen = [make_result().pk for _ in range(count)]
    back = f"http://testserver{gallery_url(project)}"
    as_user(client, users, "viewer")
    response = client.post(create_url(project), {"result": chosen}, HTTP_REFERER=back)
    assert response.status_code == 302 and response["Location"] == back
    html = page_text(client, back)
    assert f"A comparison shows 2 to 4 videos; {sentence}." in html
    assert not Comparison.objects.exists()


def test_the_same_video_twice_counts_once(client, team, make_result):
    project, users = team
    video = make_result()
    response = as_user(client, users, "viewer").post(create_url(project), {"result": [video.pk, video.pk]},
                                                     follow=True)
    assert "A comparison shows 2 to 4 videos; 1 was chosen." in response.content.decode()
    assert not Comparison.objects.exists()


@pytest.fixture
def foreign_result(team, make_result):
    """A video of a project the people of `team` are not in."""
    elsewhere = Project.objects.create(name="Elsewhere")
    return make_result(project=elsewhere, prompt=FOX)


def test_a_video_of_another_project_never_enters_a_comparison(client, team, make_result, foreign_result):
    project, users = team
    mine = [make_result(), make_result()]
    as_user(client, users, "owner").post(create_url(project), {"result": [mine[0].pk, foreign_result.pk]})
    assert not Comparison.objects.exists()
    client.post(create_url(project), {"result": [mine[0].pk, mine[1].pk, foreign_result.pk]})
    for comparison in Comparison.objects.all():
        assert foreign_result.pk not in compared_ids(page_text(client, comparison_url(comparison)))
        assert not comparison.items.filter(result=foreign_result).exists()


def test_a_comparison_with_a_video_of_another_project_is_refused_as_a_whole(
    client, team, make_result, foreign_result
):
    project, users = team
    mine = [make_result(), make_result()]
    response = as_user(client, users, "owner").post(
        create_url(project), {"result": [mine[0].pk, mine[1].pk, foreign_result.pk]}, follow=True)
    assert not Comparison.objects.exists()
    assert response.status_code == 404 or "must belong to this project" in response.content.decode()


@pytest.fixture
def comparison(team, make_result):
    project, users = team
    videos = [make_result(model="veo-3.0"), make_result(model="veo-3.1"), make_result(model="veo-3.1-fast")]
    made = comparison_create(project=project, user=users["viewer"], results=videos, title="Three takes")
    return made, videos


def winner_url(comparison):
    return reverse("comparison_winner", args=[comparison.project.slug, comparison.pk])


@pytest.mark.parametrize("who", ["editor", "owner"])
def test_an_editor_or_owner_picks_the_winner_and_can_clear_it(client, team, comparison, who):
    _, users = team
    comparison, videos = comparison
    response = as_user(client, users, who).post(winner_url(comparison), {"result": videos[1].pk})
    assert response.status_code == 302 and response["Location"] == comparison_url(comparison)
    comparison.refresh_from_db()
    assert comparison.winner == videos[1]
    html = page_text(client, comparison_url(comparison))
    assert '<strong>Winner: B</strong> · <span class="mono">veo-3.1</span>' in html
    assert "Winner: veo-3.1" in page_text(client, reverse("comparison_list", args=[comparison.project.slug]))

    client.post(winner_url(comparison), {"result": ""})
    comparison.refresh_from_db()
    assert comparison.winner is None
    assert "Winner: B" not in page_text(client, comparison_url(comparison))


def test_a_viewer_cannot_pick_the_winner(client, team, comparison):
    _, users = team
    comparison, videos = comparison
    response = as_user(client, users, "viewer").post(winner_url(comparison), {"result": videos[0].pk})
    assert response.status_code == 403
    assert EDITORS_ONLY in response.content.decode()
    comparison.refresh_from_db()
    assert comparison.winner is None
    html = page_text(client, comparison_url(comparison))
    assert "Pick as winner" not in html
    assert "No winner yet. Editors and owners pick the winner" in html


def test_a_video_not_in_the_comparison_cannot_win(client, team, comparison, make_result):
    _, users = team
    comparison, _ = comparison
    outsider_video = make_result()
    response = as_user(client, users, "editor").post(winner_url(comparison), {"result": outsider_video.pk},
                                                      follow=True)
    assert "The winner must be one of the videos in this comparison." in response.content.decode()
    comparison.refresh_from_db()
    assert comparison.winner is None


@pytest.mark.parametrize("value", [
    "abc",
    "999999", "-1",
])
def test_a_winner_that_is_no_video_here_is_404(client, team, comparison, value):
    _, users = team
    comparison, _ = comparison
    assert as_user(client, users, "editor").post(winner_url(comparison), {"result": value}).status_code == 404
    comparison.refresh_from_db()
    assert comparison.winner is None


def test_a_video_of_another_project_cannot_win(client, team, comparison, foreign_result):
    _, users = team
    comparison, _ = comparison
    response = as_user(client, users, "owner").post(winner_url(comparison), {"result": foreign_result.pk})
    assert response.status_code == 404
    comparison.refresh_from_db()
    assert comparison.winner is None


def test_a_saved_comparisons_address_shows_the_same_set_to_another_member(client, team, comparison):
    _, users = team
    comparison, videos = comparison
    url = comparison_url(comparison)
    seen_by_author = compared_ids(page_text(as_user(client, users, "viewer"), url))
    seen_by_owner = compared_ids(page_text(as_user(client, users, "owner"), url))
    assert seen_by_author == seen_by_owner == [v.pk for v in videos]
    assert as_user(client, users, "outsider").get(url).status_code == 404


def test_a_comparison_of_another_project_is_404_under_this_ones_address(client, team, comparison):
    _, users = team
    comparison, _ = comparison
    elsewhere = Project.objects.create(name="Elsewhere")
    Membership.objects.create(project=elsewhere, user=users["owner"], role=Role.OWNER)
    url = reverse("comparison_detail", args=[elsewhere.slug, comparison.pk])
    assert as_user(client, users, "owner").get(url).status_code == 404


def test_the_comparison_table_marks_the_rows_where_videos_differ(client, team, comparison):
    _, users = team
    comparison, _ = comparison
    html = page_text(as_user(client, users, "viewer"), comparison_url(comparison))
    assert re.search(r'<tr class="differs">\s*<th scope="row">Model<span class="sr-only"> \(differs\)', html)
    assert re.search(r'<tr>\s*<th scope="row">Prompt</th>', html), "the same prompt is not marked"


# A batch opens as a comparison -------------------------------------------------------------------------


def test_a_batch_opens_as_its_own_comparison_made_once_and_reused(client, team, batch_of):
    _, users = team
    batch, videos = batch_of(3, failed=1)
    response = as_user(client, users, "viewer").post(batch_url(batch))
    comparison = Comparison.objects.get()
    assert response.status_code == 302 and response["Location"] == comparison_url(comparison)
    assert (comparison.batch, comparison.title) == (batch, BOAT)
    assert [item.result_id for item in comparison.items.all()] == [v.pk for v in videos]

    response = as_user(client, users, "editor").post(batch_url(batch))
    assert response["Location"] == comparison_url(comparison)
    assert Comparison.objects.count() == 1


def test_a_batchs_comparison_takes_in_videos_that_finished_later(client, team, batch_of, make_result):
    _, users = team
    batch, videos = batch_of(2)
    as_user(client, users, "viewer").post(batch_url(batch))
    later = make_result(batch=batch, model="veo-3.1-fast")
    response = client.post(batch_url(batch), follow=True)
    assert Comparison.objects.count() == 1
    assert compared_ids(response.content.decode()) == [videos[0].pk, videos[1].pk, later.pk]


@pytest.mark.parametrize("finished", [0, 1])
def test_a_batch_with_fewer_than_2_videos_says_so(client, team, batch_of, finished):
    project, users = team
    batch, _ = batch_of(finished, failed=1)
    response = as_user(client, users, "viewer").post(batch_url(batch))
    assert response.status_code == 302
    assert response["Location"] == gallery_url(project, f"batch={batch.pk}")
    html = page_text(client, response["Location"])
    noun = "video" if finished == 1 else "videos"
    assert f"This batch has {finished} finished {noun}; a comparison needs at least 2." in html
    assert not Comparison.objects.exists()


def test_a_batch_with_more_than_4_videos_shows_4_and_says_how_many_are_left_out(client, team, batch_of):
    _, users = team
    batch, videos = batch_of(6)
    response = as_user(client, users, "viewer").post(batch_url(batch), follow=True)
    html = response.content.decode()
    assert compared_ids(html) == [v.pk for v in videos[:4]]
    assert "A comparison shows at most four videos; 2 more videos of this batch are in the gallery" in html


def test_a_batch_of_another_project_is_404(client, team, make_result):
    project, users = team
    elsewhere = Project.objects.create(name="Elsewhere")
    Membership.objects.create(project=elsewhere, user=users["owner"], role=Role.OWNER)
    version = make_result.version_of(project, BOAT)
    batch = Batch.objects.create(project=project, name="B", prompt_version=version)
    make_result(batch=batch), make_result(batch=batch)
    url = reverse("batch_compare", args=[elsewhere.slug, batch.pk])
    assert as_user(client, users, "owner").get(url).status_code == 404
    assert client.post(url).status_code == 404
    assert not Comparison.objects.exists()


# Who may do what -------------------------------------------------------------------------------------------


@pytest.fixture
def scene(team, make_result):
    """A video, its batch, a comparison and a comment by each person: everything the review URLs act on."""
    project, users = team
    version = make_result.version_of(project, BOAT)
    batch = Batch.objects.create(project=project, name="B", prompt_version=version)
    first, second = make_result(batch=batch), make_result(batch=batch, model="veo-3.1")
    comparison = comparison_create(project=project, user=users["owner"], results=[first, second])
    comments = {who: Comment.objects.create(result=first, author=users[who], body=f"By {who}")
                for who in ("viewer", "editor", "owner")}
    return {"project": project, "users": users, "batch": batch, "result": first, "other": second,
            "comparison": comparison, "comments": comments}


def _own_comment(scene, who):
    return scene["comments"].get(who, scene["comments"]["viewer"])


ACTIONS = {
    # name: (method, url, data, editors only, has it happened?)
    "gallery": ("get", lambda s, w: reverse("gallery", args=[s["project"].slug]), None, False, None),
    "result_detail": ("get", lambda s, w: result_url(s["result"]), None, False, None),
    "comparison_list": ("get", lambda s, w: reverse("comparison_list", args=[s["project"].slug]), None, False,
                        None),
    "comparison_detail": ("get", lambda s, w: comparison_url(s["comparison"]), None, False, None),
    "batch_compare": ("post", lambda s, w: batch_url(s["batch"]), lambda s: {}, False,
                      lambda s, w: Comparison.objects.filter(batch=s["batch"]).exists()),
    "result_rate": ("post", lambda s, w: rate_url(s["result"]), lambda s: {"stars": "4"}, False,
                    lambda s, w: Rating.objects.filter(result=s["result"], stars=4).exists()),
    "result_review_state": ("post", lambda s, w: state_url(s["result"]), lambda s: {"state": "approved"},
                            True, lambda s, w: Result.objects.get(pk=s["result"].pk).review_state
                            == ReviewState.APPROVED),
    "result_comment": ("post", lambda s, w: comment_url(s["result"]),
                       lambda s: {"body": "New", "timecode": "1"}, False,
                       lambda s, w: Comment.objects.filter(body="New").exists()),
    "comment_delete": ("post", lambda s, w: delete_url(_own_comment(s, w)), lambda s: {}, False,
                       lambda s, w: not Comment.objects.filter(pk=_own_comment(s, w).pk).exists()),
    "comparison_create": ("post", lambda s, w: create_url(s["project"]),
                          lambda s: {"result": [s["other"].pk, s["result"].pk]}, False,
                          lambda s, w: Comparison.objects.count() == 2),
    "comparison_winner": ("post", lambda s, w: winner_url(s["comparison"]),
                          lambda s: {"result": s["other"].pk}, True,
                          lambda s, w: Comparison.objects.get(pk=s["comparison"].pk).winner_id is not None),
}


@pytest.mark.parametrize("who", ["anonymous", "outsider", "viewer", "editor", "owner"])
@pytest.mark.parametrize("action", list(ACTIONS))
def test_who_may_use_each_review_address(client, scene, action, who):
    method, url_for, data_for, editors_only, happened = ACTIONS[action]
    url = url_for(scene, who)
    as_user(client, scene["users"], who)
    response = client.get(url) if method == "get" else client.post(url, data_for(scene))
    allowed = who in ("editor", "owner") or (who == "viewer" and not editors_only)
    if who == "anonymous":
        assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
    elif who == "outsider":
        assert response.status_code == 404
    elif not allowed:
        assert response.status_code == 403
        assert EDITORS_ONLY in response.content.decode()
    elif method == "get":
        assert response.status_code == 200
    else:
        assert response.status_code == 302 and not response["Location"].startswith(reverse("login"))
    if happened:
        assert happened(scene, who) is allowed


# A batch's address also answers GET, by only looking (test_batch_compare.py).
@pytest.mark.parametrize("action", [name for name, spec in ACTIONS.items()
                                    if spec[0] == "post" and name != "batch_compare"])
def test_review_actions_only_take_posts(client, scene, action):
    _, url_for, _, _, _ = ACTIONS[action]
    as_user(client, scene["users"], "owner")
    assert client.get(url_for(scene, "owner")).status_code == 405


def test_videos_ticked_in_a_prompts_history_open_side_by_side(client, team, make_result):
    project, users = team
    first, second, third = make_result(), make_result(model="veo-3.1"), make_result(prompt=FOX)
    html = page_text(as_user(client, users, "viewer"), reverse("prompt_history", args=[project.slug]))
    boat_form = f'form="compare-prompt-{first.job.prompt_version.prompt_id}"'
    assert f'name="result" value="{first.pk}" {boat_form}' in html
    assert f'name="result" value="{second.pk}" {boat_form}' in html
    assert f'name="result" value="{third.pk}" {boat_form}' not in html, "each prompt ticks into its own form"
    response = client.post(create_url(project), {"result": [second.pk, first.pk],
                                                 "title": first.job.prompt_version.prompt.title}, follow=True)
    comparison = Comparison.objects.get()
    assert comparison.title == first.job.prompt_version.prompt.title
    assert compared_ids(response.content.decode()) == [second.pk, first.pk]
