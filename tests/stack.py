"""Run a command (pytest by default) on a PostgreSQL and a Redis of its own.

    python -m tests.stack [pytest arguments]

Both servers are Debian's packages (`make test` installs them when missing), started here on throwaway data
directories and free loopback ports, with DATABASE_URL and REDIS_URL exported to pytest; they are stopped and
their data deleted however the run ends. This is a runner and not a fixture because Django reads DATABASES
before any fixture runs.

PostgreSQL refuses to run as root, so as root (CI is) its programs run as the `postgres` system user that
Debian's package creates. It runs without fsync: the data is thrown away at the end anyway.
"""

import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from glob import glob
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
START_SECONDS = 30


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def postgres_bin():
    """The newest PostgreSQL server programs: Debian keeps them off PATH, in /usr/lib/postgresql/<version>/bin."""
    found = sorted(glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(re.sub(r"\D", "", p) or 0))
    initdb = found[-1] if found else shutil.which("initdb")
    if not initdb:
        sys.exit("PostgreSQL is not installed: `make test` installs it (apt-get install postgresql).")
    return Path(initdb).parent


def as_postgres_user(command):
    """PostgreSQL refuses to run as root: as root, run its programs as the `postgres` user."""
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


@contextmanager
def postgresql(workdir):
    bindir, data, port = postgres_bin(), workdir / "postgres", free_port()
    log = workdir / "postgres.log"
    if os.geteuid() == 0:
        user = pwd.getpwnam("postgres")
        os.chown(workdir, user.pw_uid, user.pw_gid)
    run = lambda command: subprocess.run(as_postgres_user(command), check=True, stdout=subprocess.DEVNULL)  # noqa: E731
    run([str(bindir / "initdb"), "--pgdata", str(data), "--username", "postgres", "--auth", "trust",
         "--encoding", "UTF8", "--locale", "C.UTF-8", "--no-sync"])
    options = (f"-h 127.0.0.1 -p {port} -k {workdir} -c fsync=off -c synchronous_commit=off "
               "-c full_page_writes=off -c max_connections=300")
    try:
        run([str(bindir / "pg_ctl"), "start", "--pgdata", str(data), "--log", str(log), "--wait",
             "--timeout", str(START_SECONDS), "-o", options])
        yield f"postgres://postgres@127.0.0.1:{port}/studio"
    finally:
        subprocess.run(as_postgres_user([str(bindir / "pg_ctl"), "stop", "--pgdata", str(data), "--mode", "immediate",
                                         "--wait"]), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@contextmanager
def redis(workdir):
    server = shutil.which("redis-server")
    if not server:
        sys.exit("Redis is not installed: `make test` installs it (apt-get install redis-server).")
    port = free_port()
    log = workdir / "redis.log"
    process = subprocess.Popen([server, "--bind", "127.0.0.1", "--port", str(port), "--dir", str(workdir),
                                "--save", "", "--appendonly", "no", "--logfile", str(log)],
                               start_new_session=True)  # a terminal's Ctrl-C must not stop it before pytest's teardown
    try:
        deadline = time.monotonic() + START_SECONDS
        while not answers(port):
            if process.poll() is not None or time.monotonic() > deadline:
                sys.exit(f"Redis did not start:\n{log.read_text() if log.exists() else ''}")
            time.sleep(0.1)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def answers(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as connection:
            connection.sendall(b"PING\r\n")
            return connection.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def run_to_the_end(command, env):
    """Run the command and return its exit status, letting it finish its own teardown when the run is stopped
    (pytest's teardown stops the processes tests started and drops the test database). A terminal's Ctrl-C
    reaches the command too, so it is only waited for; a supervisor's SIGTERM reaches this process alone, so it
    is passed on as a Ctrl-C. A second SIGTERM kills the command."""
    process = subprocess.Popen(command, cwd=ROOT, env=env)
    stopping = []

    def stop(signum, frame):
        if signum == signal.SIGTERM:
            process.send_signal(signal.SIGKILL if stopping else signal.SIGINT)
        stopping.append(signum)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    return process.wait()


def interrupt(signum, frame):
    raise KeyboardInterrupt


def main(arguments):
    signal.signal(signal.SIGTERM, interrupt)  # while the servers start: stopped as on Ctrl-C, on the way out
    workdir = Path(tempfile.mkdtemp(prefix="studio-stack-"))
    try:
        with postgresql(workdir) as database_url, redis(workdir) as redis_url:
            env = {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": redis_url}
            print(f"PostgreSQL at {database_url}, Redis at {redis_url}", flush=True)
            return run_to_the_end([sys.executable, "-m", "pytest", *arguments], env)
    except KeyboardInterrupt:
        return 130
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
