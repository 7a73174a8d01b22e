from django.conf import settings
from django.core.management.base import BaseCommand

from studio.sandbox.server import PROTOCOLS, Sandbox, SandboxServer


class Command(BaseCommand):
    help = "Run the provider sandbox: one HTTP server speaking all five provider protocols."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8001)
        parser.add_argument("--job-seconds", type=float, default=8.0, help="How long a job takes to finish.")
        parser.add_argument("--tiny-videos", action="store_true", help="Deliver 160×90 1 s clips (load tests).")

    def handle(self, *args, host, port, job_seconds, tiny_videos, **options):
        sandbox = Sandbox(job_seconds=job_seconds, media_dir=settings.DATA_DIR / "sandbox", tiny_videos=tiny_videos)
        server = SandboxServer((host, port), sandbox)
        self.stdout.write(f"Sandbox listening on {server.url}; protocols: "
                          + ", ".join(f"{server.url}/{slug}" for slug in PROTOCOLS))
        self.stdout.flush()
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()
