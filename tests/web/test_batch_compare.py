"""A batch's comparison is made by a POST from its button, with CSRF; opening the batch's address only looks, so a
link followed from another site (the session cookie is Lax) changes nothing."""

import re

import pytest
from django.test import Client
from django.urls import reverse

from studio.jobs.models import Job
from studio.review.models import Comparison
from tests.web.support import as_user, batch_url, comparison_url, gallery_url, result_url

pytestmark = pytest.mark.django_db


def post_forms_to(html, url):
    """The forms on a page that POST to `url` with a CSRF token, as the HTML says."""
    forms = re.findall(r"<form\b[^>]*>.*?</form>", html, flags=re.DOTALL)
    return [form for form in forms
            if re.search(r'method="post"', form) and f'action="{url}"' in form and "csrfmiddlewaretoken" in form]


def test_opening_a_batchs_address_makes_nothing_and_offers_the_button(client, team, batch_of):
    _, users = team
    batch, _ = batch_of(3)
    response = as_user(client, users, "viewer").get(batch_url(batch))
    assert not Comparison.objects.exists()
    assert response.status_code == 200
    html = response.content.decode()
    assert "3 finished videos" in html
    [form] = post_forms_to(html, batch_url(batch))
    assert re.search(r'<button type="submit"[^>]*>\s*Compare them side by side\s*</button>', form)


@pytest.mark.parametrize("finished", [0, 1])
def test_opening_a_batch_with_too_few_videos_says_so_and_offers_no_button(client, team, batch_of, finished):
    _, users = team
    batch, _ = batch_of(finished, failed=1)
    response = as_user(client, users, "viewer").get(batch_url(batch))
    assert response.status_code == 200
    html = response.content.decode()
    noun = "video" if finished == 1 else "videos"
    assert f"This batch has {finished} finished {noun}; a comparison needs at least 2." in html
    assert not post_forms_to(html, batch_url(batch))
    assert not Comparison.objects.exists()


def test_opening_the_address_goes_to_the_existing_comparison_and_adds_nothing(client, team, batch_of, make_result):
    _, users = team
    batch, videos = batch_of(2)
    as_user(client, users, "editor").post(batch_url(batch))
    comparison = Comparison.objects.get()
    make_result(batch=batch, model="veo-3.1-fast")  # finished later: only the button brings it in

    response = as_user(client, users, "viewer").get(batch_url(batch))
    assert response.status_code == 302 and response["Location"] == comparison_url(comparison)
    assert [item.result_id for item in comparison.items.all()] == [v.pk for v in videos]


def test_a_post_without_the_csrf_token_is_refused_and_makes_nothing(team, batch_of):
    _, users = team
    batch, _ = batch_of(2)
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(users["viewer"])
    assert browser.post(batch_url(batch)).status_code == 403
    assert not Comparison.objects.exists()


def test_the_pages_button_posts_with_its_token_and_lands_on_the_new_comparison(team, batch_of):
    _, users = team
    batch, videos = batch_of(2)
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(users["viewer"])
    [form] = post_forms_to(browser.get(batch_url(batch)).content.decode(), batch_url(batch))
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form).group(1)
    response = browser.post(batch_url(batch), {"csrfmiddlewaretoken": token})
    comparison = Comparison.objects.get()
    assert response.status_code == 302 and response["Location"] == comparison_url(comparison)
    assert [item.result_id for item in comparison.items.all()] == [v.pk for v in videos]


@pytest.mark.parametrize("method", ["put", "delete", "patch"])
def test_other_methods_change_nothing(client, team, batch_of, method):
    _, users = team
    batch, _ = batch_of(2)
    response = getattr(as_user(client, users, "owner"), method)(batch_url(batch))
    assert response.status_code == 405
    assert not Comparison.objects.exists()


def test_every_compare_button_for_a_batch_is_a_form_that_posts(client, team, batch_of):
    """The job card, the video's page and the gallery filtered to the batch: no plain link to the address."""
    project, users = team
    batch, videos = batch_of(2)
    job = Job.objects.get(pk=videos[0].job_id)
    as_user(client, users, "viewer")
    pages = {
        "job card": reverse("job_card", args=[project.slug, job.pk]),
        "job page": reverse("job_detail", args=[project.slug, job.pk]),
        "project page": reverse("project_detail", args=[project.slug]),
        "video page": result_url(videos[0]),
        "gallery": gallery_url(project, f"batch={batch.pk}"),
    }
    for name, url in pages.items():
        html = client.get(url).content.decode()
        assert f'href="{batch_url(batch)}"' not in html, name
        assert post_forms_to(html, batch_url(batch)), name
    assert not Comparison.objects.exists()
