"""Processes that end together: a child never outlives the process that started it, and only its parent
tells it to stop.

`manage.py qcluster` starts django-q2's sentinel, which starts the workers, the monitor and the pusher.
Two rules hold for each of those children (see children_follow_this_process):

* **It dies with its parent.** Linux sends it SIGKILL the moment its parent dies (prctl PR_SET_PDEATHSIG),
  even when the parent was killed with `kill -9` and could clean nothing up; elsewhere a thread checks
  twice a second whether it has been handed over to another parent.
* **It takes SIGTERM only from its parent, and ignores SIGINT.** A terminal's Ctrl-C, honcho and systemd
  signal a whole process group (or cgroup) at once. Had the children died of it, workers would be cut off
  mid-task while the main process was still stopping things in order, and django-q2's stop event would
  wait forever on a sentinel that died while waiting on it. So the main process alone decides how its
  children stop. A SIGTERM from the parent still works as usual: the sentinel uses one to end a worker
  whose task outlived its timeout.
"""

import ctypes
import logging
import multiprocessing
import os
import signal
import threading
import time
from multiprocessing import util

logger = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
PARENT_CHECK_SECONDS = 0.5
TERMINATION = {signal.SIGINT, signal.SIGTERM}


def _find_prctl():
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):  # not Linux
        return None


# Looked up here, in the parent: a child forked from a process with threads should not need the loader.
_prctl = _find_prctl()


def children_follow_this_process():
    """From now on, every process that multiprocessing starts from this one (and those start, and so on)
    calls follow_parent() before anything else. Call it before starting them."""
    # multiprocessing keeps after-fork hooks by weak reference to an object; a module's function lives on.
    util.register_after_fork(follow_parent, lambda hook: hook())


def follow_parent():
    """In a process multiprocessing has just started: die with the parent, obey only its SIGTERM."""
    parent_pid = multiprocessing.parent_process().pid
    die_with_parent(parent_pid)
    take_termination_only_from(parent_pid)


def die_with_parent(parent_pid):
    """Make this process, just forked from `parent_pid`, die as soon as its parent does.

    On Linux the death signal follows the parent *thread* that forked: fork from a thread that lives as long
    as the parent process (django-q2 forks from each process's main thread).
    """
    arguments = (ctypes.c_int(PR_SET_PDEATHSIG), ctypes.c_ulong(signal.SIGKILL), *[ctypes.c_ulong(0)] * 3)
    if _prctl is None or _prctl(*arguments) != 0:
        threading.Thread(target=_watch_parent, args=(parent_pid,), name="watch-parent", daemon=True).start()
    # The parent may have died before the request took effect; then no signal would ever come.
    if os.getppid() != parent_pid:
        os.kill(os.getpid(), signal.SIGKILL)


def _watch_parent(parent_pid):
    while os.getppid() == parent_pid:
        time.sleep(PARENT_CHECK_SECONDS)
    os.kill(os.getpid(), signal.SIGKILL)


def take_termination_only_from(parent_pid):
    """Block SIGINT and SIGTERM in this process (its later threads and children inherit that); one thread
    takes them as they come, lets a SIGTERM from `parent_pid` act as usual and drops all others."""
    if not hasattr(signal, "sigwaitinfo"):  # macOS: the process keeps the usual signal handling
        return
    signal.pthread_sigmask(signal.SIG_BLOCK, TERMINATION)
    threading.Thread(target=_take_termination, args=(parent_pid,), name="parent-signals", daemon=True).start()


def _take_termination(parent_pid):
    while True:
        received = signal.sigwaitinfo(TERMINATION)
        if received.si_signo == signal.SIGTERM and received.si_pid == parent_pid:
            # Delivered to this thread alone, where it is unblocked: the default action ends the process.
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
            signal.raise_signal(signal.SIGTERM)
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})


class StopSignals:
    """SIGTERM and SIGINT as a request to stop, which the main thread acts on between its own steps.

    The handler only notes the signal. Python runs a handler in the main thread between two bytecodes, maybe
    while that thread holds a lock the handler would need: django-q2's own handler stops the whole cluster
    from there, and hangs. A second signal ends the process at once (its children follow it).
    """

    def __init__(self):
        self.received = None
        for signum in TERMINATION:
            signal.signal(signum, self._note)

    def _note(self, signum, frame):
        if self.received is not None:
            logger.warning("%s again: stopping at once", signal.Signals(signum).name)
            os._exit(128 + signum)
        self.received = signal.Signals(signum)

    def wait(self, *, running, interval=0.1):
        """Sleep until a stop signal has come or `running()` is false; the signal, or None."""
        while self.received is None and running():
            time.sleep(interval)
        return self.received
