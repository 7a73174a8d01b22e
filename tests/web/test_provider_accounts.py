"""Provider API keys: encrypted at rest, write-only in the admin, never in a page or a log."""

import io
import logging

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse

from studio.core.crypto import KeyDecryptionError
from studio.projects.models import Membership, Project, Role
from studio.providers.models import ProviderAccount

pytestmark = pytest.mark.django_db

CANARY = "sk-canary-7f3a9c1e5b2d4f6a8c0e"


@pytest.fixture
def keys(settings):
    first, second = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.STUDIO_ENCRYPTION_KEYS = [first]
    return first, second


def make_account(key=CANARY, name="acme-qingbo"):
    account = ProviderAccount(provider="qingbo", name=name, base_url="https://qingbo.dev")
    account.set_api_key(key)
    account.save()
    return account


def test_key_is_encrypted_at_rest_and_decrypts(keys):
    account = make_account()
    stored = ProviderAccount.objects.values_list("api_key_ciphertext", flat=True).get(pk=account.pk)
    assert CANARY not in stored
    assert ProviderAccount.objects.get(pk=account.pk).api_key == CANARY
    assert account.api_key_last4 == CANARY[-4:]


def test_a_key_no_configured_key_decrypts_raises_a_clear_error(keys, settings):
    account = make_account()
    settings.STUDIO_ENCRYPTION_KEYS = [keys[1]]
    with pytest.raises(KeyDecryptionError, match="cannot be decrypted with any key in STUDIO_ENCRYPTION_KEYS"):
        ProviderAccount.objects.get(pk=account.pk).api_key


def test_rotation_re_encrypts_with_the_first_key(keys, settings):
    old, new = keys
    account = make_account()
    settings.STUDIO_ENCRYPTION_KEYS = [new, old]
    out = io.StringIO()
    call_command("rotate_encryption_keys", stdout=out)
    assert "Re-encrypted 1 API key" in out.getvalue()
    settings.STUDIO_ENCRYPTION_KEYS = [new]
    assert ProviderAccount.objects.get(pk=account.pk).api_key == CANARY


def test_rotation_stops_without_changing_anything_when_a_key_is_missing(keys, settings):
    old, new = keys
    readable = make_account()
    settings.STUDIO_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    make_account(key="sk-other-12345678", name="other")
    before = ProviderAccount.objects.get(pk=readable.pk).api_key_ciphertext
    with pytest.raises(CommandError, match="Nothing was changed"):
        call_command("rotate_encryption_keys", stdout=io.StringIO())
    assert ProviderAccount.objects.get(pk=readable.pk).api_key_ciphertext == before


@pytest.fixture
def admin_client_with_canary(client, django_user_model, keys):
    admin = django_user_model.objects.create_superuser("root", "root@example.com", "pw")
    client.force_login(admin)
    account = make_account()
    project = Project.objects.create(name="Canary project")
    Membership.objects.create(project=project, user=admin, role=Role.OWNER)
    return client, account, project


def test_admin_never_shows_the_key(admin_client_with_canary):
    client, account, project = admin_client_with_canary
    pages = [
        reverse("admin:index"),
        reverse("admin:providers_provideraccount_changelist"),
        reverse("admin:providers_provideraccount_change", args=[account.pk]),
        reverse("admin:providers_provideraccount_history", args=[account.pk]),
        reverse("admin:providers_provideraccount_add"),
        reverse("admin:providers_provideraccount_delete", args=[account.pk]),
        reverse("project_list"),
        reverse("project_detail", args=[project.slug]),
        reverse("project_members", args=[project.slug]),
    ]
    for url in pages:
        html = client.get(url).content.decode()
        assert CANARY not in html, url
        assert account.api_key_ciphertext not in html, url
    changelist = client.get(pages[1]).content.decode()
    assert f"••••{CANARY[-4:]}" in changelist


def test_saving_the_admin_form_with_an_empty_key_keeps_the_old_one(admin_client_with_canary):
    client, account, _ = admin_client_with_canary
    url = reverse("admin:providers_provideraccount_change", args=[account.pk])
    form = {"provider": "qingbo", "name": "acme-qingbo", "base_url": "https://qingbo.dev/", "api_key": "",
            "enabled": "on", "notes": "renamed notes"}
    response = client.post(url, form)
    assert response.status_code == 302
    account.refresh_from_db()
    assert account.notes == "renamed notes"
    assert account.api_key == CANARY


def test_entering_a_new_key_in_the_admin_replaces_it(admin_client_with_canary):
    client, account, _ = admin_client_with_canary
    url = reverse("admin:providers_provideraccount_change", args=[account.pk])
    form = {"provider": "qingbo", "name": "acme-qingbo", "base_url": "https://qingbo.dev/",
            "api_key": "sk-replacement-0000abcd", "enabled": "on", "notes": ""}
    client.post(url, form)
    account.refresh_from_db()
    assert account.api_key == "sk-replacement-0000abcd"
    assert account.masked_key == "••••abcd"


def test_a_new_account_needs_a_key(admin_client_with_canary):
    client, _, _ = admin_client_with_canary
    response = client.post(reverse("admin:providers_provideraccount_add"),
                           {"provider": "apimp", "name": "keyless", "base_url": "https://apimp.example", "api_key": ""})
    assert response.status_code == 200
    assert "A new account needs an API key." in response.content.decode()
    assert not ProviderAccount.objects.filter(name="keyless").exists()


def test_the_canary_key_never_reaches_a_log_line(keys, caplog):
    caplog.set_level(logging.DEBUG)
    account = make_account()
    key = ProviderAccount.objects.get(pk=account.pk).api_key
    logger = logging.getLogger("studio.test")
    logger.info("calling provider with key %s", key)
    logger.warning("headers were {'Authorization': 'Bearer %s'}", key)
    try:
        raise RuntimeError(f"upstream said: bad key {key}")
    except RuntimeError:
        logger.exception("request failed")
    assert caplog.records, "nothing was logged"
    for record in caplog.records:
        assert CANARY not in record.getMessage()
        assert CANARY not in (record.exc_text or "")
    assert CANARY not in caplog.text


def test_provider_account_command_reads_the_key_from_the_environment(keys, monkeypatch):
    monkeypatch.setenv("QINGBO_KEY", CANARY)
    out = io.StringIO()
    call_command("provider_account", "--provider", "qingbo", "--name", "scripted", "--base-url", "https://qingbo.dev",
                 "--api-key-env", "QINGBO_KEY", stdout=out)
    assert "Created provider account “scripted”" in out.getvalue()
    assert CANARY not in out.getvalue()
    assert ProviderAccount.objects.get(name="scripted").api_key == CANARY


def test_provider_account_command_updates_from_standard_input(keys, monkeypatch):
    make_account(name="scripted")
    monkeypatch.setattr("sys.stdin", io.StringIO("sk-from-stdin-9999\n"))
    call_command("provider_account", "--name", "scripted", "--api-key-stdin", "--disable", stdout=io.StringIO())
    account = ProviderAccount.objects.get(name="scripted")
    assert account.api_key == "sk-from-stdin-9999"
    assert account.enabled is False
    assert account.base_url == "https://qingbo.dev"


def test_provider_account_command_refuses_a_key_on_the_command_line(keys):
    with pytest.raises(CommandError):
        call_command("provider_account", "--name", "x", "--provider", "qingbo", "--base-url", "https://q.dev",
                     "--api-key", CANARY)


def test_provider_account_command_says_what_a_new_account_lacks(keys):
    with pytest.raises(CommandError, match="needs --provider, --base-url"):
        call_command("provider_account", "--name", "half", "--provider", "qingbo")


def test_an_error_report_masks_a_key_held_in_a_local_variable(keys, rf):
    from django.views.debug import ExceptionReporter

    account = make_account()
    request = rf.post("/somewhere", {"api_key": CANARY})

    def call_provider(key):
        raise RuntimeError("provider said no")

    try:
        call_provider(ProviderAccount.objects.get(pk=account.pk).api_key)
    except RuntimeError:
        import sys

        report = ExceptionReporter(request, *sys.exc_info()).get_traceback_html()
    assert "provider said no" in report
    assert CANARY not in report
