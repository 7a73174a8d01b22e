"""Reviewing: the gallery, one result with how it was made, ratings and comments, and comparisons.

Any member may look, rate, pick, comment and open comparisons; setting a review state or a comparison's
winner is a decision for editors and owners. Non-members get 404 everywhere, as on every project page.
"""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST

from studio.core.params import parse_id, parse_ids
from studio.jobs.models import Batch, ReviewState
from studio.jobs.selectors import stored_results
from studio.projects.access import project_for
from studio.projects.models import Role
from studio.review import selectors, services
from studio.review.forms import CommentForm, GalleryFilters, RatingForm
from studio.review.models import Comparison


def gallery(request, slug):
    project = project_for(request, slug)
    filters = GalleryFilters(request.GET, options=selectors.gallery_options(project))
    active = filters.values()
    results = selectors.gallery_results(project=project, user=request.user, filters=active)
    page = Paginator(results, selectors.PAGE_SIZE).get_page(request.GET.get("page"))
    selectors.prepare_results(page.object_list)
    context = {"project": project, "filters": filters, "active": active, "page": page,
               "query": _query_without_page(request)}
    # Back and forward reload the whole page (htmx keeps no history snapshots here): a snapshot would bring the
    # results back with the filter fields as first rendered, not as chosen.
    fragment = request.htmx and not request.htmx.boosted and not request.htmx.history_restore_request
    template = "review/gallery.html#results" if fragment else "review/gallery.html"
    return render(request, template, context)


def result_detail(request, slug, result_id):
    project = project_for(request, slug)
    return _result_page(request, project, _result_for(request, project, result_id))


@require_POST
def result_rate(request, slug, result_id):
    project = project_for(request, slug)
    result = _result_for(request, project, result_id)
    form = RatingForm(request.POST)
    if form.is_valid():
        changes = {name: value for name, value in form.cleaned_data.items() if name in request.POST}
        if "stars" in changes:
            changes["stars"] = changes["stars"] or None  # 0 clears
        services.rating_set(result=result, user=request.user, **changes)
    return _review_panel(request, project, result_id)


@require_POST
def result_review_state(request, slug, result_id):
    project = project_for(request, slug, role=Role.EDITOR)
    result = _result_for(request, project, result_id)
    try:
        services.review_state_set(result=result, user=request.user, state=request.POST.get("state", ""))
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    return _review_panel(request, project, result_id)


@require_POST
def result_comment(request, slug, result_id):
    project = project_for(request, slug)
    result = _result_for(request, project, result_id)
    form = CommentForm(request.POST)
    if form.is_valid():
        try:
            services.comment_add(result=result, user=request.user, **form.cleaned_data)
        except ValidationError as error:
            form.add_error(None, error)  # the error names its field
        else:
            form = CommentForm()
    if form.errors and not request.htmx:
        # The whole page again, with what was written still in the form and the rule it broke beside it.
        return _result_page(request, project, result, comment_form=form, status=422)
    return _comments(request, project, result, form)


@require_POST
def comment_delete(request, slug, result_id, comment_id):
    project = project_for(request, slug)
    result = _result_for(request, project, result_id)
    comment = get_object_or_404(result.comments, pk=comment_id)
    try:
        services.comment_delete(comment=comment, user=request.user, membership=project.membership)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    return _comments(request, project, result, CommentForm())


@require_POST
def comparison_create(request, slug):
    project = project_for(request, slug)
    # The gallery posts the videos ticked on one page; one odd or unknown id refuses the whole comparison.
    ids = parse_ids(request.POST.getlist("result"), limit=selectors.PAGE_SIZE)
    results = list(selectors.results_for_review(request.user).filter(job__project=project, pk__in=ids or []))
    results.sort(key=lambda result: ids.index(result.pk))
    try:
        if ids is None or len(results) != len(ids):
            raise ValidationError("Every video in a comparison must belong to this project; nothing was saved.")
        comparison = services.comparison_create(project=project, user=request.user, results=results,
                                                title=request.POST.get("title", ""))
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
        return redirect(_back(request, reverse("gallery", args=[project.slug])))
    return redirect("comparison_detail", slug=project.slug, comparison_id=comparison.pk)


@require_http_methods(["GET", "HEAD", "POST"])
def batch_compare(request, slug, batch_id):
    """A batch's own comparison. The button (a POST, with CSRF) makes it the first time and brings in videos
    that finished since; a GET only looks, since a link (from anywhere: the session cookie is Lax) must not
    write: it goes to the comparison the batch has, or explains and offers the button."""
    project = project_for(request, slug)
    batch = get_object_or_404(Batch.objects.for_user(request.user).filter(project=project), pk=batch_id)
    if request.method != "POST":
        return _batch_compare_page(request, project, batch)
    try:
        comparison, left_out = services.comparison_for_batch(batch=batch, user=request.user)
    except ValidationError as error:
        messages.info(request, " ".join(error.messages))
        return redirect(reverse("gallery", args=[project.slug]) + f"?batch={batch.pk}")
    if left_out:
        more = "1 more video of this batch is" if len(left_out) == 1 else f"{len(left_out)} more videos of this batch are"
        messages.info(request, f"A comparison shows at most four videos; {more} in the gallery.")
    return redirect("comparison_detail", slug=project.slug, comparison_id=comparison.pk)


def comparison_detail(request, slug, comparison_id):
    project = project_for(request, slug)
    comparison = _comparison_for(request, project, comparison_id)
    items = selectors.comparison_items(comparison, request.user)
    context = {
        "project": project, "comparison": comparison, "items": items,
        "timeline_seconds": max((item.result.duration or 0 for item in items), default=0),
        "table": selectors.parameter_table(items), "can_edit": project.membership.allows(Role.EDITOR),
    }
    return render(request, "review/comparison_detail.html", context)


@require_POST
def comparison_winner(request, slug, comparison_id):
    project = project_for(request, slug, role=Role.EDITOR)
    comparison = _comparison_for(request, project, comparison_id)
    posted = request.POST.get("result", "")
    winner = None
    if posted:
        winner_id = parse_id(posted)
        if winner_id is None:
            raise Http404("No such video in this project.")
        winner = selectors.results_for_review(request.user).filter(job__project=project, pk=winner_id).first()
        if winner is None:
            raise Http404("No such video in this project.")
    try:
        services.comparison_set_winner(comparison=comparison, result=winner)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    return redirect("comparison_detail", slug=project.slug, comparison_id=comparison.pk)


def comparison_list(request, slug):
    project = project_for(request, slug)
    comparisons = selectors.comparisons_of(project, request.user)
    return render(request, "review/comparison_list.html", {"project": project, "comparisons": comparisons})


# Helpers ----------------------------------------------------------------------------------------------------


def _result_page(request, project, result, *, comment_form=None, status=200):
    job = result.job
    rows, unplaced = selectors.requested_versus_delivered(result)
    stages, total = selectors.timings(job)
    newer, older = selectors.neighbours(result, project)
    context = {
        "project": project, "result": result, "job": job, "rows": rows, "unplaced_mismatches": unplaced,
        "newer_id": newer, "older_id": older, "sample_count": len(stored_results(job)),
        "stages": stages, "total_time": total,
        "answers": selectors.provider_answers(job, membership=project.membership),
        "images": selectors.images_used(job), "comments": selectors.comments_of(result),
        "team_ratings": selectors.team_ratings(result), "comment_form": comment_form or CommentForm(),
        "can_edit": project.membership.allows(Role.EDITOR), "review_states": ReviewState.choices,
    }
    return render(request, "review/result_detail.html", context, status=status)


def _batch_compare_page(request, project, batch):
    comparison = selectors.batch_comparison(batch)
    if comparison is not None:
        return redirect("comparison_detail", slug=project.slug, comparison_id=comparison.pk)
    results = selectors.batch_results(batch)
    context = {"project": project, "batch": batch, "results": results, "compare_max": services.COMPARE_MAX,
               "refusal": services.batch_too_small(results)}
    return render(request, "review/batch_compare.html", context)


def _comments(request, project, result, form):
    """The comments after a change: their fragment for htmx (a refusal included: it says why, and htmx swaps
    it in), else back to the page."""
    if not request.htmx:
        return redirect(reverse("result_detail", args=[project.slug, result.pk]) + "#comments")
    context = {"project": project, "result": result, "comments": selectors.comments_of(result), "comment_form": form}
    return render(request, "review/result_detail.html#comments", context)


def _result_for(request, project, result_id):
    result = selectors.result_for(request.user, project, result_id)
    if result is None:
        raise Http404("No such video in this project.")
    selectors.prepare_results([result])
    return result


def _comparison_for(request, project, comparison_id):
    comparisons = Comparison.objects.for_user(request.user).filter(project=project)
    return get_object_or_404(comparisons, pk=comparison_id)


def _review_panel(request, project, result_id):
    """The stars, pick and state of a result after a change: the fragment for htmx, else the page it came from."""
    if not request.htmx:
        return redirect(_back(request, reverse("result_detail", args=[project.slug, result_id])))
    result = _result_for(request, project, result_id)
    context = {"project": project, "result": result, "can_edit": project.membership.allows(Role.EDITOR),
               "review_states": ReviewState.choices, "team_ratings": selectors.team_ratings(result),
               "compact": request.POST.get("compact") == "1"}
    return render(request, "review/_rating.html", context)


def _back(request, default):
    back = request.headers.get("referer", "")
    if url_has_allowed_host_and_scheme(back, {request.get_host()}, require_https=request.is_secure()):
        return back
    return default


def _query_without_page(request):
    query = request.GET.copy()
    query.pop("page", None)
    return query.urlencode()
