"""Reads of reviewing: the gallery (a fixed number of queries however many videos), a result's provenance,
and what a comparison shows."""

import json
import re
from fractions import Fraction

from django.db.models import Avg, Count, Exists, F, OuterRef, Prefetch, Q, Subquery
from django.db.models.functions import Coalesce
from django.utils.text import Truncator

from studio.jobs.media import Probe, mismatches_by_field
from studio.jobs.models import Batch, Job, JobState, Result
from studio.jobs.selectors import duration_text, media_url
from studio.projects.models import Role
from studio.providers.registry import model_spec
from studio.review.models import Comment, Comparison, ComparisonItem, Rating

PAGE_SIZE = 24


def results_for_review(user):
    """Every stored video the user may see, with its job, prompt and account, and what the team said of it."""
    mine = Rating.objects.filter(result=OuterRef("pk"), user=user)
    comments = (Comment.objects.filter(result=OuterRef("pk")).order_by().values("result")
                .annotate(n=Count("pk")).values("n"))
    return (
        Result.objects.for_user(user)
        .select_related("job__account", "job__prompt_version__prompt", "job__batch")
        .annotate(
            avg_stars=Avg("ratings__stars"),
            rating_count=Count("ratings__stars"),
            pick_count=Count("ratings", filter=Q(ratings__picked=True)),
            comment_count=Coalesce(Subquery(comments), 0),
            my_stars=Subquery(mine.values("stars")[:1]),
            my_pick=Exists(mine.filter(picked=True)),
        )
    )


def gallery_options(project):
    """The choices the gallery's filters offer: only models, providers and batches that have videos."""
    jobs = Job.objects.filter(project=project, results__isnull=False).order_by()
    models = sorted({(model, model) for model in jobs.values_list("model", flat=True).distinct()})
    providers = sorted({(p, p) for p in jobs.values_list("provider", flat=True).distinct()})
    batches = (Batch.objects.filter(project=project, jobs__results__isnull=False).distinct()
               .order_by("-created_at").values_list("pk", "name", "created_at")[:200])
    return {
        "models": models,
        "providers": providers,
        "batches": [(str(pk), f"{Truncator(name).chars(34)} · {created:%-d %b %H:%M}") for pk, name, created in batches],
    }


def gallery_results(*, project, user, filters):
    """The project's videos, filtered and sorted as the gallery asks."""
    results = results_for_review(user).filter(job__project=project)
    if filters.get("q"):
        results = results.filter(job__prompt_version__text__icontains=filters["q"])
    if filters.get("model"):
        results = results.filter(job__model=filters["model"])
    if filters.get("provider"):
        results = results.filter(job__provider=filters["provider"])
    if filters.get("batch"):
        results = results.filter(job__batch_id=filters["batch"])
    if filters.get("state"):
        results = results.filter(review_state=filters["state"])
    rating = filters.get("rating")
    if rating == "none":
        results = results.filter(avg_stars__isnull=True)
    elif rating:
        results = results.filter(avg_stars__gte=int(rating))
    picked = filters.get("picked")
    if picked == "mine":
        results = results.filter(my_pick=True)
    elif picked == "any":
        results = results.filter(pick_count__gt=0)
    elif picked == "none":
        results = results.filter(pick_count=0)
    order = {
        "oldest": ["created_at", "index", "pk"],
        "rating": [F("avg_stars").desc(nulls_last=True), "-pick_count", "-created_at", "pk"],
    }.get(filters.get("sort"), ["-created_at", "index", "-pk"])
    return results.order_by(*order)


def prepare_results(results):
    """Give each result the studio's own links to its file, poster and thumbnail strip."""
    for result in results:
        project_id = result.job.project_id
        result.video_url = media_url(project_id, result.file.name)
        result.poster_url = media_url(project_id, result.poster.name) if result.poster else ""
        result.strip_url = media_url(project_id, result.thumbnail_strip.name) if result.thumbnail_strip else ""
        result.download_name = f"job{result.job_id}-{result.job.model}-{result.index + 1}.mp4"
    return results


# One result, and how it was made --------------------------------------------------------------------------


def result_for(user, project, result_id):
    return (
        results_for_review(user).filter(job__project=project, pk=result_id)
        .select_related("job__created_by", "review_state_by").first()
    )


def neighbours(result, project):
    """The ids of the project's videos just newer and just older than this one (the gallery's order)."""
    siblings = Result.objects.filter(job__project=project).values_list("pk", flat=True)
    newer = siblings.filter(Q(created_at__gt=result.created_at) | Q(created_at=result.created_at, pk__lt=result.pk))
    older = siblings.filter(Q(created_at__lt=result.created_at) | Q(created_at=result.created_at, pk__gt=result.pk))
    return newer.order_by("created_at", "-pk").first(), older.order_by("-created_at", "pk").first()


def aspect_of(width, height):
    if not width or not height:
        return ""
    ratio = Fraction(width, height)
    for known in ("16:9", "9:16", "1:1", "4:3", "3:4", "21:9", "9:21"):
        w, h = (int(x) for x in known.split(":"))
        if abs(width / height - w / h) <= 0.02:
            return known
    return f"{ratio.numerator}:{ratio.denominator}"


LABELS = {"fps": "Frame rate", "aspect_ratio": "Aspect ratio", "audio": "Audio"}


def param_text(spec, params, name):
    """A parameter as the provider used it, in words: as asked, else the model's fixed value or its default."""
    value = spec.effective(params, name) if spec else params.get(name)
    if value is None:
        return "Default"
    if isinstance(value, bool):
        return "Yes" if value else "No"
    param = spec.param(name) if spec else None
    return f"{value}{param.unit if param else ''}"


def requested_versus_delivered(result):
    """Rows of (label, requested, delivered, problem) for every parameter asked for, and what the file is.

    `problem` is the sentence saying how the delivered file differs, on the row it concerns.
    """
    job = result.job
    spec = _spec_or_none(job)
    probe = Probe(duration=result.duration, width=result.width, height=result.height, fps=result.fps,
                  video_codec=result.video_codec, has_audio=bool(result.has_audio))
    problems = mismatches_by_field(spec, job.params, probe) if spec else {}
    delivered = {
        "duration": f"{result.duration:.2f} s" if result.duration is not None else "Unknown",
        "resolution": f"{result.width}×{result.height}" if result.width else "Unknown",
        "aspect_ratio": aspect_of(result.width, result.height) or "Unknown",
        "audio": "Yes" if result.has_audio else "No",
        "fps": f"{result.fps:g} fps" if result.fps else "Unknown",
    }

    def label(name):
        param = spec.param(name) if spec else None
        return param.label if param else LABELS.get(name) or name.replace("_", " ").capitalize()

    checked = ("duration", "resolution", "aspect_ratio", "fps", "audio")
    takes = set(spec.param_names) | set(spec.fixed) if spec else set(job.params)
    rows = [(label(name), param_text(spec, job.params, name) if name in takes else "—", delivered[name],
             problems.get(name, "")) for name in checked]
    rows += [(label(name), param_text(spec, job.params, name), "", "") for name in (spec.param_names if spec else job.params)
             if name not in checked and name not in ("prompt", "negative_prompt")]
    rows.append(("Codec", "", result.video_codec or "Unknown", ""))
    # Sentences stored for a model no longer in the catalog have no row: they are listed as they were.
    unplaced = [] if spec else list(result.mismatches)
    return rows, unplaced


def timings(job):
    """How long each stage took: waiting to be sent, at the provider, copying the video, and in all."""
    reached = {}
    for event in job.events.all():
        if event.to_state != event.from_state:
            reached.setdefault(event.to_state, event.created_at)
    finished_upstream = reached.get(JobState.DOWNLOADING)
    stages = [
        ("Created", job.created_at, None),
        ("Accepted by the provider", job.submitted_at, _between(job.created_at, job.submitted_at)),
        ("Started generating", job.started_at, _between(job.submitted_at, job.started_at)),
        ("Finished generating", finished_upstream, _between(job.started_at or job.submitted_at, finished_upstream)),
        ("Video stored", job.finished_at, _between(finished_upstream, job.finished_at)),
    ]
    total = _between(job.created_at, job.finished_at)
    return [(name, when, took) for name, when, took in stages if when], total


def _between(start, end):
    if not start or not end:
        return ""
    return duration_text(end - start) if (end - start).total_seconds() >= 1 else "<1 s"


def images_used(job):
    """The first frame, last frame and references the job sent, each with the studio's link to it."""
    uses = list(job.images.select_related("image"))
    for use in uses:
        use.url = media_url(job.project_id, use.image.file.name)
    return uses


# The address a provider calls back (qingbo's callback_url): whoever knows its token can wake the job's poll.
CALLBACK_TOKEN = re.compile(r"(/hooks/jobs/)[^/\s\"'\\]+")
MASK = "••••••"


def job_history(job, *, membership):
    """The job's history lines, each payload as indented JSON (API keys were masked when it was stored).

    The submit request carries the job's callback address, and a provider may echo it; only editors and owners
    read it (in the job's technical details), so for anyone below editor its token is masked, also in a
    payload cut to an excerpt or in the provider's own words.
    """
    events = list(job.events.all())
    shows_callback = membership.allows(Role.EDITOR)
    for event in events:
        event.payload_text = json.dumps(event.payload, indent=2, ensure_ascii=False) if event.payload else ""
        if not shows_callback:
            event.message = _mask_callback(event.message, job.webhook_token)
            event.payload_text = _mask_callback(event.payload_text, job.webhook_token)
    return events


def provider_answers(job, *, membership):
    """The job's history lines that carry a payload (the provider's raw answers), masked as job_history says."""
    return [event for event in job_history(job, membership=membership) if event.payload]


def _mask_callback(text, token):
    if token:
        text = text.replace(token, MASK)  # wherever it is, URL-encoded or not
    return CALLBACK_TOKEN.sub(rf"\g<1>{MASK}", text)


def team_ratings(result):
    return list(result.ratings.select_related("user").filter(Q(stars__isnull=False) | Q(picked=True))
                .order_by("-updated_at"))


def comments_of(result):
    return list(result.comments.select_related("author").order_by(F("timecode").asc(nulls_last=True), "created_at"))


# Comparisons ------------------------------------------------------------------------------------------------

LETTERS = "ABCD"


class CompareItem:
    def __init__(self, letter, result, is_winner):
        self.letter, self.result, self.job, self.is_winner = letter, result, result.job, is_winner


def comparison_items(comparison, user):
    """The comparison's videos in order, each with its letter and the team's ratings, in two queries."""
    order = {item.result_id: item.position for item in comparison.items.all()}
    results = prepare_results(list(results_for_review(user).filter(pk__in=order)))
    results.sort(key=lambda result: order[result.pk])
    return [CompareItem(LETTERS[i], result, result.pk == comparison.winner_id) for i, result in enumerate(results)]


def parameter_table(items):
    """Every parameter of every compared video, one row each, flagged where the videos differ."""
    rows = [
        ("Model", [item.job.model for item in items]),
        ("Provider", [f"{item.job.account.name} ({item.job.provider})" for item in items]),
        ("Prompt", [item.job.prompt_version.text for item in items]),
        ("Negative prompt", [item.job.prompt_version.negative_prompt or "—" for item in items]),
    ]
    specs = [_spec_or_none(item.job) for item in items]
    names = []
    for item, spec in zip(items, specs):
        for name in (spec.param_names if spec else item.job.params):
            if name not in names and name not in ("prompt", "negative_prompt"):
                names.append(name)
    for name in names:
        rows.append((_param_label(specs, name), [_param_value(item.job, spec, name) for item, spec in zip(items, specs)]))
    rows += [
        ("Delivered size", [f"{i.result.width}×{i.result.height}" for i in items]),
        ("Delivered duration", [f"{i.result.duration:.2f} s" if i.result.duration else "Unknown" for i in items]),
        ("Frame rate", [f"{i.result.fps:g} fps" if i.result.fps else "Unknown" for i in items]),
        ("Sound", ["Yes" if i.result.has_audio else "No" for i in items]),
        ("Cost estimate", [f"{i.job.cost_estimate:.2f} {i.job.currency}" if i.job.cost_estimate is not None else "—"
                           for i in items]),
        ("Time to generate", [_between(i.job.created_at, i.job.finished_at) or "—" for i in items]),
    ]
    return [(label, values, len(set(values)) > 1) for label, values in rows]


def _spec_or_none(job):
    try:
        return model_spec(job.provider, job.model)
    except LookupError:
        return None  # a model since dropped from the catalog: its raw parameters still say what was asked


def _param_label(specs, name):
    param = next((spec.param(name) for spec in specs if spec and spec.param(name)), None)
    return param.label if param else name.replace("_", " ").capitalize()


def _param_value(job, spec, name):
    """What a compared video used for `name`, or "—" if its model has no such setting."""
    takes = (name in spec.param_names or name in spec.fixed) if spec else name in job.params
    return param_text(spec, job.params, name) if takes else "—"


def batch_results(batch):
    """The videos a batch produced, one per model (each job's first), in the order the jobs were sent."""
    results = (
        Result.objects.filter(job__batch=batch, job__state=JobState.SUCCEEDED, index=0)
        .select_related("job").order_by("job__created_at", "job__pk")
    )
    return list(results)


def batch_comparison(batch):
    """The comparison the batch already has (its first, if several were ever made), or None."""
    return Comparison.objects.filter(batch=batch, project=batch.project_id).order_by("created_at").first()


def comparisons_of(project, user):
    """The project's saved comparisons, newest first, each with its videos' posters (three queries in all)."""
    comparisons = list(
        Comparison.objects.for_user(user).filter(project=project)
        .select_related("created_by", "winner__job").prefetch_related(
            Prefetch("items", queryset=ComparisonItem.objects.select_related("result__job__account"))
        )
    )
    for comparison in comparisons:
        comparison.shown = prepare_results([item.result for item in comparison.items.all()])
    return comparisons
