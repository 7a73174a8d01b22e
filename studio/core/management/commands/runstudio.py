"""Run the whole studio in the foreground: web server and task cluster (and the sandbox once it exists).

Ctrl-C (or SIGTERM) stops every process; if one of them exits, the others are stopped too.
"""

import sys

from django.core.management.base import BaseCommand
from honcho.manager import Manager


class Command(BaseCommand):
    help = "Start the web server and the django-q2 cluster together; Ctrl-C stops both."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)

    def handle(self, *args, host, port, **options):
        manage = [sys.executable, "manage.py"]
        manager = Manager()
        for name, command in self.processes(manage, host, port):
            manager.add_process(name, " ".join(command))
        self.stdout.write(self.style.SUCCESS(f"\nStudio is starting at http://{host}:{port}/  (Ctrl-C stops it)\n"))
        self.stdout.flush()
        manager.loop()
        sys.exit(manager.returncode or 0)

    def processes(self, manage, host, port):
        return [
            ("web", [*manage, "runserver", "--noreload", f"{host}:{port}"]),
            ("cluster", [*manage, "qcluster"]),
        ]
