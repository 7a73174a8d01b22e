"""Odd ids and numbers in URLs, forms and query strings, and requests with too many fields: a 404, a 400 that
says why, a refusal in words, or a filter ignored; never a 500."""

import pytest
from django.contrib.messages import get_messages
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from studio.core.params import parse_id, parse_ids
from studio.review.models import Comment, Comparison
from studio.review.services import comparison_create

pytestmark = pytest.mark.django_db

SUPERSCRIPT_TWO = "²"  # str.isdigit() says it is a digit, int() refuses it
TOO_BIG = "99999999999999999999999"  # past any database's integer (SQLite's driver overflows)
ODD_IDS = [SUPERSCRIPT_TWO, TOO_BIG, "0", "-1", "٣", " 7", "9" * 5000]


# One strict way to read an id -------------------------------------------------------------------------------


@pytest.mark.parametrize("value,expected", [
    ("1", 1), ("42", 42), ("007", 7), (str(2**63 - 1), 2**63 - 1),
    (str(2**63), None), (TOO_BIG, None), ("0", None), ("-1", None), ("+1", None), ("1.0", None),
    (SUPERSCRIPT_TWO, None), ("٣", None), (" 1", None), ("1 ", None), ("1\n", None), ("", None), (None, None),
    ("9" * 5000, None), (7, None),
])
def test_an_id_is_ascii_digits_from_1_to_the_largest_bigint(value, expected):
    assert parse_id(value) == expected


def test_a_list_of_ids_keeps_the_order_and_drops_repeats():
    assert parse_ids(["3", "1", "3"], limit=4) == [3, 1]
    assert parse_ids([], limit=4) == []


@pytest.mark.parametrize("values", [["1", SUPERSCRIPT_TWO], ["1", TOO_BIG], ["1", ""], ["1", "2", "3", "4", "5"],
                                    ["1", "01", "2", "3", "4", "5"]])
def test_a_list_with_one_odd_id_or_too_many_is_no_list(values):
    assert parse_ids(values, limit=4) is None


# The cases seen as 500s ------------------------------------------------------------------------------------


@pytest.fixture
def two_videos(team, make_result):
    project, users = team
    first, second = make_result(), make_result()
    comparison = comparison_create(project=project, user=users["editor"], results=[first, second], title="2")
    return project, users, first, second, comparison


def signed_in(users, who="editor"):
    client = Client(raise_request_exception=False)
    client.force_login(users[who])
    return client


@pytest.mark.parametrize("name", ["from_job", "version"])
@pytest.mark.parametrize("value", ODD_IDS)
def test_the_project_page_opens_an_empty_composer_for_an_odd_job_or_version(team, name, value):
    project, users = team
    response = signed_in(users).get(reverse("project_detail", args=[project.slug]), {name: value})
    assert response.status_code == 200
    assert "restored" not in response.content.decode()


@pytest.mark.parametrize("view", ["composer_fields", "composer_submit"])
@pytest.mark.parametrize("field", ["first_frame", "last_frame", "reference_images", "prompt_id", "from_job",
                                   "pick", "drop"])
@pytest.mark.parametrize("value", [SUPERSCRIPT_TWO, TOO_BIG, "0", "٣"])
def test_the_composer_leaves_out_odd_image_prompt_and_job_ids(team, view, field, value):
    project, users = team
    if field in ("pick", "drop"):
        value = f"first_frame:{value}"
    response = signed_in(users).post(reverse(view, args=[project.slug]), {field: value, "prompt": "A pier"})
    # The fields re-render; a submission with no model chosen is refused in words (422), as with no odd id.
    assert response.status_code == (200 if view == "composer_fields" else 422)


@pytest.mark.parametrize("value", [SUPERSCRIPT_TWO, TOO_BIG, "0", "", "9" * 5000])
def test_a_comparison_of_an_odd_id_is_refused_in_words_and_nothing_is_saved(two_videos, value):
    project, users, first, second, _ = two_videos
    client = signed_in(users)
    response = client.post(reverse("comparison_create", args=[project.slug]),
                           {"result": [str(first.pk), value, str(second.pk)]})
    assert response.status_code == 302
    assert response["Location"] == reverse("gallery", args=[project.slug])
    assert [str(m) for m in get_messages(response.wsgi_request)] == [
        "Every video in a comparison must belong to this project; nothing was saved."]
    assert Comparison.objects.count() == 1


def test_a_comparison_of_good_ids_is_still_saved_in_the_order_given(two_videos):
    project, users, first, second, _ = two_videos
    response = signed_in(users).post(reverse("comparison_create", args=[project.slug]),
                                     {"result": [str(second.pk), str(first.pk), str(second.pk)]})
    assert response.status_code == 302
    made = Comparison.objects.latest("pk")
    assert list(made.items.order_by("position").values_list("result_id", flat=True)) == [second.pk, first.pk]


@pytest.mark.parametrize("value", [SUPERSCRIPT_TWO, TOO_BIG, "0", "-1", "٣", "9" * 5000])
def test_the_winner_of_an_odd_id_is_not_found_and_nothing_changes(two_videos, value):
    project, users, first, _, comparison = two_videos
    comparison.winner = first
    comparison.save()
    response = signed_in(users).post(reverse("comparison_winner", args=[project.slug, comparison.pk]),
                                     {"result": value})
    assert response.status_code == 404
    comparison.refresh_from_db()
    assert comparison.winner == first


@pytest.mark.parametrize("path", [
    "/p/{slug}/jobs/{big}/", "/p/{slug}/jobs/{big}/card/", "/p/{slug}/results/{big}/",
    "/p/{slug}/comparisons/{big}/", "/p/{slug}/results/{result}/comments/{big}/delete/",
    "/p/{slug}/members/{big}/", "/p/{slug}/batches/{big}/compare/", "/media/projects/{big}/a.png",
    "/p/{slug}/jobs/0/", "/p/{slug}/results/{max_plus_one}/",
])
@pytest.mark.parametrize("method", ["get", "post"])
def test_an_id_out_of_range_in_a_path_is_not_found(two_videos, path, method):
    project, users, first, _, _ = two_videos
    url = path.format(slug=project.slug, big=TOO_BIG, result=first.pk, max_plus_one=2**63)
    assert getattr(signed_in(users, "owner"), method)(url).status_code == 404


@pytest.mark.parametrize("query", [f"batch={SUPERSCRIPT_TWO}", f"batch={TOO_BIG}", "batch=-1",
                                   f"page={SUPERSCRIPT_TWO}", f"page={TOO_BIG}", f"rating={SUPERSCRIPT_TWO}",
                                   f"sort={SUPERSCRIPT_TWO}"])
def test_the_gallery_ignores_an_odd_filter(two_videos, query):
    project, users, first, second, _ = two_videos
    response = signed_in(users, "viewer").get(reverse("gallery", args=[project.slug]) + "?" + query)
    assert response.status_code == 200
    html = response.content.decode()
    assert f'name="result" value="{first.pk}"' in html and f'name="result" value="{second.pk}"' in html


# Too many fields --------------------------------------------------------------------------------------------


def many_fields(count):
    return "&".join(f"f{n}=1" for n in range(count))


def assert_too_many_fields(response):
    assert response.status_code == 400
    assert response["Content-Type"].startswith("text/plain")
    assert "too many fields" in response.content.decode()


@pytest.mark.parametrize("debug", [False, True])  # Django's own debug page read the fields again: a 500
@pytest.mark.parametrize("who", ["anonymous", "outsider", "viewer"])
def test_a_query_with_2000_parameters_is_a_400_that_says_why(team, settings, debug, who):
    settings.DEBUG = debug
    project, users = team
    client = Client(raise_request_exception=False) if who == "anonymous" else signed_in(users, who)
    for url in (reverse("gallery", args=[project.slug]), reverse("project_list"), reverse("login")):
        assert_too_many_fields(client.get(f"{url}?{many_fields(2000)}"))


@pytest.fixture
def form_page(two_videos):
    """form_page(name) -> (client, url) of a form: a comment as the editor, or the sign-in page as anyone."""
    project, users, first, _, _ = two_videos

    def page(name):
        if name == "login":
            return Client(raise_request_exception=False), reverse("login")
        return signed_in(users), reverse("result_comment", args=[project.slug, first.pk])

    return page


@pytest.mark.parametrize("debug", [False, True])
@pytest.mark.parametrize("encoding", ["multipart", "urlencoded"])
@pytest.mark.parametrize("page", ["comment", "login"])
def test_a_form_with_2000_fields_is_a_400_that_says_why(form_page, settings, debug, encoding, page):
    settings.DEBUG = debug
    client, url = form_page(page)
    if encoding == "multipart":
        response = client.post(url, {f"f{n}": "1" for n in range(2000)})
    else:
        response = client.post(url, many_fields(2000), content_type="application/x-www-form-urlencoded")
    assert_too_many_fields(response)
    assert not Comment.objects.exists()


@pytest.mark.parametrize("debug", [False, True])
def test_a_form_with_too_many_files_is_a_400_that_says_why(form_page, settings, debug):
    settings.DEBUG = debug
    client, url = form_page("comment")
    files = [SimpleUploadedFile(f"f{n}.txt", b"x") for n in range(settings.DATA_UPLOAD_MAX_NUMBER_FILES + 1)]
    assert_too_many_fields(client.post(url, {"body": "Here", "attachment": files}))
    assert not Comment.objects.exists()


@pytest.mark.parametrize("debug", [False, True])
def test_a_form_too_large_is_a_400_that_says_why(form_page, settings, debug):
    settings.DEBUG = debug
    client, url = form_page("comment")
    body = "body=" + "x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1)
    response = client.post(url, body, content_type="application/x-www-form-urlencoded")
    assert response.status_code == 400
    assert response["Content-Type"].startswith("text/plain")
    assert "This form is too large" in response.content.decode()
    assert not Comment.objects.exists()


def test_the_cap_is_the_setting_exactly(team, settings):
    project, users = team
    client = signed_in(users, "viewer")
    url = reverse("gallery", args=[project.slug])
    cap = settings.DATA_UPLOAD_MAX_NUMBER_FIELDS
    assert client.get(f"{url}?{many_fields(cap)}").status_code == 200
    assert_too_many_fields(client.get(f"{url}?{many_fields(cap + 1)}"))


@pytest.mark.parametrize("timecode", ["٣", "1:٠٣", "²", "9" * 5000 + ":1", "1:" + "9" * 5000])
def test_a_time_code_is_ascii_digits_or_refused_in_words(two_videos, timecode):
    project, users, first, _, _ = two_videos
    response = signed_in(users).post(reverse("result_comment", args=[project.slug, first.pk]),
                                     {"body": "Here", "timecode": timecode})
    assert response.status_code == 422
    assert "Write a time code as seconds" in response.content.decode()
    assert not first.comments.exists()
