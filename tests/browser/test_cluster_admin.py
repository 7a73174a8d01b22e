"""The admin's clusters page (real Chromium): each cluster's state in words, and the overdue jobs above them,
linked to the job list filtered to just those."""

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from studio.jobs.models import ClusterHeartbeat, Job, JobState
from studio.projects.models import Project, Prompt, PromptVersion
from studio.providers.models import ProviderAccount

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "harbour-gulls-7"


@pytest.fixture
def operator(django_user_model):
    return django_user_model.objects.create_superuser("root", "root@studio.example", PASSWORD)


def clusters_in_every_state(now):
    beat = {"started_at": now - timedelta(hours=3)}
    ClusterHeartbeat.objects.create(host="worker-1", pid=4121, beat_at=now, poller_loop_at=now, **beat)
    ClusterHeartbeat.objects.create(host="worker-2", pid=877, beat_at=now - timedelta(minutes=12),
                                    poller_loop_at=now - timedelta(minutes=12), **beat)
    ClusterHeartbeat.objects.create(host="worker-3", pid=90211, beat_at=now, poller_loop_at=now - timedelta(minutes=4),
                                    **beat)
    ClusterHeartbeat.objects.create(host="worker-4", pid=3301, beat_at=now, runs_poller=False, poller_loop_at=None,
                                    **beat)


def overdue_jobs(now, count):
    project = Project.objects.create(name="Harbour at dawn", slug="harbour")
    account = ProviderAccount(provider="qingbo", name="QWave main", base_url="http://127.0.0.1:9/qingbo")
    account.set_api_key("sk-sandbox-qingbo-screens")
    account.save()
    version = PromptVersion.objects.create(prompt=Prompt.objects.create(project=project, title="Gulls"), number=1,
                                           text="Gulls wheel over a wooden pier at dawn")
    return [Job.objects.create(project=project, prompt_version=version, account=account, provider="qingbo",
                               model="veo-3.0", params={"prompt": version.text, "duration": 4}, state=JobState.RUNNING,
                               next_poll_at=now - timedelta(minutes=5)) for _ in range(count)]


def sign_in_to_admin(page, live_server):
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", "root")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    expect(page.locator("#site-name")).to_be_visible()


@pytest.mark.parametrize("width", [1440, 1024])
def test_the_clusters_page_says_each_state_in_words_and_counts_the_overdue_jobs(live_server, page, screenshot,
                                                                                operator, width):
    page.set_viewport_size({"width": width, "height": 900})
    now = timezone.now()
    clusters_in_every_state(now)
    jobs = overdue_jobs(now, 2)
    sign_in_to_admin(page, live_server)

    page.goto(f"{live_server.url}/admin/jobs/clusterheartbeat/")
    rows = page.locator("#result_list tbody tr")
    expect(rows).to_have_count(4)
    states = [text.strip() for text in page.locator("#result_list td.field-state").all_inner_texts()]
    assert states == ["Alive", "Dead", "Poller stuck", "Alive"]
    expect(rows.nth(1)).to_contain_text("12 min ago")
    expect(rows.nth(3)).to_contain_text("None in this cluster")
    expect(page.locator(".errornote")).to_contain_text("2 jobs overdue")
    expect(page.locator("h1")).to_have_text("Clusters")
    screenshot(page, f"admin-clusters-{width}")

    page.click("text=2 jobs overdue")
    expect(page.locator("#result_list tbody tr")).to_have_count(2)
    expect(page.locator("#result_list")).to_contain_text("Running")
    assert {int(text) for text in page.locator("#result_list th.field-pk").all_inner_texts()} == {j.pk for j in jobs}
    screenshot(page, f"admin-overdue-jobs-{width}")


def test_the_clusters_page_says_when_nothing_is_overdue(live_server, page, operator):
    ClusterHeartbeat.objects.create(host="worker-1", pid=4121, started_at=timezone.now(), beat_at=timezone.now())
    sign_in_to_admin(page, live_server)
    page.goto(f"{live_server.url}/admin/jobs/clusterheartbeat/")
    expect(page.locator("#content")).to_contain_text("No job is overdue")
    expect(page.locator(".errornote")).to_have_count(0)
    expect(page.locator("td.field-poller")).to_have_text("Starting")
