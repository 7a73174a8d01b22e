"""Run the whole studio in the foreground: web server, task cluster and provider sandbox.

Ctrl-C (or SIGTERM) stops every process; if one of them exits, the others are stopped too.
"""

import shlex
import sys
from urllib.parse import urlsplit

from django.conf import settings
from django.core.management.base import BaseCommand
from honcho import manager as honcho_manager
from honcho.manager import Manager

from studio.jobs.management.commands.qcluster import STOP_SECONDS

# honcho SIGKILLs what still runs this long after the first process stopped. qcluster bounds its own stop
# (STOP_SECONDS: the poller, then the task cluster), so this is only a backstop for a process that hangs,
# set a little longer so that a cluster still stopping in order is never cut off (honcho's default, 5 s,
# could be).
honcho_manager.KILL_WAIT = STOP_SECONDS + 2


class Command(BaseCommand):
    help = "Start the web server, the django-q2 cluster and the provider sandbox together; Ctrl-C stops all."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--no-sandbox", action="store_true", help="Do not start the provider sandbox.")

    def handle(self, *args, host, port, no_sandbox, **options):
        manage = [sys.executable, "manage.py"]
        manager = Manager()
        for name, command in self.processes(manage, host, port, sandbox=not no_sandbox):
            # honcho runs each command with `sh -c`; `exec` leaves no shell in between, so each process gets
            # honcho's SIGTERM itself and honcho reports its own exit status.
            manager.add_process(name, f"exec {shlex.join(command)}")
        self.stdout.write(self.style.SUCCESS(f"\nStudio is starting at http://{host}:{port}/  (Ctrl-C stops it)\n"))
        self.stdout.flush()
        manager.loop()
        sys.exit(manager.returncode or 0)

    def processes(self, manage, host, port, *, sandbox):
        processes = [
            ("web", [*manage, "runserver", "--noreload", f"{host}:{port}"]),
            ("cluster", [*manage, "qcluster"]),
        ]
        if sandbox:
            sandbox_url = urlsplit(settings.STUDIO_SANDBOX_URL)
            processes.append(
                ("sandbox", [*manage, "sandbox", "--host", sandbox_url.hostname, "--port", str(sandbox_url.port or 80)])
            )
        return processes
