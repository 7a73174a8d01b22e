from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from studio.core.crypto import KeyDecryptionError
from studio.providers.models import ProviderAccount


class Command(BaseCommand):
    help = (
        "Re-encrypt every stored API key with the first key in STUDIO_ENCRYPTION_KEYS. "
        "Put the new key first, keep the old ones after it, run this, then remove the old ones."
    )

    @transaction.atomic
    def handle(self, *args, **options):
        accounts = list(ProviderAccount.objects.select_for_update().exclude(api_key_ciphertext=""))
        for account in accounts:
            try:
                account.rotate_api_key()
            except KeyDecryptionError as error:
                raise CommandError(f"{error} Nothing was changed.") from None
            account.save(update_fields=["api_key_ciphertext"])
        self.stdout.write(self.style.SUCCESS(f"Re-encrypted {len(accounts)} API key(s) with the first key."))
