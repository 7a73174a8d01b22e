"""The composer on the project page: live fields, image uploads, sending one prompt to many models, running a
job again, and the prompt history.

Every POST here needs an editor (viewers get 403, non-members 404). With htmx the composer's fragment is
re-rendered in place; without JavaScript the same views answer with the whole project page or a redirect.
"""

from urllib.parse import urlsplit

from django.conf import settings
from django.contrib import messages
from django.db.models import Prefetch
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST
from django_htmx.http import HttpResponseClientRedirect

from studio.core.uploads import refused_uploads
from studio.jobs import compose, forms
from studio.jobs.models import Job
from studio.jobs.selectors import prepare_cards
from studio.projects.access import project_for
from studio.projects.models import Prompt, PromptVersion, Role
from studio.providers.base import ValidationFailed

RECENT_JOBS = 24


def project_page(request, project, state, *, refused=None, status=200):
    """The project page: the composer holding `state` beside the latest job cards."""
    jobs = (
        Job.objects.for_user(request.user).filter(project=project)
        .select_related("account", "prompt_version").prefetch_related("results")[:RECENT_JOBS]
    )
    context = {
        "project": project,
        "jobs": prepare_cards(list(jobs)),
        "can_resolve": project.membership.allows(Role.EDITOR),
        "composer": _composer(request, project, state, refused=refused),
    }
    return render(request, "projects/project_detail.html", context, status=status)


@require_POST
def composer_fields(request, slug):
    """The fields for the chosen targets, checked, with everything typed so far kept. Images dropped or picked
    for a slot arrive here too: stored in the project's library, or refused saying why."""
    project = project_for(request, slug, role=Role.EDITOR)
    state = forms.state_from_post(request.POST, project=project, user=request.user)
    forms.ingest_uploads(state, request.FILES, refused=refused_uploads(request), project=project,
                         user=request.user)
    return _fields_response(request, project, state)


@require_POST
def composer_submit(request, slug):
    """One job per chosen target, created together or not at all; refused, the composer says why."""
    project = project_for(request, slug, role=Role.EDITOR)
    state = forms.state_from_post(request.POST, project=project, user=request.user)
    forms.ingest_uploads(state, request.FILES, refused=refused_uploads(request), project=project,
                         user=request.user)
    refused = None
    if not state.image_errors:
        submission = forms.submission(state)
        try:
            batch = compose.batch_create(project=project, user=request.user, **submission.batch_kwargs(state))
        except compose.BatchRefused as error:
            refused = error
    if state.image_errors or refused:
        if not request.htmx:
            return project_page(request, project, state, refused=refused, status=422)
        composer = _composer(request, project, state, refused=refused)
        return render(request, "jobs/composer.html#composer", {"project": project, "composer": composer})
    if not request.htmx:
        messages.success(request, forms.state_after_submit(state, batch).notice)
        return redirect("project_detail", slug=project.slug)
    context = {
        "project": project,
        "composer": _composer(request, project, forms.state_after_submit(state, batch)),
        "new_jobs": _cards(request, project, batch.jobs.all()),
        "can_resolve": True,
    }
    return render(request, "jobs/composer.html#submitted", context)


@require_POST
def job_run_again(request, slug, job_id):
    """The same prompt version, model, account, parameters and images, as a new batch of one."""
    project = project_for(request, slug, role=Role.EDITOR)
    job = get_object_or_404(Job.objects.for_user(request.user).filter(project=project), pk=job_id)
    try:
        new_job = compose.job_run_again(job=job, user=request.user)
    except (ValidationFailed, compose.BatchRefused) as error:
        notice = f"Not sent again: {error}"
        if request.htmx:
            return _card_with_notice(request, project, job, notice)
        messages.error(request, notice)
        return redirect("job_detail", slug=project.slug, job_id=job.pk)
    if request.htmx and _on_page(request, reverse("project_detail", args=[project.slug])):
        response = render(request, "jobs/_job_card.html", {
            "project": project, "job": _cards(request, project, [new_job])[0], "can_resolve": True})
        response["HX-Retarget"], response["HX-Reswap"] = "#job-grid", "afterbegin"
        return response
    new_page = reverse("job_detail", args=[project.slug, new_job.pk])
    if request.htmx:
        return HttpResponseClientRedirect(new_page)
    messages.success(request, f"Job {job.pk} is running again as job {new_job.pk}.")
    return redirect(new_page)


def prompt_history(request, slug):
    """Every prompt of the project, each version with the jobs it ran."""
    project = project_for(request, slug)
    jobs = Job.objects.select_related("account").prefetch_related("results").order_by("-created_at")
    versions = PromptVersion.objects.order_by("-number").prefetch_related(Prefetch("jobs", queryset=jobs))
    prompts = (
        Prompt.objects.for_user(request.user).filter(project=project).order_by("-created_at")
        .prefetch_related(Prefetch("versions", queryset=versions))
    )
    context = {"project": project, "prompts": prompts, "can_edit": project.membership.allows(Role.EDITOR)}
    return render(request, "projects/prompt_history.html", context)


# Helpers ----------------------------------------------------------------------------------------------------


def _composer(request, project, state, *, refused=None):
    return forms.composer_view(state, project=project, user=request.user, refused=refused,
                               read_only=not project.membership.allows(Role.EDITOR),
                               public_url=settings.STUDIO_PUBLIC_URL)


def _fields_response(request, project, state):
    if not request.htmx:
        return project_page(request, project, state)
    context = {"project": project, "composer": _composer(request, project, state)}
    return render(request, "jobs/composer.html#fields", context)


def _cards(request, project, jobs):
    ids = [job.pk for job in jobs]
    fresh = (Job.objects.for_user(request.user).filter(project=project, pk__in=ids)
             .select_related("account", "prompt_version").prefetch_related("results").order_by("-created_at"))
    return prepare_cards(list(fresh))


def _on_page(request, path):
    """Whether the htmx request comes from the page at `path` (the project page has the job grid)."""
    return urlsplit(request.htmx.current_url_abs_path or "").path == path


def _card_with_notice(request, project, job, notice):
    job = _cards(request, project, [job])[0]
    response = render(request, "jobs/_job_card.html",
                      {"project": project, "job": job, "can_resolve": True, "notice": notice})
    response["HX-Retarget"], response["HX-Reswap"] = f"#job-{job.pk}", "outerHTML"
    return response
