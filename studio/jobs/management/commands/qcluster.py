"""`manage.py qcluster`: django-q2's cluster, plus the studio's poller in the same command.

A deployment runs this one command on each machine. django-q2 starts its sentinel, workers and
scheduler in child processes first; only then does this process start the poller's threads, so
nothing is forked from a process that already has threads. When the cluster stops (SIGTERM, Ctrl-C),
the poller stops with it; its leases, if any, expire and other clusters take over.
"""

import os

from django_q.cluster import Cluster
from django_q.management.commands.qcluster import Command as DjangoQCommand

from studio.jobs.poller import Poller


class Command(DjangoQCommand):
    help = "Start the django-q2 cluster and the studio's job poller."

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("--no-poller", action="store_true", help="Run only django-q2's task workers.")

    def handle(self, *args, **options):
        if options.get("run_once") or options.get("no_poller"):
            return super().handle(*args, **options)
        if options.get("cluster_name"):
            os.environ["Q_CLUSTER_NAME"] = options["cluster_name"]
        cluster = Cluster()
        cluster.start()
        poller = Poller()
        poller.run(until=lambda: not cluster.sentinel.is_alive())
