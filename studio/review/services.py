"""Writes of reviewing: stars and picks, the review state, comments at a time code, comparisons and winners.

Each refuses a bad request with a ValidationError that says the rule, and changes nothing then.
"""

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.text import Truncator

from studio.jobs.models import ReviewState
from studio.projects.models import Role
from studio.review import selectors
from studio.review.models import Comment, Comparison, ComparisonItem, Rating

COMPARE_MIN, COMPARE_MAX = 2, 4
COMMENT_MAX_CHARS = 5000

UNCHANGED = object()


def rating_set(*, result, user, stars=UNCHANGED, picked=UNCHANGED):
    """The user's stars (1–5, or None to clear) and pick for a result; what is not given stays as it was."""
    if stars is not UNCHANGED and stars is not None and not 1 <= stars <= 5:
        raise ValidationError("A rating is 1 to 5 stars.")
    with transaction.atomic():
        rating, _ = Rating.objects.select_for_update().get_or_create(result=result, user=user)
        if stars is not UNCHANGED:
            rating.stars = stars
        if picked is not UNCHANGED:
            rating.picked = bool(picked)
        rating.save()
    return rating


def review_state_set(*, result, user, state):
    if state not in ReviewState.values:
        raise ValidationError("A review state is one of: " + ", ".join(str(label) for label in ReviewState.labels) + ".")
    result.review_state, result.review_state_by, result.review_state_at = state, user, timezone.now()
    result.save(update_fields=["review_state", "review_state_by", "review_state_at"])
    return result


def comment_add(*, result, user, body, timecode=None):
    body = body.strip()
    if not body:
        raise ValidationError({"body": "Write something first."})
    if len(body) > COMMENT_MAX_CHARS:
        raise ValidationError(
            {"body": f"A comment is at most {COMMENT_MAX_CHARS:,} characters; this one has {len(body):,}."}
        )
    if timecode is not None:
        if timecode < 0:
            raise ValidationError({"timecode": "A time code cannot be before the start of the video."})
        # A frame's worth of slack: the player's last frame starts a little before the stated duration.
        if result.duration is not None and timecode > result.duration + 0.05:
            raise ValidationError(
                {"timecode": f"The video is {result.duration:.2f} s long; {timecode:.2f} s is past its end."}
            )
    return Comment.objects.create(result=result, author=user, body=body, timecode=timecode)


def comment_delete(*, comment, user, membership):
    if comment.author_id != user.pk and not membership.allows(Role.OWNER):
        raise ValidationError("Only its author or a project owner can delete a comment.")
    comment.delete()


@transaction.atomic
def comparison_create(*, project, user, results, title="", batch=None):
    """A saved side-by-side of 2 to 4 distinct stored videos of this project, in the order given."""
    results = list(dict.fromkeys(results))
    if not COMPARE_MIN <= len(results) <= COMPARE_MAX:
        raise ValidationError(
            f"A comparison shows {COMPARE_MIN} to {COMPARE_MAX} videos; {len(results)} "
            f"{'was' if len(results) == 1 else 'were'} chosen."
        )
    if any(result.job.project_id != project.pk for result in results):
        raise ValidationError("Every video in a comparison must belong to this project.")
    comparison = Comparison.objects.create(project=project, title=title.strip()[:200], batch=batch, created_by=user)
    ComparisonItem.objects.bulk_create(
        ComparisonItem(comparison=comparison, result=result, position=position)
        for position, result in enumerate(results)
    )
    return comparison


def batch_too_small(results):
    """Why these finished videos of a batch cannot be compared yet, or "" when they can."""
    if len(results) >= COMPARE_MIN:
        return ""
    return (f"This batch has {len(results)} finished video{'' if len(results) == 1 else 's'}; "
            f"a comparison needs at least {COMPARE_MIN}.")


@transaction.atomic
def comparison_for_batch(*, batch, user):
    """The batch's own comparison: made the first time, and joined by videos that finished since (up to 4).

    Returns (comparison, videos left out because a comparison holds at most four).
    """
    results = selectors.batch_results(batch)
    refusal = batch_too_small(results)
    if refusal:
        raise ValidationError(refusal)
    shown, left_out = results[:COMPARE_MAX], results[COMPARE_MAX:]
    comparison = selectors.batch_comparison(batch)
    if comparison is None:
        title = Truncator(batch.prompt_version.text).chars(90)
        comparison = comparison_create(project=batch.project, user=user, results=shown, batch=batch, title=title)
        return comparison, left_out
    have = list(comparison.items.values_list("result_id", flat=True))
    missing = [result for result in shown if result.pk not in have][: COMPARE_MAX - len(have)]
    ComparisonItem.objects.bulk_create(
        ComparisonItem(comparison=comparison, result=result, position=len(have) + offset)
        for offset, result in enumerate(missing)
    )
    return comparison, left_out


def comparison_set_winner(*, comparison, result):
    """The comparison's winner, or none when `result` is None; only one of its own videos can win."""
    if result is not None and not comparison.items.filter(result=result).exists():
        raise ValidationError("The winner must be one of the videos in this comparison.")
    comparison.winner = result
    comparison.save(update_fields=["winner"])
    return comparison
