"""Provider accounts (with encrypted API keys) and the price table behind cost estimates."""

from django.db import models
from django.utils import timezone

from studio.core import crypto
from studio.core.redaction import remember_secret


class Protocol(models.TextChoices):
    MODELMAX = "modelmax", "ModelMax (queue API)"
    QINGBO = "qingbo", "QWave / qingbo (task API)"
    APIMP = "apimp", "APIMP (generate gateway)"
    VEOQUERY = "veoquery", "Veo reseller (video/create + query)"
    UNIALL = "uniall", "UniAll (New-API video generations)"


class ProviderAccountQuerySet(models.QuerySet):
    def enabled(self):
        return self.filter(enabled=True)


class ProviderAccount(models.Model):
    """One account at one provider. A sandbox account is simply one whose base URL points at the sandbox."""

    provider = models.CharField(max_length=20, choices=Protocol.choices)
    name = models.CharField(max_length=80, unique=True)
    base_url = models.URLField(max_length=300, help_text="For example https://api.modelmax.io")
    api_key_ciphertext = models.TextField(editable=False, blank=True)
    api_key_last4 = models.CharField(max_length=4, editable=False, blank=True)
    enabled = models.BooleanField(default=True)
    poll_seconds = models.FloatField(
        null=True, blank=True,
        help_text="Seconds between status checks. Empty: the provider's recommended pace.",
    )
    max_requests_per_minute = models.PositiveIntegerField(
        null=True, blank=True,
        help_text="Upper bound on requests to this account per minute, shared by every worker. Empty: no limit.",
    )
    notes = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ProviderAccountQuerySet.as_manager()

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return f"{self.name} ({self.get_provider_display()})"

    def first_poll_delay(self, adapter):
        return self.poll_seconds if self.poll_seconds is not None else adapter.first_poll_seconds

    def poll_interval(self, adapter):
        return self.poll_seconds if self.poll_seconds is not None else adapter.poll_seconds

    def set_api_key(self, raw_key):
        raw_key = raw_key.strip()
        self.api_key_ciphertext = crypto.encrypt(raw_key)
        self.api_key_last4 = raw_key[-4:]
        remember_secret(raw_key)

    @property
    def api_key(self):
        """The decrypted key; raises crypto.KeyDecryptionError rather than ever returning ciphertext."""
        if not self.api_key_ciphertext:
            return ""
        key = crypto.decrypt(self.api_key_ciphertext, what=f"API key of provider account “{self.name}”")
        remember_secret(key)
        return key

    @property
    def masked_key(self):
        return f"••••{self.api_key_last4}" if self.api_key_last4 else "not set"

    def rotate_api_key(self):
        if self.api_key_ciphertext:
            self.api_key_ciphertext = crypto.rotate(
                self.api_key_ciphertext, what=f"API key of provider account “{self.name}”"
            )


AUDIO_CHOICES = [("", "Either"), ("on", "With audio"), ("off", "Silent")]


class ModelPrice(models.Model):
    """What a second of video costs on one provider's model, optionally for one resolution or audio setting.

    The most specific row wins: (resolution, audio) over (resolution, any) over (any, any).
    """

    provider = models.CharField(max_length=20, choices=Protocol.choices)
    model = models.CharField(max_length=80)
    resolution = models.CharField(max_length=10, blank=True, help_text="Empty means any resolution.")
    audio = models.CharField(max_length=3, choices=AUDIO_CHOICES, blank=True, help_text="Empty means either.")
    price_per_second = models.DecimalField(max_digits=8, decimal_places=4)
    currency = models.CharField(max_length=3, default="USD")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["provider", "model", "resolution"]
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "model", "resolution", "audio"],
                name="one_price_per_model_variant",
            )
        ]

    def __str__(self):
        variant = " ".join(filter(None, [self.resolution, self.get_audio_display() if self.audio else ""]))
        return f"{self.provider}/{self.model} {variant}".strip()


class RequestWindow(models.Model):
    """Requests made to one account in one minute: the shared counter behind max_requests_per_minute."""

    account = models.ForeignKey(ProviderAccount, on_delete=models.CASCADE, related_name="+")
    minute = models.BigIntegerField(help_text="Unix time // 60.")
    count = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["account", "minute"], name="one_window_per_minute")]


class AccountHealth(models.Model):
    """How an account has been answering lately, and its circuit breaker.

    A provider fault is an answer that is no answer: a timeout, a broken or refused connection, a 5xx,
    something unreadable. After `STUDIO_BREAKER_FAILURES` of them in a row the account is *paused*
    until `paused_until`: nothing is sent to it, except one probe per cooling period, whose success
    resumes it. Written by studio.providers.health; read by the admin and the composer.
    """

    account = models.OneToOneField(ProviderAccount, primary_key=True, on_delete=models.CASCADE, related_name="health")
    consecutive_failures = models.PositiveIntegerField(default=0)
    window_started_at = models.DateTimeField(default=timezone.now)
    calls = models.PositiveIntegerField(default=0, help_text="Calls since window_started_at.")
    failures = models.PositiveIntegerField(default=0, help_text="Provider faults since window_started_at.")
    last_success_at = models.DateTimeField(null=True, blank=True)
    last_failure_at = models.DateTimeField(null=True, blank=True)
    last_failure = models.TextField(blank=True)
    paused_at = models.DateTimeField(null=True, blank=True)
    paused_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "account health"

    def __str__(self):
        return f"Health of {self.account}"

    def is_paused(self, now=None):
        return self.paused_until is not None and self.paused_until > (now or timezone.now())

    @property
    def error_rate(self):
        return self.failures / self.calls if self.calls else 0.0
