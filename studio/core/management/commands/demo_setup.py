"""Create the demo admin and demo project; safe to run any number of times."""

import os

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from studio.core.devsecrets import load_dev_secrets
from studio.projects.models import Membership, Project, Role
from studio.providers.models import Protocol, ProviderAccount
from studio.providers.pricing import load_default_prices

DEMO_SLUG = "demo"


class Command(BaseCommand):
    help = "Create (or keep) the demo admin user and the demo project. Idempotent."

    def handle(self, *args, **options):
        user, password = self.ensure_admin()
        project = self.ensure_demo_project(user)
        self.ensure_sandbox_accounts()
        if created_prices := load_default_prices():
            self.stdout.write(self.style.SUCCESS(f"Loaded {created_prices} default prices (edit them in the admin)."))
        self.stdout.write(f"Demo project: {project.name} (/p/{project.slug}/)")
        if password:
            self.stdout.write(f"Sign in as: {user.username} / {password}")
        else:
            self.stdout.write(f"Sign in as: {user.username} (password as set earlier)")

    def ensure_admin(self):
        username = os.environ.get("STUDIO_ADMIN_USERNAME", "admin")
        password = os.environ.get("STUDIO_ADMIN_PASSWORD", "")
        if not password and settings.DEBUG:
            password = load_dev_secrets(settings.DATA_DIR)["admin_password"]
        User = get_user_model()
        user = User.objects.filter(username=username).first()
        if user is None:
            if not password:
                raise CommandError("Set STUDIO_ADMIN_PASSWORD to create the demo admin when DEBUG is off.")
            user = User.objects.create_superuser(username=username, email="", password=password)
            self.stdout.write(self.style.SUCCESS(f"Created admin user “{username}”."))
        elif os.environ.get("STUDIO_ADMIN_PASSWORD"):
            user.set_password(password)
            user.save(update_fields=["password"])
        elif not user.check_password(password):
            password = ""
        return user, password

    def ensure_sandbox_accounts(self):
        """One account per protocol, all pointing at the local sandbox (its keys are not secrets)."""
        for protocol in Protocol.values:
            account, created = ProviderAccount.objects.get_or_create(
                name=f"Sandbox {protocol}",
                defaults={
                    "provider": protocol,
                    "base_url": f"{settings.STUDIO_SANDBOX_URL}/{protocol}",
                    "notes": "The built-in sandbox: no real provider is called and nothing is charged.",
                    "poll_seconds": 1.0,
                },
            )
            if created:
                account.set_api_key(f"sk-sandbox-demo-{protocol}")
                account.save()
                self.stdout.write(self.style.SUCCESS(f"Created sandbox account “{account.name}”."))

    def ensure_demo_project(self, user):
        project, created = Project.objects.get_or_create(
            slug=DEMO_SLUG,
            defaults={
                "name": "Demo project",
                "description": "A place to try the studio: every provider here is the built-in sandbox.",
                "created_by": user,
            },
        )
        Membership.objects.get_or_create(project=project, user=user, defaults={"role": Role.OWNER})
        if created:
            self.stdout.write(self.style.SUCCESS("Created the demo project."))
        return project
