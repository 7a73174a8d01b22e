"""What most web tests act on: the team (one project with a member of each role, and someone from outside),
offline provider accounts, stored videos made to order, and batches of them."""

import secrets

import pytest

from studio.jobs.models import Batch, Job, JobState, Result, ReviewState
from studio.projects.models import Membership, Project, Prompt, PromptVersion, Role
from studio.providers.models import ProviderAccount
from tests.web.support import BOAT, closed_port_url

PEOPLE = ["outsider", "viewer", "editor", "owner"]


@pytest.fixture
def team(django_user_model):
    users = {name: django_user_model.objects.create_user(name, f"{name}@example.com", "pw-Secret-123")
             for name in PEOPLE}
    project = Project.objects.create(name="Harbour", created_by=users["owner"])
    for role in (Role.VIEWER, Role.EDITOR, Role.OWNER):
        Membership.objects.create(project=project, user=users[role.value], role=role)
    return project, users


@pytest.fixture
def account():
    account = ProviderAccount(provider="qingbo", name="qingbo-offline", base_url=closed_port_url())
    account.set_api_key("sk-test-never-sent-0001")
    account.save()
    return account


@pytest.fixture
def accounts():
    """Accounts that point at a closed port: nothing here may call a provider."""
    made = {}
    for provider in ("qingbo", "apimp"):
        account = ProviderAccount(provider=provider, name=f"{provider}-offline", base_url=closed_port_url())
        account.set_api_key(f"sk-test-never-sent-{provider}")
        account.save()
        made[provider] = account
    return made


@pytest.fixture
def make_result(team, accounts):
    """make_result(...) -> a stored video row (no file on disk: these pages never read one)."""
    home, users = team
    versions = {}

    def version_of(project, text):
        if (project.pk, text) not in versions:
            prompt = Prompt.objects.create(project=project, title=text[:30])
            versions[project.pk, text] = PromptVersion.objects.create(prompt=prompt, number=1, text=text)
        return versions[project.pk, text]

    def make(*, prompt=BOAT, model="veo-3.0", provider="qingbo", batch=None, duration=4.0, width=1280,
             height=720, state=ReviewState.TO_REVIEW, created=None, project=None):
        project = project or home
        job = Job.objects.create(
            project=project, prompt_version=version_of(project, prompt), account=accounts[provider],
            provider=provider, model=model, params={"prompt": prompt, "duration": 4, "aspect_ratio": "16:9"},
            state=JobState.SUCCEEDED, batch=batch, created_by=users["editor"],
        )
        result = Result.objects.create(
            job=job, file=f"projects/{project.pk}/videos/{secrets.token_hex(6)}.mp4", sha256="0" * 64,
            bytes=1000, duration=duration, width=width, height=height, fps=24.0, has_audio=True,
            review_state=state,
        )
        if created:
            Result.objects.filter(pk=result.pk).update(created_at=created)
            result.refresh_from_db()
        return result

    make.version_of = version_of
    return make


@pytest.fixture
def batch_of(team, make_result):
    project, _ = team

    def make(finished, failed=0):
        batch = Batch.objects.create(project=project, prompt_version=make_result.version_of(project, BOAT),
                                     name="Boat, four models")
        for n in range(failed):
            job = make_result(batch=batch).job
            Job.objects.filter(pk=job.pk).update(state=JobState.FAILED)
        models = ["veo-3.0", "veo-3.1", "veo-3.1-fast", "veo-3.0-fast", "veo-2.0", "veo-1.0"]
        return batch, [make_result(batch=batch, model=models[n]) for n in range(finished)]

    return make


@pytest.fixture
def tiny_sandbox_videos(sandbox):
    """The sandbox's load-test mode: every job delivers a 160×90 clip of 1 s, whatever was asked for."""
    sandbox.state.tiny_videos = True
    yield sandbox
    sandbox.state.tiny_videos = False
