"""The team most web tests act as: one project with a member of each role, and someone from outside."""

import pytest

from studio.projects.models import Membership, Project, Role

PEOPLE = ["outsider", "viewer", "editor", "owner"]


@pytest.fixture
def team(django_user_model):
    users = {name: django_user_model.objects.create_user(name, f"{name}@example.com", "pw-Secret-123")
             for name in PEOPLE}
    project = Project.objects.create(name="Harbour", created_by=users["owner"])
    for role in (Role.VIEWER, Role.EDITOR, Role.OWNER):
        Membership.objects.create(project=project, user=users[role.value], role=role)
    return project, users
