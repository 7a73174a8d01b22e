"""`manage.py qcluster`: django-q2's cluster, plus the studio's poller in the same command.

A deployment runs this one command on each machine. The poller makes every provider call; django-q2's
workers (at a lower CPU priority) probe stored videos, make posters and run the periodic sweeps. django-q2 starts its sentinel, workers, monitor and
pusher in child processes first; only then does this process start the poller's threads, so nothing is
forked from a process that already has threads.

Stopping (SIGTERM, or Ctrl-C): the poller stops first and its steps in flight end; then django-q2's cluster
stops in its own order (pusher, workers after their current task, monitor); then the process exits 0.
Each part has a bounded time, so no supervisor ever needs to kill it; work cut off when a bound is reached
is picked up again by design (leases expire, the broker delivers the task again). A second signal stops at
once. The child processes die with this one, even on `kill -9`, and only this one tells them to stop:
see studio.core.processes.
"""

import logging
import os
import threading

from django.conf import settings
from django.core.management.base import CommandError
from django.db import connections
from django_q.cluster import Cluster
from django_q.management.commands.qcluster import Command as DjangoQCommand
from django_q.signals import post_spawn

from studio.core import processes
from studio.jobs.heartbeat import Heartbeat
from studio.jobs.poller import Poller
from studio.jobs.tasks import ensure_schedules

logger = logging.getLogger(__name__)

POLLER_STOP_SECONDS = 5.0
CLUSTER_STOP_SECONDS = 3.0
STOP_SECONDS = POLLER_STOP_SECONDS + CLUSTER_STOP_SECONDS  # the longest a stop takes


class Command(DjangoQCommand):
    help = "Start the django-q2 cluster and the studio's job poller."

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("--no-poller", action="store_true", help="Run only django-q2's task workers.")

    def handle(self, *args, **options):
        if options.get("run_once"):
            return super().handle(*args, **options)
        if options.get("cluster_name"):
            os.environ["Q_CLUSTER_NAME"] = options["cluster_name"]
        processes.children_follow_this_process()
        post_spawn.connect(yield_the_cpu, dispatch_uid="studio-workers-yield")
        ensure_schedules()
        connections.close_all()  # django-q2's forked processes close what they inherit: on PostgreSQL, our session
        cluster = Cluster()
        stop = processes.StopSignals()  # in place of django-q2's handler, installed by Cluster()
        cluster.start()
        poller = None if options["no_poller"] else Poller()
        poller_thread = start_poller(poller)
        heartbeat = Heartbeat(sentinel=cluster.sentinel, poller=poller).start()

        def running():
            return cluster.sentinel.is_alive() and (poller_thread is None or poller_thread.is_alive())

        received = stop.wait(running=running)
        if received:
            logger.info("%s received: stopping the poller, then the task cluster", received.name)
        else:
            failure = "the poller ended" if cluster.sentinel.is_alive() else "django-q2's sentinel died"
            logger.error("%s: stopping everything", failure)
        heartbeat.stop()
        stop_poller(poller, poller_thread)
        stop_cluster(cluster)
        if not received:
            raise CommandError(failure)


def yield_the_cpu(**_):
    """In each django-q2 worker: decoding videos must not take the CPU the poller's threads need to stay on time."""
    os.nice(settings.STUDIO_WORKER_NICE)


def start_poller(poller):
    if poller is None:
        return None
    # A daemon thread: should the poller overrun its time to stop, the process still exits.
    thread = threading.Thread(target=poller.run, name="poller", daemon=True)
    thread.start()
    return thread


def stop_poller(poller, thread):
    if poller is None:
        return
    poller.stop()
    thread.join(POLLER_STOP_SECONDS)
    if thread.is_alive():
        logger.warning("the poller did not stop within %s s; its leases will expire", POLLER_STOP_SECONDS)
    else:
        logger.info("the poller has stopped")


def stop_cluster(cluster):
    """django-q2's own stop, on a thread so that it can be given up on: were the sentinel killed while
    waiting on the stop event, setting that event would wait forever."""
    stopping = threading.Thread(target=cluster.stop, name="cluster-stop", daemon=True)
    stopping.start()
    stopping.join(CLUSTER_STOP_SECONDS)
    if stopping.is_alive():
        logger.warning("the task cluster did not stop within %s s; killing it (its unfinished tasks will be "
                       "delivered again)", CLUSTER_STOP_SECONDS)
        cluster.sentinel.kill()  # its children die with it
        cluster.sentinel.join(1)
