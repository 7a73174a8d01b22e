"""Helpers the web tests share (their fixtures live in conftest.py)."""

import socket

from django.urls import reverse

BOAT = "A paper boat drifting down a rain-soaked street, morning light"


def closed_port_url():
    """An address nothing listens on: any HTTP call to it would fail loudly."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/qingbo"


def as_user(client, users, who):
    if who != "anonymous":
        client.force_login(users[who])
    return client


def gallery_url(project, query=""):
    return reverse("gallery", args=[project.slug]) + (f"?{query}" if query else "")


def result_url(result):
    return reverse("result_detail", args=[result.job.project.slug, result.pk])


def comparison_url(comparison):
    return reverse("comparison_detail", args=[comparison.project.slug, comparison.pk])


def batch_url(batch):
    return reverse("batch_compare", args=[batch.project.slug, batch.pk])
