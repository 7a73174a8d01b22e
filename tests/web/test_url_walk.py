"""Every URL pattern, walked by every kind of visitor with real ids and with hostile values in every path and
form parameter: never a 500, nothing of a project shown to anyone outside it, no write on a GET, and a request
with more fields than the cap refused with a plain 400.

The patterns come from the resolver, so a new view is walked without editing this file; a new path parameter
needs a real value in `real_values` (the walk fails saying so). The field names come from the templates, the
forms and the views' own reads of request.GET and request.POST.
"""

import re
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import quote, urlencode, urlsplit

import pytest
from django import forms
from django.apps import apps
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.test import Client
from django.urls import URLResolver, get_resolver

from studio.jobs.models import Batch, Job, JobImage, JobState, Result
from studio.projects.image_links import signed_image_url
from studio.projects.models import ImageAsset, Membership, Project, Prompt, PromptVersion, Role
from studio.providers.models import ProviderAccount
from studio.review.models import Comment, Comparison, ComparisonItem
from tests.helpers import png_bytes
from tests.web.support import closed_port_url

PEOPLE = ["anonymous", "outsider", "viewer", "editor", "owner"]
HOSTILE = ["²", "-1", "0", str(10**30), "../", "%2f", "9" * 5000]
MANY = 2000
MANY_LABEL = f"{MANY} fields"
SKIPPED = ("admin/",)  # Django's own admin: staff only, and not the studio's code
# A parameter whose value has a shape of its own ("role:image id") gets the hostile value where the id goes.
SHAPED = {"pick": "first_frame:{}", "drop": "reference_images:{}"}


def url_patterns(patterns=None, prefix=""):
    """(route, pattern) for every pattern the resolver lists, with the routes of includes prefixed."""
    for pattern in get_resolver().url_patterns if patterns is None else patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            yield from url_patterns(pattern.url_patterns, route)
        else:
            yield route, pattern


PATTERNS = [(route, pattern) for route, pattern in url_patterns() if not route.startswith(SKIPPED)]
PARAMETER = re.compile(r"<(?:(?P<converter>[^>:]+):)?(?P<name>\w+)>")


def field_names():
    """Every field a page sends or a view reads: names in the templates, fields of the forms, and the names
    read from request.GET / request.POST (or the QueryDict a view hands on)."""
    names = set()
    for template in Path(settings.BASE_DIR, "templates").rglob("*.html"):
        names |= set(re.findall(r'\sname="([A-Za-z_][\w-]*)"', template.read_text()))
    for module in Path(settings.BASE_DIR, "studio").rglob("*.py"):
        names |= set(re.findall(r'(?:GET|POST|data|query)\.get(?:list)?\(\s*"([\w-]+)"', module.read_text()))
    pending = [forms.BaseForm]
    while pending:
        form = pending.pop()
        pending += form.__subclasses__()
        if form.__module__.startswith(("studio.", "django.contrib.auth.")):
            names |= set(getattr(form, "base_fields", {}))
    return sorted(names)


FIELDS = field_names()


# The world: two projects with one of everything, and the people who look at them ---------------------------

A_NAME = "Quillmarsh Lantern Works"


def build_project(name, owner, marker, account):
    """A project with a prompt of two versions, a batch of two stored videos, an image used by a job, a
    comparison and a comment. Every text and file name carries `marker`, so a page showing one is found."""
    project = Project.objects.create(name=name, created_by=owner)
    Membership.objects.create(project=project, user=owner, role=Role.OWNER)
    prompt = Prompt.objects.create(project=project, title=f"{marker} prompt title")
    PromptVersion.objects.create(prompt=prompt, number=1, text=f"{marker} heron wading through violet fog")
    version = PromptVersion.objects.create(prompt=prompt, number=2, text=f"{marker} heron at copper dawn",
                                           negative_prompt=f"{marker} no gulls")
    batch = Batch.objects.create(project=project, prompt_version=version, name=f"{marker} batch")
    image = ImageAsset.objects.create(
        project=project, file=f"projects/{project.pk}/images/{marker}-still.png", format="png", width=64,
        height=48, bytes=100, sha256=f"{marker:0<64}"[:64], original_name=f"{marker}-original.png")
    results = []
    for n in range(2):
        job = Job.objects.create(
            project=project, batch=batch, prompt_version=version, account=account, provider=account.provider,
            model="veo-3.0", params={"prompt": version.text, "duration": 4}, state=JobState.SUCCEEDED,
            created_by=owner, webhook_token=f"{marker}-hook-{n}")
        results.append(Result.objects.create(
            job=job, file=f"projects/{project.pk}/videos/{marker}-video-{n}.mp4", sha256="0" * 64, bytes=100,
            duration=4.0, width=1280, height=720, fps=24.0, has_audio=False,
            poster=f"projects/{project.pk}/posters/{marker}-poster-{n}.jpg"))
    JobImage.objects.create(job=results[0].job, image=image, role=JobImage.Role.FIRST_FRAME)
    comparison = Comparison.objects.create(project=project, title=f"{marker} comparison", created_by=owner)
    for position, result in enumerate(results):
        ComparisonItem.objects.create(comparison=comparison, result=result, position=position)
    comment = Comment.objects.create(result=results[0], author=owner, body=f"{marker} comment on the heron")
    return {"project": project, "prompt": prompt, "version": version, "batch": batch, "image": image,
            "results": results, "job": results[0].job, "comparison": comparison, "comment": comment}


def build_world(user_model):
    users = {who: user_model.objects.create_user(who, f"{who}@example.com", password=None)
             for who in PEOPLE[1:]}
    account = ProviderAccount(provider="qingbo", name="offline", base_url=closed_port_url())
    account.set_api_key("sk-test-never-sent-walk")
    account.save()
    a = build_project(A_NAME, users["owner"], "qmlw7f3a", account)
    for role in (Role.VIEWER, Role.EDITOR):
        Membership.objects.create(project=a["project"], user=users[role.value], role=role)
    b = build_project("Otterbrook Ferry", users["outsider"], "otfb2c9d", account)
    return users, a, b


@pytest.fixture
def world(db, media_root):
    """Built for each test: it takes about 10 ms. (One world for the module would need a transaction around
    the module, and pytest-django closes the connection at the end of each test, and the transaction with it.)
    Its rows' files are written where they say, small, under the test's own media root."""
    users, a, b = build_world(get_user_model())
    for part in (a, b):
        names = [part["image"].file.name] + [n for r in part["results"] for n in (r.file.name, r.poster.name)]
        for name in names:
            path = media_root / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(png_bytes() if name.endswith(".png") else b"\0" * 100)
    return users, a, b


def real_values(a, route_name):
    """Project A's own value for each path parameter, so that the views are reached."""
    image_path = urlsplit(signed_image_url(a["image"])).path  # /public/images/<token>.<extension>
    token, extension = image_path.rsplit("/", 1)[1].rsplit(".", 1)
    by_route = {
        "public_image": {"token": token, "extension": extension},
        "job_webhook": {"token": a["job"].webhook_token},
    }
    by_name = {
        "slug": a["project"].slug, "project_id": a["project"].pk,
        "path": a["results"][0].file.name.removeprefix(f"projects/{a['project'].pk}/"),
        "membership_id": a["project"].memberships.get(role=Role.VIEWER).pk,
        "job_id": a["job"].pk, "result_id": a["results"][0].pk, "comment_id": a["comment"].pk,
        "comparison_id": a["comparison"].pk, "batch_id": a["batch"].pk,
    }
    return {**by_name, **by_route.get(route_name, {})}


def leak_markers(a):
    """What of project A nobody outside it may see: its name, texts and file names."""
    texts = [A_NAME, a["version"].text, a["version"].negative_prompt, a["prompt"].title, a["batch"].name,
             a["comparison"].title, a["comment"].body, a["image"].original_name,
             Path(a["image"].file.name).name, "qmlw7f3a"]
    texts += [Path(r.file.name).name for r in a["results"]]
    return [text.encode() for text in texts]


# Walking ---------------------------------------------------------------------------------------------------


def fill(route, values):
    """The route with each parameter replaced by its value (hostile values as they are, save for encoding what
    a URL cannot hold: "../" and "%2f" reach the server as written)."""
    return "/" + PARAMETER.sub(lambda m: quote(str(values[m["name"]]), safe="/%"), route)


def variants(route, real):
    """(label, path values, fields) for one pattern: the real ids with no fields; every hostile value in every
    field at once, with the real ids; every hostile value in each path parameter in turn; and one request with
    MANY fields. Sent as each person, by GET and by POST: every pattern, person and hostile value meet, without
    the product of every parameter with every other."""
    slots = [m["name"] for m in PARAMETER.finditer(route)]
    yield "real", real, {}
    for value in HOSTILE:
        fields = {name: SHAPED.get(name, "{}").format(value) for name in FIELDS}
        yield f"fields={value[:12]!r}", real, fields
        for slot in slots:
            yield f"{slot}={value[:12]!r}", {**real, slot: value}, {}
    yield MANY_LABEL, real, {f"f{n}": "1" for n in range(MANY)}


def table_counts():
    """Rows in every table of the studio's apps and of django-q2 (its queue is where a GET could enqueue)."""
    models = [model for config in apps.get_app_configs() if config.name.startswith(("studio.", "django_q"))
              for model in config.get_models()]
    tables = [model._meta.db_table for model in models]
    sql = "SELECT " + ", ".join(f"(SELECT COUNT(*) FROM {connection.ops.quote_name(t)})" for t in tables)

    def counts():
        with connection.cursor() as cursor:
            cursor.execute(sql)
            return dict(zip(tables, cursor.fetchone()))

    return counts


def body_of(response):
    # Reading a streamed file to its end closes it, as a WSGI server would (a second close would end the
    # database connection, and the savepoint the request runs in).
    return b"".join(response.streaming_content) if response.streaming else response.content


class Walker:
    """Sends every variant of one pattern as each person and notes every problem (the test lists them)."""

    def __init__(self, world):
        self.users, self.a, _ = world
        self.markers = leak_markers(self.a)
        self.counts = table_counts()
        self.clients = {}
        for who in PEOPLE:
            client = Client(raise_request_exception=False)
            if who != "anonymous":
                client.force_login(self.users[who])
            self.clients[who] = (client, client.cookies.get(settings.SESSION_COOKIE_NAME))
        self.problems = []
        self.sent = 0

    def send(self, who, method, path, fields, *, in_query):
        """One request in a savepoint rolled back after it (a POST that deletes or signs out changes nothing
        for the next), with only the session cookie (no message left by the one before). A POST carries its
        fields in the form and, if `in_query`, in the query string too."""
        client, session = self.clients[who]
        client.cookies = SimpleCookie()
        if session is not None:
            client.cookies[settings.SESSION_COOKIE_NAME] = session.value
        writes = {}
        with transaction.atomic():
            if method == "get":
                before, callbacks = self.counts(), len(connection.run_on_commit)
                body = body_of(response := client.get(path, fields))
                after = self.counts()
                writes = {table: (n, after[table]) for table, n in before.items() if after[table] != n}
                if len(connection.run_on_commit) != callbacks:  # work put off until a commit: a task queued
                    writes["on_commit"] = (callbacks, len(connection.run_on_commit))
            else:
                query = f"?{urlencode(fields)}" if fields and in_query else ""
                body = body_of(response := client.post(path + query, fields))
            transaction.set_rollback(True)
        self.sent += 1
        return response, body, writes

    def check(self, who, method, pattern, label, path, response, body, writes):
        status = response.status_code
        where = f"{who} {method.upper()} {path[:100]} [{label}] -> {status}"
        if status >= 500:
            self.problems.append(f"{where}: server error")
        if who in ("anonymous", "outsider"):
            if status == 403:
                self.problems.append(f"{where}: 403 tells a non-member the project exists (404 expected)")
            if found := [m.decode() for m in self.markers if m in body]:
                self.problems.append(f"{where}: shows project A's {found}")
        if method == "get" and writes:
            self.problems.append(f"{where}: a GET wrote {writes}")
        exempt = getattr(pattern.callback, "csrf_exempt", False)
        refusable = label == MANY_LABEL and not (method == "post" and exempt)  # a callback reads its own body
        plain = response.get("Content-Type", "").startswith("text/plain") and b"too many fields" in body
        if refusable and (status != 400 or not plain):
            self.problems.append(f"{where}: {MANY} fields must be a plain 400, got {body[:80]!r}")

    def walk(self, route, pattern, method):
        real = real_values(self.a, pattern.name)
        missing = [m["name"] for m in PARAMETER.finditer(route) if m["name"] not in real]
        assert not missing, f"{route}: no real value for {missing}; add one to real_values()"
        for who in PEOPLE:
            for label, values, fields in variants(route, real):
                path = fill(route, values)
                # The POST with MANY fields sends them in its form only: the form is what is to be refused.
                response, body, writes = self.send(who, method, path, fields, in_query=label != MANY_LABEL)
                self.check(who, method, pattern, label, path, response, body, writes)
                if who == "owner" and label == "real" and response.status_code == 404:
                    self.problems.append(f"owner {method.upper()} {path}: 404 with project A's own ids; "
                                         "the walk does not reach the view")


WALKED = set()


@pytest.mark.parametrize("method", ["get", "post"])
@pytest.mark.parametrize("route,pattern", PATTERNS, ids=[route or "/" for route, _ in PATTERNS])
def test_every_pattern_as_everyone_with_real_and_hostile_values(world, route, pattern, method):
    walker = Walker(world)
    WALKED.add((route, method))
    walker.walk(route, pattern, method)
    assert not walker.problems, f"{len(walker.problems)} problems in {walker.sent} requests:\n" + "\n".join(
        walker.problems[:25])


def test_every_pattern_the_resolver_lists_is_walked(request):
    """The walk covers what the resolver lists (save Django's admin), none left out on the way."""
    walk = test_every_pattern_as_everyone_with_real_and_hostile_values.__name__
    walks = [item for item in request.session.items if getattr(item, "originalname", "") == walk]
    if len(walks) != 2 * len(PATTERNS):
        pytest.skip("only part of the walk was selected")
    listed = [route for route, _ in url_patterns() if not route.startswith(SKIPPED)]
    assert listed and len(listed) == len(PATTERNS) == len({route for route, _ in WALKED})
    assert WALKED == {(route, method) for route in listed for method in ("get", "post")}
