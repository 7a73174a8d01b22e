from django import forms
from django.contrib import admin, messages

from studio.providers.health import health_summary, health_word, tracker
from studio.providers.models import AccountHealth, ModelPrice, ProviderAccount


class ProviderAccountForm(forms.ModelForm):
    """The API key is write-only: never rendered back, and an empty field keeps the stored key."""

    base_url = forms.URLField(
        max_length=300, assume_scheme="https",
        help_text="For example https://api.modelmax.io, or the sandbox's http://127.0.0.1:8001/modelmax",
    )
    api_key = forms.CharField(
        label="API key",
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Stored encrypted and never shown again. Leave empty to keep the current key.",
    )

    class Meta:
        model = ProviderAccount
        fields = ["provider", "name", "base_url", "api_key", "enabled", "poll_seconds", "max_requests_per_minute", "notes"]

    def clean(self):
        cleaned = super().clean()
        if not self.instance.api_key_ciphertext and not cleaned.get("api_key"):
            self.add_error("api_key", "A new account needs an API key.")
        return cleaned

    def save(self, commit=True):
        account = super().save(commit=False)
        if self.cleaned_data.get("api_key"):
            account.set_api_key(self.cleaned_data["api_key"])
        if commit:
            account.save()
        return account


@admin.register(ProviderAccount)
class ProviderAccountAdmin(admin.ModelAdmin):
    form = ProviderAccountForm
    list_display = ["name", "provider", "base_url", "key_ending", "enabled", "health_state", "updated_at"]
    list_filter = ["provider", "enabled"]
    search_fields = ["name", "base_url", "notes"]
    readonly_fields = ["health_details"]
    actions = ["resume"]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("health")

    @admin.display(description="API key")
    def key_ending(self, account):
        return account.masked_key

    @admin.display(description="Health")
    def health_state(self, account):
        return health_word(getattr(account, "health", None))

    @admin.display(description="Health")
    def health_details(self, account):
        return health_summary(getattr(account, "health", None)) if account.pk else "No calls yet."

    @admin.action(description="Resume the selected accounts now (end a pause)")
    def resume(self, request, queryset):
        resumed = AccountHealth.objects.filter(account__in=queryset).update(paused_until=None, paused_at=None,
                                                                              consecutive_failures=0)
        tracker.forget()
        self.message_user(request, f"{resumed} account(s) resumed; their next calls go out as usual.", messages.SUCCESS)


@admin.register(ModelPrice)
class ModelPriceAdmin(admin.ModelAdmin):
    list_display = ["provider", "model", "resolution", "audio", "price_per_second", "currency", "updated_at"]
    list_editable = ["price_per_second"]
    list_filter = ["provider"]
    search_fields = ["model"]
