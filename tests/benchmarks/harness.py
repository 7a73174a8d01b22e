"""What the benchmark scripts share: a throwaway world (data directory, environment), processes started in
their own process groups and always stopped, and CPU time read from /proc.

Every process a benchmark starts is a session leader (start_new_session), so it and everything it forks
(django-q2's sentinel, workers, monitor and pusher) share one process group whose id is the leader's pid:
that group is what is measured, and what is killed if its leader does not stop when asked.
"""

import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _stat_fields(path):
    """Fields 3.. of a /proc stat file (the command name, which may hold spaces, cut off)."""
    with open(path) as handle:
        data = handle.read()
    return data[data.rindex(")") + 2:].split()


def group_cpu(pgid):
    """CPU seconds (user + system, plus reaped children's) of every live process in a process group, by pid."""
    seconds = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = _stat_fields(f"/proc/{entry}/stat")
        except (OSError, ValueError):
            continue
        if int(fields[2]) == pgid:  # field 5, pgrp
            seconds[int(entry)] = sum(int(value) for value in fields[11:15]) / CLOCK_TICKS  # utime..cstime
    return seconds


def thread_cpu(pid):
    """CPU seconds of each thread of one process, by thread id."""
    seconds = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return seconds
    for tid in tids:
        try:
            fields = _stat_fields(f"/proc/{pid}/task/{tid}/stat")
        except (OSError, ValueError):
            continue
        seconds[int(tid)] = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    return seconds


WAIT_LABELS = [
    (("futex",), "lock wait (GIL, queue, mutex) or idle"),
    (("nanosleep",), "sleep (SQLite busy retry, time.sleep)"),
    (("jbd2", "folio_wait", "wait_on_page", "sync_file", "file_write_and_wait", "io_schedule", "blk"),
     "disk (fsync, page I/O)"),
    (("wait_woken", "sk_wait", "do_sys_poll", "poll_schedule", "do_select", "ep_poll", "inet", "tcp",
      "unix_stream"), "network"),
]


def thread_states(pid):
    """What each thread of a process is doing now: "running" or a label for what the kernel says it waits on."""
    states = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return states
    for tid in tids:
        try:
            state = _stat_fields(f"/proc/{pid}/task/{tid}/stat")[0]
            with open(f"/proc/{pid}/task/{tid}/wchan") as handle:
                wchan = handle.read().strip()
        except (OSError, ValueError):
            continue
        if state == "R":
            label = "running"
        else:
            label = next((name for parts, name in WAIT_LABELS if any(part in wchan for part in parts)),
                         f"other ({wchan or state})")
        states[int(tid)] = label
    return states


def self_cpu():
    times = os.times()
    return times.user + times.system


def group_alive(pgid):
    return bool(group_cpu(pgid))


def wait_for(predicate, *, timeout, what, interval=0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"gave up after {timeout:.0f} s waiting for {what}")


class World:
    """A fresh data directory and the processes started in it; leaving the block stops them all and (unless
    `keep`) deletes the directory, also on Ctrl-C, SIGTERM or an exception."""

    def __init__(self, *, keep=False, prefix="studio-bench-"):
        self.keep = keep
        self.dir = Path(tempfile.mkdtemp(prefix=prefix))
        self.processes = []

    def __enter__(self):
        self._previous_sigterm = signal.signal(signal.SIGTERM, raise_keyboard_interrupt)
        return self

    def __exit__(self, *exc):
        try:
            self.stop_all()
        finally:
            signal.signal(signal.SIGTERM, self._previous_sigterm)
            if self.keep:
                print(f"kept {self.dir}", file=sys.stderr)
            else:
                shutil.rmtree(self.dir, ignore_errors=True)
        return False

    def start(self, name, argv, env):
        log = open(self.dir / f"{name}.log", "w")
        process = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
        process.name, process.log_path = name, self.dir / f"{name}.log"
        log.close()
        self.processes.append(process)
        return process

    def log_text(self, process):
        return process.log_path.read_text(errors="replace")

    def wait_for_log(self, process, text, *, timeout):
        def seen():
            if process.poll() is not None:
                raise RuntimeError(f"{process.name} exited ({process.returncode}):\n{self.log_text(process)[-3000:]}")
            return text in self.log_text(process)

        wait_for(seen, timeout=timeout, what=f"“{text}” from {process.name}", interval=0.2)

    def stop(self, process, timeout=30):
        """SIGTERM the leader (django-q2's main process then stops its sentinel and workers itself), SIGKILL
        the whole group if it has not exited after `timeout` seconds. Returns whether SIGKILL was needed."""
        if process not in self.processes:
            return False
        self.processes.remove(process)
        killed = False
        try:
            os.kill(process.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            killed = True
            _signal_group(process.pid, signal.SIGKILL)
            process.wait()
        # Children normally leave with their parent; make sure none is left behind.
        deadline = time.monotonic() + 10
        while group_alive(process.pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        if group_alive(process.pid):
            killed = True
            _signal_group(process.pid, signal.SIGKILL)
        return killed

    def stop_all(self):
        for process in reversed(list(self.processes)):
            self.stop(process)


def _signal_group(pgid, sig):
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def raise_keyboard_interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def studio_env(data_dir, *, debug=False, **extra):
    """The environment of every studio process in a benchmark: its own data directory and, unless `debug`,
    production settings (DEBUG off: no query log kept in memory, no debug-only checks)."""
    from cryptography.fernet import Fernet

    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "studio.settings",
        "STUDIO_DATA_DIR": str(data_dir),
        "PYTHONUNBUFFERED": "1",
        "DEBUG": "1" if debug else "0",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SECURE_SSL_REDIRECT": "0",
        "STUDIO_DOWNLOAD_ALLOW_HOSTS": "127.0.0.1",
    }
    if not debug:
        env["SECRET_KEY"] = Fernet.generate_key().decode() * 2
        env["STUDIO_ENCRYPTION_KEYS"] = Fernet.generate_key().decode()
    for name in ("DATABASE_URL", "REDIS_URL", "STUDIO_SQLITE_PATH", "STUDIO_MEDIA_ROOT", "STUDIO_FAILPOINTS",
                 "DJANGO_ALLOW_ASYNC_UNSAFE"):
        env.pop(name, None)
    env.update({name: str(value) for name, value in extra.items()})
    return env


def percentile(values, share):
    """Nearest-rank percentile (share in 0..100) of a list; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(share / 100 * len(ordered))))
    return ordered[rank - 1]
