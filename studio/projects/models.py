"""Projects, their members, prompts with versions, and the project's image library."""

import uuid

from django.conf import settings
from django.db import models
from django.utils.text import slugify


class Role(models.TextChoices):
    VIEWER = "viewer", "Viewer"
    EDITOR = "editor", "Editor"
    OWNER = "owner", "Owner"


ROLE_RANK = {Role.VIEWER: 1, Role.EDITOR: 2, Role.OWNER: 3}

ROLE_DESCRIPTIONS = {
    Role.OWNER: "Manages members, and everything an editor does.",
    Role.EDITOR: "Generates videos, uploads images and reviews.",
    Role.VIEWER: "Looks, rates and comments.",
}


class ProjectQuerySet(models.QuerySet):
    def for_user(self, user):
        if not user.is_authenticated:
            return self.none()
        return self.filter(memberships__user=user)


class Project(models.Model):
    name = models.CharField(max_length=120)
    slug = models.SlugField(max_length=140, unique=True)
    description = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, through="Membership", related_name="projects")

    objects = ProjectQuerySet.as_manager()

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    def save(self, *args, **kwargs):
        if not self.slug:
            self.slug = unique_slug(self.name)
        super().save(*args, **kwargs)

    def role_of(self, user):
        """The user's role here, or None for a non-member."""
        if not user.is_authenticated:
            return None
        membership = self.memberships.filter(user=user).only("role").first()
        return Role(membership.role) if membership else None

    def owner_count(self):
        return self.memberships.filter(role=Role.OWNER).count()


def unique_slug(name):
    base = slugify(name)[:120] or "project"
    slug, n = base, 2
    while Project.objects.filter(slug=slug).exists():
        slug, n = f"{base}-{n}", n + 1
    return slug


class MembershipQuerySet(models.QuerySet):
    def for_user(self, user):
        return self.filter(project__in=Project.objects.for_user(user))


class Membership(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.EDITOR)
    added_at = models.DateTimeField(auto_now_add=True)

    objects = MembershipQuerySet.as_manager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "user"], name="one_membership_per_user")]
        ordering = ["user__username"]

    def __str__(self):
        return f"{self.user} ({self.role}) in {self.project}"

    def allows(self, role):
        return ROLE_RANK[Role(self.role)] >= ROLE_RANK[Role(role)]


class ProjectScopedQuerySet(models.QuerySet):
    """For everything that belongs to a project: visible only to that project's members."""

    def for_user(self, user):
        return self.filter(project__in=Project.objects.for_user(user))


class Prompt(models.Model):
    """A prompt the team iterates on. Its text lives in versions; editing one that has jobs adds a version."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="prompts")
    title = models.CharField(max_length=200, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ProjectScopedQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return self.title or f"Prompt {self.pk}"


class PromptVersionQuerySet(models.QuerySet):
    def for_user(self, user):
        return self.filter(prompt__project__in=Project.objects.for_user(user))


class PromptVersion(models.Model):
    prompt = models.ForeignKey(Prompt, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    text = models.TextField()
    negative_prompt = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    objects = PromptVersionQuerySet.as_manager()

    class Meta:
        ordering = ["prompt", "-number"]
        constraints = [models.UniqueConstraint(fields=["prompt", "number"], name="one_number_per_prompt_version")]

    def __str__(self):
        return f"{self.prompt} v{self.number}"


def image_upload_path(instance, filename):
    # Random names: an uploaded file's own name never reaches the file system.
    return f"projects/{instance.project_id}/images/{uuid.uuid4().hex}.{instance.format_extension()}"


class ImageAsset(models.Model):
    """An uploaded image, kept in the project's library: a re-encoded, metadata-free copy."""

    class Format(models.TextChoices):
        PNG = "png", "PNG"
        JPEG = "jpeg", "JPEG"
        WEBP = "webp", "WebP"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="images")
    file = models.ImageField(upload_to=image_upload_path)
    format = models.CharField(max_length=5, choices=Format.choices)
    width = models.PositiveIntegerField(default=0)
    height = models.PositiveIntegerField(default=0)
    bytes = models.PositiveBigIntegerField(default=0)
    sha256 = models.CharField(max_length=64, db_index=True)
    original_name = models.CharField(max_length=255, blank=True)
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ProjectScopedQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return self.original_name or self.file.name

    def format_extension(self):
        return {"jpeg": "jpg"}.get(self.format, self.format)
