from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import Count
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from studio.jobs import compose_views
from studio.jobs import forms as composer_forms
from studio.projects import services
from studio.projects.access import project_for
from studio.projects.forms import AddMemberForm, ChangeRoleForm, ProjectForm
from studio.projects.models import ROLE_DESCRIPTIONS, Membership, Project, Role


def project_list(request):
    memberships = (
        Membership.objects.filter(user=request.user)
        .select_related("project")
        .annotate(member_count=Count("project__memberships", distinct=True))
        .order_by("project__name")
    )
    return render(request, "projects/project_list.html", {"memberships": memberships})


@require_http_methods(["GET", "POST"])
def project_create(request):
    form = ProjectForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        project = services.project_create(**form.cleaned_data, user=request.user)
        messages.success(request, f"Project “{project.name}” created. You are its owner.")
        return redirect("project_detail", slug=project.slug)
    return render(request, "projects/project_form.html", {"form": form})


def project_detail(request, slug):
    """The composer (empty, or holding a restored prompt version or a job's settings) beside the job cards."""
    project = project_for(request, slug)
    state = composer_forms.state_from_query(request.GET, project=project, user=request.user)
    return compose_views.project_page(request, project, state)


@require_http_methods(["GET", "POST"])
def project_members(request, slug):
    project = project_for(request, slug, role=Role.OWNER if request.method == "POST" else Role.VIEWER)
    form = AddMemberForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            membership = services.membership_add(project=project, **form.cleaned_data)
        except ValidationError as error:
            form.add_error("identifier", error)
        else:
            messages.success(request, f"{membership.user.username} joined as {membership.get_role_display().lower()}.")
            return redirect("project_members", slug=project.slug)
    context = {
        "project": project,
        "memberships": project.memberships.select_related("user"),
        "form": form,
        "is_owner": project.membership.role == Role.OWNER,
        "roles": Role.choices,
        "role_descriptions": ROLE_DESCRIPTIONS,
    }
    return render(request, "projects/project_members.html", context)


@require_POST
def member_update(request, slug, membership_id):
    project = project_for(request, slug, role=Role.OWNER)
    membership = get_object_or_404(project.memberships.select_related("user"), pk=membership_id)
    form = ChangeRoleForm(request.POST)
    try:
        if request.POST.get("action") == "remove":
            services.membership_remove(membership=membership)
            messages.success(request, f"{membership.user.username} no longer has access to this project.")
        elif form.is_valid():
            services.membership_change_role(membership=membership, role=form.cleaned_data["role"])
            messages.success(request, f"{membership.user.username} is now {membership.get_role_display().lower()}.")
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    if membership.user_id == request.user.id and not Project.objects.for_user(request.user).filter(pk=project.pk).exists():
        return redirect("project_list")
    return redirect("project_members", slug=project.slug)
