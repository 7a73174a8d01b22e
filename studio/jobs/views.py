"""A job as people see it: a card that keeps itself current (on the project page, the grid's one updater keeps
them all current), a page with its whole history, and the decision a person makes when a submission's outcome
is unknown."""

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from studio.core.params import parse_id
from studio.jobs import services
from studio.jobs.compose_views import _on_page
from studio.jobs.models import Job, JobState
from studio.jobs.selectors import grid_update, prepare_cards
from studio.projects.access import project_for
from studio.projects.models import Role
from studio.providers.registry import model_spec
from studio.review.selectors import job_history

RESOLVE_ACTIONS = {"give_up": services.job_give_up, "submit_again": services.job_submit_again}
# The most cards of one page an update reads (a page starts with 24 and grows as jobs are made); past it, the
# cards further down are not followed and no new card is added.
MAX_PAGE_CARDS = 200


def job_card(request, slug, job_id):
    project = project_for(request, slug)
    job = _job_for(request, project, job_id)
    return render(request, "jobs/_job_card.html", _card_context(request, project, job))


@require_GET
def job_updates(request, slug):
    """The project page's one live request: the cards whose job changed since the version the page holds, the
    time of the others, jobs made elsewhere, and the updater again with the delay the server chose (none when
    nothing is left to follow)."""
    project = project_for(request, slug)
    shown, after = _page_cards(request.GET)
    update = grid_update(Job.objects.for_user(request.user).filter(project=project), shown=shown, after=after)
    context = {"project": project, "update": update, "can_resolve": project.membership.allows(Role.EDITOR)}
    return render(request, "projects/project_detail.html#job-updates", context)


def job_detail(request, slug, job_id):
    project = project_for(request, slug)
    job = _job_for(request, project, job_id)
    events = job_history(job, membership=project.membership)
    context = {**_card_context(request, project, job), "events": events, "params": _requested_params(job)}
    return render(request, "jobs/job_detail.html", context)


@require_POST
def job_resolve(request, slug, job_id):
    project = project_for(request, slug, role=Role.EDITOR)
    job = _job_for(request, project, job_id)
    resolve = RESOLVE_ACTIONS.get(request.POST.get("action"))
    notice = "Nothing changed: this job was no longer waiting for a decision."
    if resolve is None:
        notice = "Nothing changed: choose “Mark as failed” or “Submit again”."
    # The services compare-and-set, so a decision someone else made a moment ago is not overturned.
    elif job.state == JobState.SUBMIT_UNKNOWN and resolve(job=job, user=request.user):
        notice = ""
    if request.htmx:
        job.refresh_from_db()
        return render(request, "jobs/_job_card.html", {**_card_context(request, project, job), "notice": notice})
    if notice:
        messages.info(request, notice)
    back = request.headers.get("referer", "")
    if not url_has_allowed_host_and_scheme(back, {request.get_host()}, require_https=request.is_secure()):
        back = reverse("job_detail", args=[project.slug, job.pk])
    return redirect(back)


def _job_for(request, project, job_id):
    jobs = Job.objects.for_user(request.user).filter(project=project)
    jobs = jobs.select_related("account", "prompt_version").prefetch_related("results")
    return get_object_or_404(jobs, pk=job_id)


def _card_context(request, project, job):
    """A card asks for itself on the job page; in the project page's grid (an htmx request from that page), the
    grid's updater asks for it."""
    prepare_cards([job])
    in_grid = bool(request.htmx) and _on_page(request, reverse("project_detail", args=[project.slug]))
    return {"project": project, "job": job, "can_resolve": project.membership.allows(Role.EDITOR), "in_grid": in_grid}


def _page_cards(query):
    """{job id: version} of the cards the page shows (`v=<id>.<version>`; a finished card sends its id alone),
    and the newest job it was drawn with (`after`; None when missing or when the page has more cards than are
    read). A value that is not an id is left out."""
    values = query.getlist("v")
    shown = {}
    for value in values[:MAX_PAGE_CARDS]:
        job_id, _, version = value.partition(".")
        if (job_id := parse_id(job_id)) is not None:
            shown[job_id] = version
    after = query.get("after")
    after = 0 if after == "0" else parse_id(after)
    return shown, None if len(values) > MAX_PAGE_CARDS else after


def _requested_params(job):
    """(label, value) for each parameter asked for, with the labels and units the catalog gives them."""
    try:
        spec = model_spec(job.provider, job.model)
    except LookupError:
        spec = None  # a model since dropped from the catalog: its raw names still say what was asked
    rows = []
    for name, value in job.params.items():
        if name in ("prompt", "negative_prompt"):
            continue
        param = spec.param(name) if spec else None
        label = param.label if param else name.replace("_", " ").capitalize()
        if isinstance(value, bool):
            value = "Yes" if value else "No"
        rows.append((label, f"{value}{param.unit}" if param and value is not None else value))
    return rows
