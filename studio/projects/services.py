"""Business rules for projects and their members."""

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q

from studio.projects.models import Membership, Project, Role


@transaction.atomic
def project_create(*, name, description="", user):
    project = Project.objects.create(name=name.strip(), description=description.strip(), created_by=user)
    Membership.objects.create(project=project, user=user, role=Role.OWNER)
    return project


def membership_add(*, project, identifier, role):
    """Add an existing user, named by username or e-mail address, with a role."""
    identifier = identifier.strip()
    User = get_user_model()
    user = User.objects.filter(Q(username__iexact=identifier) | Q(email__iexact=identifier), is_active=True).first()
    if user is None:
        raise ValidationError(f"No active user is called “{identifier}”. Ask an administrator to create the account first.")
    if project.memberships.filter(user=user).exists():
        raise ValidationError(f"{user.username} is already a member of this project.")
    return Membership.objects.create(project=project, user=user, role=role)


@transaction.atomic
def membership_change_role(*, membership, role):
    if membership.role == Role.OWNER and role != Role.OWNER:
        _keep_an_owner(membership)
    membership.role = role
    membership.save(update_fields=["role"])
    return membership


@transaction.atomic
def membership_remove(*, membership):
    if membership.role == Role.OWNER:
        _keep_an_owner(membership)
    membership.delete()


def _keep_an_owner(membership):
    other_owners = membership.project.memberships.filter(role=Role.OWNER).exclude(pk=membership.pk)
    if not other_owners.select_for_update().exists():
        raise ValidationError("A project needs at least one owner. Make someone else an owner first.")
