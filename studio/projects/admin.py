from django.contrib import admin

from studio.projects.models import ImageAsset, Membership, Project, Prompt, PromptVersion


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 1
    autocomplete_fields = ["user"]


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "created_by", "created_at"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [MembershipInline]


class PromptVersionInline(admin.TabularInline):
    model = PromptVersion
    extra = 0
    readonly_fields = ["number", "text", "negative_prompt", "created_by", "created_at"]


@admin.register(Prompt)
class PromptAdmin(admin.ModelAdmin):
    list_display = ["__str__", "project", "created_at"]
    list_filter = ["project"]
    inlines = [PromptVersionInline]


@admin.register(ImageAsset)
class ImageAssetAdmin(admin.ModelAdmin):
    list_display = ["__str__", "project", "format", "width", "height", "created_at"]
    list_filter = ["project", "format"]
    readonly_fields = ["sha256", "width", "height", "bytes"]
