"""The composer's rules: shared fields, per-target checks, prompt versions, all-or-nothing batches."""

import pytest
from django.utils import timezone

from studio.jobs import compose
from studio.jobs.models import Batch, Job, JobState
from studio.projects.models import Prompt
from studio.providers.models import ProviderAccount
from studio.providers.registry import all_specs, model_spec

pytestmark = pytest.mark.django_db  # cost estimates read the admin's price table


def target(provider, model, pk):
    return compose.Target(ProviderAccount(pk=pk, provider=provider, name=f"{provider}-acct",
                                          base_url=f"https://{provider}.example"), model_spec(provider, model))


@pytest.fixture
def demo_project_db(db):
    from studio.projects.models import Project

    return Project.objects.create(name="Compose", slug="compose")


@pytest.fixture
def sandbox_accounts_db(db):
    """Accounts in the database only: these tests send nothing (no poller runs)."""
    accounts = {}
    for provider in ("qingbo", "uniall"):
        account = ProviderAccount(provider=provider, name=f"db-{provider}", base_url=f"https://{provider}.example")
        account.set_api_key(f"sk-test-{provider}-0000")
        account.save()
        accounts[provider] = account
    return accounts


VEO31 = target("qingbo", "veo-3.1", 1)
VIDU = target("uniall", "viduq3p-720p", 2)
RESELLER = target("veoquery", "veo3.1-fast", 3)


def test_one_target_gets_every_parameter_as_a_plain_form():
    plan = compose.field_plan([VEO31])
    assert [p.name for p in plan.shared] == [n for n in VEO31.spec.param_names if n != "negative_prompt"]
    assert plan.specific[VEO31.key] == []


def test_parameters_two_targets_share_are_set_once_with_only_common_values():
    plan = compose.field_plan([VEO31, VIDU, RESELLER])
    shared = {p.name: p for p in plan.shared}
    assert shared["duration"].choices == (4, 6, 8)  # Veo's choices that Vidu's 1–16 range also accepts
    assert [t.key for t in plan.shared_users["duration"]] == [VEO31.key, VIDU.key]
    assert shared["aspect_ratio"].choices == ("16:9", "9:16")  # Vidu's 1:1 is not offered to all
    assert [p.name for p in plan.specific[RESELLER.key]] == ["enhance_prompt", "upsample"]
    assert "resolution" in [p.name for p in plan.specific[VEO31.key]]


def test_parameters_with_nothing_in_common_stay_per_target():
    veo2 = target("veoquery", "veo2", 4)
    plan = compose.field_plan([veo2, VIDU])
    assert "aspect_ratio" not in {p.name for p in plan.shared}  # veo2 has no aspect parameter


@pytest.mark.parametrize("spec", all_specs(), ids=lambda s: s.key)
def test_every_model_alone_validates_with_its_defaults(spec):
    alone = compose.Target(ProviderAccount(pk=9, provider=spec.provider, name="x", base_url="https://x"), spec)
    images = {"reference_images": ["ref"] * spec.images.min_references} if spec.images.min_references else {}
    [check] = compose.check_all([alone], prompt="A quiet harbour", negative_prompt="", shared={}, specific={},
                                images=images)
    assert check.ok, check.violations
    assert check.cost > 0


def test_each_target_is_checked_on_its_own_and_names_the_rule():
    checks = compose.check_all([VEO31, VIDU], prompt="Dunes at noon", negative_prompt="",
                               shared={"duration": "6"}, specific={VEO31.key: {"resolution": "1080p"}}, images={})
    veo, vidu = checks
    assert [v.code for v in veo.violations] == ["veo_hd_needs_8s"]
    assert "1080p and 4k need an 8-second duration on Veo" in veo.violations[0].message
    assert vidu.ok and vidu.params["duration"] == 6


def test_images_go_only_to_targets_that_take_them():
    veo3 = target("qingbo", "veo-3.0", 5)
    images = {"first_frame": "first", "last_frame": "last", "reference_images": ["a", "b"]}
    assert compose.images_for(veo3, images) == {"first_frame": "first", "last_frame": None, "references": []}
    assert compose.images_for(VIDU, images)["last_frame"] == "last"


def test_a_batch_with_one_broken_target_creates_nothing(sandbox_accounts_db, demo_project_db):
    targets = [compose.Target(sandbox_accounts_db["qingbo"], model_spec("qingbo", "veo-3.1")),
               compose.Target(sandbox_accounts_db["uniall"], model_spec("uniall", "viduq3t-540p"))]
    with pytest.raises(compose.BatchRefused) as refused:
        compose.batch_create(project=demo_project_db, user=None, targets=targets, prompt="Snow on cedars",
                             shared={"duration": "6"}, specific={targets[0].key: {"resolution": "1080p"}})
    assert "need an 8-second duration" in str(refused.value)
    assert Batch.objects.count() == Job.objects.count() == Prompt.objects.count() == 0


def test_a_batch_creates_one_job_per_target_on_one_prompt_version(sandbox_accounts_db, demo_project_db):
    targets = [compose.Target(sandbox_accounts_db["qingbo"], model_spec("qingbo", "veo-3.1")),
               compose.Target(sandbox_accounts_db["uniall"], model_spec("uniall", "viduq3t-540p"))]
    batch = compose.batch_create(project=demo_project_db, user=None, targets=targets, prompt="Snow on cedars",
                                 shared={"duration": "4"})
    assert [(j.provider, j.model, j.params["duration"]) for j in batch.jobs.order_by("pk")] == [
        ("qingbo", "veo-3.1", 4), ("uniall", "viduq3t-540p", 4)]
    assert {j.prompt_version_id for j in batch.jobs.all()} == {batch.prompt_version_id}
    assert all(j.state == JobState.QUEUED and j.next_poll_at <= timezone.now() for j in batch.jobs.all()), \
        "every job is due at once for the poller"


def test_prompt_versions_change_only_when_jobs_would_otherwise_lie(demo_project_db, sandbox_accounts_db):
    first = compose.prompt_version_to_use(project=demo_project_db, user=None, text="Rain on glass")
    prompt = first.prompt
    assert compose.prompt_version_to_use(project=demo_project_db, user=None, prompt=prompt,
                                         text="Rain on glass").pk == first.pk
    edited_before_jobs = compose.prompt_version_to_use(project=demo_project_db, user=None, prompt=prompt,
                                                       text="Rain on a window")
    assert edited_before_jobs.pk == first.pk and edited_before_jobs.text == "Rain on a window"
    compose.batch_create(project=demo_project_db, user=None, prompt_obj=prompt, prompt="Rain on a window",
                         targets=[compose.Target(sandbox_accounts_db["qingbo"], model_spec("qingbo", "veo-3.0"))],
                         shared={"duration": "4"})
    second = compose.prompt_version_to_use(project=demo_project_db, user=None, prompt=prompt,
                                           text="Rain on a train window")
    assert second.number == 2 and second.prompt_id == prompt.pk
    first.refresh_from_db()
    assert first.text == "Rain on a window", "a version that has jobs is never rewritten"


def test_real_providers_that_fetch_images_need_a_public_studio(settings):
    settings.STUDIO_SANDBOX_URL = "http://127.0.0.1:8001"
    warning = compose.public_url_warning([VEO31, target("modelmax", "veo-3", 6)], "http://127.0.0.1:8000")
    assert "qingbo-acct" in warning and "modelmax" not in warning
    assert compose.public_url_warning([target("modelmax", "veo-3", 6)], "http://127.0.0.1:8000") == ""
    sandboxed = compose.Target(ProviderAccount(pk=7, provider="qingbo", name="sb",
                                               base_url="http://127.0.0.1:8001/qingbo"), VEO31.spec)
    assert compose.public_url_warning([sandboxed], "http://127.0.0.1:8000") == ""
