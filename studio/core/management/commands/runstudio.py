"""Run the whole studio in the foreground: web server, task cluster and provider sandbox.

The web server is gunicorn (deploy/gunicorn.conf.py) with DEBUG off, as in production, unless DEBUG=1 asks for
it; `--dev` (`make dev`) runs Django's autoreloading development server with DEBUG on instead. Secrets not given
are generated into the data folder either way.

Ctrl-C (or SIGTERM) stops every process; if one of them exits, the others are stopped too.
"""

import contextlib
import os
import shlex
import socket
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.staticfiles.finders import get_finders
from django.core.management.base import BaseCommand
from honcho import manager as honcho_manager
from honcho.manager import Manager

from studio.jobs.management.commands.qcluster import STOP_SECONDS
from studio.settings import env_bool

# honcho SIGKILLs what still runs this long after the first process stopped. qcluster bounds its own stop
# (STOP_SECONDS: the poller, then the task cluster) and gunicorn its own (graceful_timeout, 5 s), so this is only
# a backstop for a process that hangs, set a little longer so that a cluster still stopping in order is never
# cut off (honcho's default, 5 s, could be).
honcho_manager.KILL_WAIT = STOP_SECONDS + 2

LOOPBACK_NAMES = ["localhost", "127.0.0.1", "[::1]"]
ALL_ADDRESSES = {"0.0.0.0", "::", ""}


class Command(BaseCommand):
    help = "Start the web server, the django-q2 cluster and the provider sandbox together; Ctrl-C stops all."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--no-sandbox", action="store_true", help="Do not start the provider sandbox.")
        parser.add_argument("--dev", action="store_true",
                            help="Django's development server (reloads on code changes) with DEBUG on.")

    def handle(self, *args, host, port, no_sandbox, dev, **options):
        manage = [sys.executable, "manage.py"]
        env = self.environment(host, port, dev=dev, sandbox=not no_sandbox)
        if env["DEBUG"] == "0":
            self.collect_static(manage, env)
        manager = Manager()
        for name, command in self.processes(manage, host, port, dev=dev, sandbox=not no_sandbox):
            # honcho runs each command with `sh -c`; `exec` leaves no shell in between, so each process gets
            # honcho's SIGTERM itself and honcho reports its own exit status.
            manager.add_process(name, f"exec {shlex.join(command)}", env=env, cwd=str(settings.BASE_DIR))
        self.stdout.write(self.style.SUCCESS(f"\nStudio is starting at http://{host}:{port}/  (Ctrl-C stops it)"))
        if host in ALL_ADDRESSES:
            self.stdout.write(f"It answers to {', '.join(env['ALLOWED_HOSTS'].split(','))} "
                              "(ALLOWED_HOSTS names others)")
        self.stdout.write("")
        self.stdout.flush()
        manager.loop()
        sys.exit(manager.returncode or 0)

    def environment(self, host, port, *, dev, sandbox):
        """What every process runs with: the caller's environment, with what it leaves unset filled in for a
        studio on this machine at host:port."""
        env = dict(os.environ)
        # Production's settings unless DEBUG=1 asks for the debug pages (which list every URL to anyone).
        env["DEBUG"] = "1" if dev or env_bool("DEBUG", False) else "0"
        # Secrets not given are generated into the data folder, as with DEBUG on.
        env.setdefault("STUDIO_LOCAL_SECRETS", "1")
        env.setdefault("ALLOWED_HOSTS", ",".join(host_names(host)))
        # Plain HTTP (so no Secure cookies, HSTS or redirect), and the sandbox fetches images from here.
        url_host = "127.0.0.1" if host in ALL_ADDRESSES else (f"[{host}]" if ":" in host else host)
        env.setdefault("STUDIO_PUBLIC_URL", f"http://{url_host}:{port}")
        if sandbox:
            # Videos come from the sandbox started here, on loopback: downloads may fetch from it (and only it).
            env.setdefault("STUDIO_DOWNLOAD_ALLOW_HOSTS", urlsplit(settings.STUDIO_SANDBOX_URL).netloc)
        return env

    def collect_static(self, manage, env):
        """With DEBUG off, pages link to hashed and compressed static files: collect them when any changed
        (compressing takes seconds)."""
        manifest = Path(settings.STATIC_ROOT) / "staticfiles.json"
        if manifest.exists():
            built = manifest.stat().st_mtime
            sources = (Path(storage.path(path)) for finder in get_finders() for path, storage in finder.list([]))
            if all(source.stat().st_mtime <= built for source in sources):
                return
        self.stdout.write("Collecting static files…")
        self.stdout.flush()
        subprocess.run([*manage, "collectstatic", "--noinput", "-v0"], env=env, cwd=settings.BASE_DIR, check=True)

    def processes(self, manage, host, port, *, dev, sandbox):
        if dev:
            web = [*manage, "runserver", f"{host}:{port}"]
        else:
            bind = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
            web = [sys.executable, "-m", "gunicorn", "--config", "deploy/gunicorn.conf.py", "--bind", bind]
        processes = [("web", web), ("cluster", [*manage, "qcluster"])]
        if sandbox:
            sandbox_url = urlsplit(settings.STUDIO_SANDBOX_URL)
            processes.append(
                ("sandbox", [*manage, "sandbox", "--host", sandbox_url.hostname, "--port", str(sandbox_url.port or 80)])
            )
        return processes


def host_names(host):
    """The Host headers a server listening on `host` accepts: loopback's, and the address it listens on (for all
    addresses, this machine's names and addresses, as the neighbours who share it reach it)."""
    names = machine_names() if host in ALL_ADDRESSES else [host]
    return list(dict.fromkeys([*LOOPBACK_NAMES, *(f"[{name}]" if ":" in name else name for name in names)]))


def machine_names():
    name = socket.gethostname()
    found = [name, socket.getfqdn()]
    with contextlib.suppress(OSError):
        found += [info[4][0] for info in socket.getaddrinfo(name, None)]
    for family, nowhere in ((socket.AF_INET, "192.0.2.1"), (socket.AF_INET6, "2001:db8::1")):
        # Connecting a UDP socket sends nothing; it picks the address this machine uses on its default route.
        with contextlib.suppress(OSError), socket.socket(family, socket.SOCK_DGRAM) as probe:
            probe.connect((nowhere, 9))
            found.append(probe.getsockname()[0])
    return [address for address in found if address and "%" not in address]
