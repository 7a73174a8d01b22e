"""How a request reaches a project: members see it, everyone else gets a 404, roles gate actions."""

from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404

from studio.projects.models import Membership, Project, Role

ROLE_NEEDED_MESSAGES = {
    Role.EDITOR: "Only editors and owners of this project can do that. Ask an owner to change your role.",
    Role.OWNER: "Only owners of this project can do that.",
}


def project_for(request, slug, *, role=Role.VIEWER):
    """The project with this slug if the user is a member with at least `role`.

    Non-members get 404 (the project's existence is not revealed); members without the role get 403.
    """
    project = get_object_or_404(Project.objects.for_user(request.user), slug=slug)
    membership = Membership.objects.get(project=project, user=request.user)
    if not membership.allows(role):
        raise PermissionDenied(ROLE_NEEDED_MESSAGES[Role(role)])
    project.membership = membership
    return project
