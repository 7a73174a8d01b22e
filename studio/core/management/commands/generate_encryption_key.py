from django.core.management.base import BaseCommand

from studio.core.keys import new_key


class Command(BaseCommand):
    """`manage.py generate_encryption_key` itself never gets here (manage.py runs it before the settings, see
    studio.core.keys); this is for `manage.py help` and call_command."""

    help = "Print a new key for STUDIO_ENCRYPTION_KEYS."

    def handle(self, *args, **options):
        self.stdout.write(new_key())
