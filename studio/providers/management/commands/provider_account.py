"""Create or update a provider account from a script; the key never appears on the command line."""

import os
import sys

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from studio.providers.models import Protocol, ProviderAccount


class Command(BaseCommand):
    help = (
        "Create or update a provider account. The API key is read from an environment variable "
        "(--api-key-env NAME) or from standard input (--api-key-stdin), never from the command line."
    )

    def add_arguments(self, parser):
        parser.add_argument("--name", required=True, help="The account's unique name.")
        parser.add_argument("--provider", choices=Protocol.values, help="Protocol; required for a new account.")
        parser.add_argument("--base-url", help="For example https://api.modelmax.io; required for a new account.")
        source = parser.add_mutually_exclusive_group()
        source.add_argument("--api-key-env", metavar="VARIABLE", help="Environment variable holding the key.")
        source.add_argument("--api-key-stdin", action="store_true", help="Read the key from standard input.")
        parser.add_argument("--notes")
        state = parser.add_mutually_exclusive_group()
        state.add_argument("--enable", dest="enabled", action="store_true", default=None)
        state.add_argument("--disable", dest="enabled", action="store_false")

    def handle(self, *args, name, provider, base_url, api_key_env, api_key_stdin, notes, enabled, **options):
        account = ProviderAccount.objects.filter(name=name).first()
        created = account is None
        if created:
            if not (provider and base_url and (api_key_env or api_key_stdin)):
                raise CommandError("A new account needs --provider, --base-url and --api-key-env or --api-key-stdin.")
            account = ProviderAccount(name=name)
        for field, value in [("provider", provider), ("base_url", base_url), ("notes", notes), ("enabled", enabled)]:
            if value is not None:
                setattr(account, field, value)
        key = self.read_key(api_key_env, api_key_stdin)
        if key:
            account.set_api_key(key)
        try:
            account.full_clean()
        except ValidationError as error:
            raise CommandError("; ".join(f"{f}: {' '.join(m)}" for f, m in error.message_dict.items())) from None
        account.save()
        verb = "Created" if created else "Updated"
        self.stdout.write(self.style.SUCCESS(f"{verb} provider account “{account.name}” (key {account.masked_key})."))

    def read_key(self, env_name, from_stdin):
        if env_name:
            key = os.environ.get(env_name, "").strip()
            if not key:
                raise CommandError(f"The environment variable {env_name} is empty or not set.")
            return key
        if from_stdin:
            key = sys.stdin.readline().strip()
            if not key:
                raise CommandError("No API key arrived on standard input.")
            return key
        return ""
