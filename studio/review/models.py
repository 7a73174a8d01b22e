"""What reviewers say about results: ratings and picks, comments (optionally at a time code), comparisons."""

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from studio.jobs.models import Batch, Result
from studio.projects.models import Project, ProjectScopedQuerySet


class ResultScopedQuerySet(models.QuerySet):
    def for_user(self, user):
        return self.filter(result__job__project__in=Project.objects.for_user(user))


class Rating(models.Model):
    """One user's stars (1–5) and pick for one result."""

    result = models.ForeignKey(Result, on_delete=models.CASCADE, related_name="ratings")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="ratings")
    stars = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(5)]
    )
    picked = models.BooleanField(default=False)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ResultScopedQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["result", "user"], name="one_rating_per_user"),
            models.CheckConstraint(
                condition=models.Q(stars__isnull=True) | models.Q(stars__gte=1, stars__lte=5), name="stars_1_to_5"
            ),
        ]


class Comment(models.Model):
    """A note on a result; with a time code it is pinned to that moment of the video."""

    result = models.ForeignKey(Result, on_delete=models.CASCADE, related_name="comments")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    body = models.TextField()
    timecode = models.FloatField(null=True, blank=True, help_text="Seconds from the start, or empty.")
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ResultScopedQuerySet.as_manager()

    class Meta:
        ordering = ["result", "timecode", "created_at"]


class Comparison(models.Model):
    """A saved side-by-side of 2 to 4 results, with an optional winner."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="comparisons")
    title = models.CharField(max_length=200, blank=True)
    batch = models.ForeignKey(Batch, null=True, blank=True, on_delete=models.SET_NULL, related_name="comparisons")
    results = models.ManyToManyField(Result, through="ComparisonItem", related_name="comparisons")
    winner = models.ForeignKey(Result, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ProjectScopedQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]


class ComparisonItem(models.Model):
    comparison = models.ForeignKey(Comparison, on_delete=models.CASCADE, related_name="items")
    result = models.ForeignKey(Result, on_delete=models.CASCADE, related_name="+")
    position = models.PositiveSmallIntegerField()

    class Meta:
        ordering = ["comparison", "position"]
        constraints = [models.UniqueConstraint(fields=["comparison", "result"], name="result_once_per_comparison")]
