"""The composer: fields from the catalog for every model, rules refused inline and on the server, images
checked by content, roles enforced, prompt versions, and running a job again."""

import io
import os
from html import unescape
from html.parser import HTMLParser

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils.html import escape
from PIL import Image

from studio.jobs.models import Batch, Job, JobImage
from studio.projects.models import ImageAsset, Prompt, PromptVersion
from studio.providers import catalog
from studio.providers.base import ValidationFailed
from studio.providers.models import Protocol, ProviderAccount
from studio.providers.registry import all_specs
from tests.conftest import sandbox_key
from tests.helpers import png_bytes

pytestmark = pytest.mark.django_db

PROMPT = "A red kite over wheat fields at golden hour, slow dolly in"


# --- fixtures and helpers -----------------------------------------------------------------------------------

@pytest.fixture
def accounts(sandbox, settings):
    """One enabled account per provider, all on the sandbox: whatever is sent shows in sandbox.requests()."""
    settings.STUDIO_SANDBOX_URL = sandbox.url
    made = {}
    for protocol in Protocol.values:
        account = ProviderAccount(provider=protocol, name=f"sandbox-{protocol}",
                                  base_url=sandbox.base_url(protocol))
        account.set_api_key(sandbox_key(protocol))
        account.save()
        made[protocol] = account
    return made


@pytest.fixture
def editor(client, team):
    project, users = team
    client.force_login(users["editor"])
    return client, project


def key(accounts, spec_or_provider, model=None):
    if model is None:
        return f"{accounts[spec_or_provider.provider].pk}:{spec_or_provider.model_id}"
    return f"{accounts[spec_or_provider].pk}:{model}"


def url(name, project, *args):
    return reverse(name, args=[project.slug, *args])


def hx(client, name, project, data, *args, **extra):
    return client.post(url(name, project, *args), data, HTTP_HX_REQUEST="true", **extra)


def upload(project, user, color=(220, 20, 20), name="frame.png"):
    from studio.projects.images import image_ingest

    return image_ingest(project=project, data=png_bytes(color), name=name, user=user)


class Controls(HTMLParser):
    """The form controls in a piece of HTML, by name: what a browser would show and post."""

    def __init__(self, html):
        super().__init__()
        self.by_name, self._select, self._option, self._textarea = {}, None, None, None
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attrs = {name: (value if value is not None else True) for name, value in attrs}
        if tag in ("input", "select", "textarea", "button") and "name" in attrs:
            control = {"tag": tag, **attrs, "options": [], "text": ""}
            self.by_name.setdefault(attrs["name"], []).append(control)
            self._select = control if tag == "select" else self._select
            self._textarea = control if tag == "textarea" else None
        elif tag == "option" and self._select is not None:
            self._option = {"value": attrs.get("value", ""), "selected": "selected" in attrs, "label": ""}
            self._select["options"].append(self._option)

    def handle_endtag(self, tag):
        if tag == "select":
            self._select = None
        elif tag == "option":
            self._option = None
        elif tag == "textarea":
            self._textarea = None

    def handle_data(self, data):
        if self._option is not None:
            self._option["label"] += data
        if self._textarea is not None:
            self._textarea["text"] += data

    def one(self, name, tag=None):
        found = [c for c in self.by_name.get(name, []) if tag is None or c["tag"] == tag]
        assert len(found) == 1, f"expected one {tag or 'control'} named {name!r}, found {found}"
        return found[0]

    def values(self, name):
        return [c.get("value") for c in self.by_name.get(name, []) if c["tag"] == "input"]


def text_of(response):
    return unescape(response.content.decode())


# --- every model's form, from the catalog -------------------------------------------------------------------

@pytest.mark.parametrize("spec", all_specs(), ids=lambda spec: spec.key)
def test_every_model_gets_a_field_for_each_of_its_parameters(editor, accounts, spec):
    client, project = editor
    response = hx(client, "composer_fields", project, {"prompt": PROMPT, "targets": key(accounts, spec)})
    assert response.status_code == 200
    controls = Controls(response.content.decode())
    html = text_of(response)

    rendered = {name for name in controls.by_name if name in catalog.PARAM_ORDER}
    assert rendered == set(spec.param_names), "a field for each parameter the model takes, and no other"
    for param in spec.params:
        if param.kind == "choice":
            select = controls.one(param.name, "select")
            offered = [o["value"] for o in select["options"]]
            expected = ([""] if param.default is None else []) + [str(c) for c in param.choices]
            assert offered == expected
            assert [o["value"] for o in select["options"] if o["selected"]] == [
                "" if param.default is None else str(param.default)]
        elif param.kind == "int":
            field = controls.one(param.name, "input")
            assert field["type"] == "number"
            assert (field["min"], field["max"]) == (str(param.minimum), str(param.maximum))
            assert field["value"] == ("" if param.default is None else str(param.default))
        elif param.kind == "bool":
            box = [c for c in controls.by_name[param.name] if c.get("type") == "checkbox"]
            assert len(box) == 1 and ("checked" in box[0]) == bool(param.default)
            assert controls.values(param.name)[0] == "off", "an unticked box still says so"
        else:
            assert controls.one(param.name, "textarea")["text"] == (param.default or "")
        if param.help:
            assert param.help in html
    if spec.images.min_references:
        assert f"needs {spec.images.min_references}–{spec.images.max_references} reference images" in html
    else:
        cost = catalog.estimate_cost(spec, catalog.validate(spec, {"prompt": PROMPT}))
        assert f"{cost:.2f} USD" in html


def test_shared_fields_are_set_once_and_the_rest_per_target(editor, accounts):
    client, project = editor
    veo, vidu = key(accounts, "qingbo", "veo-3.1"), key(accounts, "uniall", "viduq3p-540p")
    response = hx(client, "composer_fields", project, {"prompt": PROMPT, "targets": [veo, vidu]})
    controls = Controls(response.content.decode())
    html = text_of(response)

    duration = controls.one("duration", "select")
    assert [o["value"] for o in duration["options"]] == ["4", "6", "8"], "only durations both models take"
    assert controls.one("seed", "input")["max"] == str(catalog.SEED_MAX)
    assert "aspect_ratio" in controls.by_name
    assert controls.one(f"{veo}/resolution", "select")
    assert controls.one(f"{veo}/person_generation", "select")
    assert [c for c in controls.by_name[f"{vidu}/audio"] if c.get("type") == "checkbox"]
    assert "resolution" not in controls.by_name
    assert controls.one("negative_prompt", "textarea")
    assert "Used by Veo 3.1." in html, "the negative prompt says which model uses it"


def test_changing_targets_keeps_what_was_typed(editor, accounts):
    client, project = editor
    veo, vidu = key(accounts, "qingbo", "veo-3.1"), key(accounts, "uniall", "viduq3p-540p")
    typed = {"prompt": PROMPT, "negative_prompt": "no text on screen", "duration": "6", "seed": "42"}

    only_vidu = hx(client, "composer_fields", project, {**typed, "targets": [vidu]})
    controls = Controls(only_vidu.content.decode())
    assert controls.one("negative_prompt", "input")["value"] == "no text on screen", "kept while hidden"
    assert controls.one("duration", "input")["value"] == "6"

    back = hx(client, "composer_fields", project, {**typed, "duration": "6", "targets": [vidu, veo]})
    controls = Controls(back.content.decode())
    assert controls.one("negative_prompt", "textarea")["text"] == "no text on screen"
    assert [o["value"] for o in controls.one("duration")["options"] if o["selected"]] == ["6"]
    assert controls.one("seed", "input")["value"] == "42"


# --- every rule: refused inline and on the server -----------------------------------------------------------

ATTEMPTS = [
    {"values": {"resolution": "1080p", "duration": "6"}, "images": ()},
    {"values": {}, "images": ("last_frame",)},
    {"values": {}, "images": ("first_frame", "reference_images")},
    {"values": {"aspect_ratio": "9:16"}, "images": ("reference_images",)},
    {"values": {"duration": "6"}, "images": ("reference_images",)},
]
RULES = sorted({(rule.code, rule.message) for spec in all_specs() for rule in spec.rules})


def breaking_example(code):
    """A model with this rule and a request that breaks exactly this rule."""
    for spec in all_specs():
        if code not in [rule.code for rule in spec.rules]:
            continue
        for attempt in ATTEMPTS:
            images = attempt["images"]
            given = catalog.ImagesGiven("first_frame" in images, "last_frame" in images,
                                        int("reference_images" in images))
            try:
                catalog.validate(spec, {"prompt": PROMPT, **attempt["values"]}, given)
            except ValidationFailed as failure:
                if [v.code for v in failure.violations] == [code]:
                    return spec, attempt
    pytest.fail(f"no example breaks {code}: add one to ATTEMPTS")


def composer_data(accounts, project, user, spec, values, images):
    data = {"prompt": PROMPT, "targets": key(accounts, spec), **values}
    colours = {"first_frame": (220, 20, 20), "last_frame": (20, 40, 220), "reference_images": (20, 180, 60)}
    for role in images:
        data[role] = upload(project, user, colours[role], f"{role}.png").pk
    return data


@pytest.mark.parametrize("code, message", RULES, ids=[code for code, _ in RULES])
def test_every_rule_is_named_inline_and_refused_on_the_server(editor, team, accounts, sandbox, code, message):
    client, project = editor
    spec, attempt = breaking_example(code)
    data = composer_data(accounts, project, team[1]["editor"], spec, attempt["values"], attempt["images"])

    inline = hx(client, "composer_fields", project, data)
    assert escape(message) in inline.content.decode()
    assert "Can’t send" in text_of(inline)

    refused = client.post(url("composer_submit", project), data)
    assert refused.status_code == 422
    assert escape(message) in refused.content.decode()
    kept = Controls(refused.content.decode()).one("prompt", "textarea")["text"]
    assert kept == PROMPT, "nothing typed is lost"
    assert (Job.objects.count(), Batch.objects.count(), Prompt.objects.count()) == (0, 0, 0)
    assert sandbox.count() == 0


def out_of_bounds(param):
    if param.choices:
        return max(param.choices) + 1 if isinstance(param.choices[0], int) else "not-offered"
    return param.maximum + 1


LIMITS = [(spec, param) for spec in all_specs() for param in spec.params
          if param.choices or param.maximum is not None]


@pytest.mark.parametrize("spec, param", LIMITS, ids=[f"{s.key}:{p.name}" for s, p in LIMITS])
def test_every_parameter_limit_is_named_inline_and_refused_on_the_server(
    editor, team, accounts, sandbox, spec, param
):
    client, project = editor
    data = composer_data(accounts, project, team[1]["editor"], spec, {param.name: out_of_bounds(param)}, ())
    with pytest.raises(ValidationFailed) as failure:
        catalog.validate(spec, {"prompt": PROMPT, param.name: out_of_bounds(param)})
    message = escape(failure.value.violations[0].message)

    assert message in hx(client, "composer_fields", project, data).content.decode()
    refused = hx(client, "composer_submit", project, data)
    assert refused.status_code == 200 and message in refused.content.decode()
    assert Job.objects.count() == 0 and sandbox.count() == 0


def test_a_prompt_and_a_model_are_needed(editor, accounts):
    client, project = editor
    no_model = client.post(url("composer_submit", project), {"prompt": PROMPT})
    assert "Choose at least one model" in text_of(no_model)
    target = key(accounts, "qingbo", "veo-3.0")
    no_prompt = client.post(url("composer_submit", project), {"prompt": " ", "targets": target})
    assert "A prompt is required." in text_of(no_prompt)
    assert Job.objects.count() == 0


# --- images -------------------------------------------------------------------------------------------------

def noisy_png(size=(64, 48)):
    image = Image.frombytes("RGB", size, os.urandom(size[0] * size[1] * 3))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def gif():
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), (200, 0, 0)).save(buffer, format="GIF")
    return buffer.getvalue()


BAD_IMAGES = {
    "svg": (lambda: b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>', "logo.svg",
            "This file is not an image we can read: upload a PNG, JPEG or WebP."),
    "html_named_png": (lambda: b"<html><script>fetch('/admin/')</script></html>", "frame.png",
                       "This file is not an image we can read: upload a PNG, JPEG or WebP."),
    "truncated_png": (lambda: noisy_png()[:2000], "frame.png", "The image is damaged or truncated"),
    "gif": (gif, "frame.gif", "GIF images are not accepted: upload a PNG, JPEG or WebP."),
    "oversized": (noisy_png, "big.png", "the limit is 1000"),
}


@pytest.mark.parametrize("kind", BAD_IMAGES)
def test_a_bad_image_is_refused_with_its_message_and_nothing_is_stored(
    editor, accounts, media_root, settings, kind
):
    client, project = editor
    if kind == "oversized":
        settings.STUDIO_MAX_IMAGE_BYTES = 1000
    build, name, message = BAD_IMAGES[kind]
    data = {"prompt": PROMPT, "targets": key(accounts, "qingbo", "veo-3.1"),
            "first_frame_file": SimpleUploadedFile(name, build())}

    response = hx(client, "composer_fields", project, data)

    assert response.status_code == 200
    assert message in text_of(response)
    assert f"{name}:" in text_of(response), "the message names the file"
    assert ImageAsset.objects.count() == 0
    assert [p for p in media_root.rglob("*") if p.is_file()] == []
    assert Controls(response.content.decode()).values("first_frame") == []


def test_an_upload_shows_its_preview_and_carries_the_image_id(editor, team, accounts, client):
    client, project = editor
    data = {"prompt": PROMPT, "targets": key(accounts, "qingbo", "veo-3.1"),
            "first_frame_file": SimpleUploadedFile("red.png", png_bytes((220, 20, 20)))}
    response = hx(client, "composer_fields", project, data)

    image = ImageAsset.objects.get()
    assert Controls(response.content.decode()).values("first_frame") == [str(image.pk)]
    stored_as = image.file.name.removeprefix(f"projects/{project.pk}/")
    preview = reverse("media_file", args=[project.pk, stored_as])
    slot = response.content.decode().split('id="slot-first_frame"')[1].split("</figure>")[0]
    assert f'<img src="{preview}"' in slot
    assert client.get(preview).status_code == 200
    client.force_login(team[1]["outsider"])
    assert client.get(preview).status_code == 404


def test_a_slot_appears_only_for_models_that_take_it_and_says_which(editor, accounts):
    client, project = editor
    veo3 = key(accounts, "qingbo", "veo-3.0")  # first frame only
    mix = key(accounts, "uniall", "viduq3p-mix-720p")  # 1–4 references only
    alone = Controls(hx(client, "composer_fields", project, {"targets": veo3}).content.decode())
    assert "first_frame_file" in alone.by_name
    assert "last_frame_file" not in alone.by_name and "reference_images_file" not in alone.by_name

    both = hx(client, "composer_fields", project, {"targets": [veo3, mix]})
    html = text_of(both)
    assert "reference_images_file" in Controls(both.content.decode()).by_name
    assert "1–4 for Vidu Q3 Pro 720p (reference mix)" in html
    assert "For Veo 3" in html, "the first frame says which model uses it"


def test_library_images_fill_a_slot(editor, team, accounts):
    client, project = editor
    image = upload(project, team[1]["editor"])
    data = {"prompt": PROMPT, "targets": key(accounts, "qingbo", "veo-3.1")}
    page = hx(client, "composer_fields", project, data)
    assert f'value="first_frame:{image.pk}"' in page.content.decode(), "the library is offered for the slot"

    picked = hx(client, "composer_fields", project, {**data, "pick": f"first_frame:{image.pk}"})
    assert Controls(picked.content.decode()).values("first_frame") == [str(image.pk)]
    removed = hx(client, "composer_fields", project,
                 {**data, "first_frame": image.pk, "drop": f"first_frame:{image.pk}"})
    assert Controls(removed.content.decode()).values("first_frame") == []


def test_submitting_without_javascript_takes_the_files_along(editor, accounts):
    client, project = editor
    data = {"prompt": PROMPT, "targets": key(accounts, "qingbo", "veo-3.1"), "duration": "8",
            "first_frame_file": SimpleUploadedFile("red.png", png_bytes((220, 20, 20))),
            "last_frame_file": SimpleUploadedFile("blue.png", png_bytes((20, 40, 220)))}
    response = client.post(url("composer_submit", project), data)
    assert response.status_code == 302 and response["Location"] == url("project_detail", project)
    job = Job.objects.get()
    assert sorted(job.images.values_list("role", flat=True)) == ["first_frame", "last_frame"]


def test_a_real_provider_that_fetches_images_warns_about_a_loopback_public_url(editor, settings):
    client, project = editor
    settings.STUDIO_PUBLIC_URL = "http://127.0.0.1:8000"
    account = ProviderAccount(provider="uniall", name="uniall-live", base_url="https://api.uniall.example")
    account.set_api_key("sk-live-not-used-0001")
    account.save()
    data = {"prompt": PROMPT, "targets": f"{account.pk}:viduq3p-540p"}

    html = text_of(hx(client, "composer_fields", project, data))
    warning = html.split('class="composer-warning"')[1].split("</p>")[0]
    assert "uniall-live fetch images from the studio at STUDIO_PUBLIC_URL (http://127.0.0.1:8000)" in warning
    assert html.index("composer-warning") < html.index('id="composer-send"'), "shown above the submit button"

    settings.STUDIO_PUBLIC_URL = "https://8.8.8.8"
    assert "composer-warning" not in text_of(hx(client, "composer_fields", project, data))


# --- who may do what ----------------------------------------------------------------------------------------

def test_viewers_see_the_composer_read_only(client, team, accounts):
    project, users = team
    client.force_login(users["viewer"])
    html = client.get(url("project_detail", project)).content.decode()
    assert '<fieldset class="composer-body" disabled>' in html
    assert "composer-send" not in html and "hx-post=\"/p/" not in html.split('id="composer"')[1].split(">")[0]
    assert "only editors and owners of this project can send prompts" in html


@pytest.fixture
def a_job(team, accounts):
    project, users = team
    from studio.jobs import compose

    target = compose.targets_from_keys([key(accounts, "qingbo", "veo-3.0")])
    batch = compose.batch_create(project=project, user=users["editor"], targets=target, prompt=PROMPT,
                                 shared={"duration": 4})
    return batch.jobs.get()


def endpoints(project, job):
    data = {"prompt": PROMPT, "targets": f"{job.account_id}:{job.model}", "duration": "4",
            "first_frame_file": SimpleUploadedFile("red.png", png_bytes())}
    return {
        "fields": ("post", url("composer_fields", project), data),
        "upload": ("post", url("composer_fields", project), data),
        "submit": ("post", url("composer_submit", project), data),
        "run_again": ("post", url("job_run_again", project, job.pk), {}),
        "project_page": ("get", url("project_detail", project) + f"?from_job={job.pk}", None),
        "prompt_history": ("get", url("prompt_history", project), None),
    }


@pytest.mark.parametrize("endpoint", ["fields", "upload", "submit", "run_again"])
def test_viewers_get_403_on_every_composer_post(client, team, a_job, sandbox, endpoint):
    project, users = team
    client.force_login(users["viewer"])
    method, address, data = endpoints(project, a_job)[endpoint]
    for headers in ({}, {"HTTP_HX_REQUEST": "true"}):
        for value in (data or {}).values():
            if hasattr(value, "seek"):
                value.seek(0)
        assert client.post(address, data or {}, **headers).status_code == 403
    assert (Job.objects.count(), ImageAsset.objects.count(), sandbox.count()) == (1, 0, 0)


@pytest.mark.parametrize("endpoint",
                         ["fields", "upload", "submit", "run_again", "project_page", "prompt_history"])
def test_non_members_get_404_on_every_composer_endpoint(client, team, a_job, endpoint):
    project, users = team
    client.force_login(users["outsider"])
    method, address, data = endpoints(project, a_job)[endpoint]
    response = client.post(address, data) if method == "post" else client.get(address)
    assert response.status_code == 404
    assert (Job.objects.count(), ImageAsset.objects.count()) == (1, 0)


# --- sending, prompt versions, restoring --------------------------------------------------------------------

def test_submit_shows_the_new_cards_at_once(editor, accounts):
    client, project = editor
    targets = [key(accounts, "qingbo", "veo-3.0"), key(accounts, "uniall", "viduq3p-540p")]
    response = hx(client, "composer_submit", project, {"prompt": PROMPT, "targets": targets, "duration": "4"})
    html = response.content.decode()

    jobs = list(Job.objects.order_by("pk"))
    assert len(jobs) == 2 and len({job.batch_id for job in jobs}) == 1
    assert 'hx-swap-oob="afterbegin:#job-grid"' in html
    for job in jobs:
        assert f'id="job-{job.pk}"' in html
        assert job.params["duration"] == 4
    assert 'id="composer"' in html and "Sent to 2 models" in html
    assert Controls(html).one("prompt_id")["value"] == str(jobs[0].prompt_version.prompt_id)


def test_editing_a_sent_prompt_makes_a_new_version_and_unchanged_text_reuses_it(editor, accounts):
    client, project = editor
    data = {"targets": key(accounts, "qingbo", "veo-3.0"), "duration": "4"}

    first = hx(client, "composer_submit", project, {**data, "prompt": PROMPT})
    prompt = Prompt.objects.get()
    assert list(prompt.versions.values_list("number", "text")) == [(1, PROMPT)]
    assert Controls(first.content.decode()).one("prompt_id")["value"] == str(prompt.pk)

    edited = PROMPT + ", fog rolling in"
    hx(client, "composer_submit", project, {**data, "prompt": edited, "prompt_id": prompt.pk})
    assert Prompt.objects.count() == 1
    versions = prompt.versions.order_by("number").values_list("number", "text")
    assert list(versions) == [(1, PROMPT), (2, edited)]

    hx(client, "composer_submit", project, {**data, "prompt": edited, "prompt_id": prompt.pk})
    assert prompt.versions.count() == 2
    latest = Job.objects.order_by("-pk").first()
    assert latest.prompt_version.number == 2 and Batch.objects.count() == 3


def test_restoring_a_version_fills_the_composer(client, team, accounts):
    project, users = team
    prompt = Prompt.objects.create(project=project, title="Kite")
    PromptVersion.objects.create(prompt=prompt, number=1, text=PROMPT, negative_prompt="no birds")
    version = PromptVersion.objects.create(prompt=prompt, number=2, text=PROMPT + " at dusk")
    old = prompt.versions.get(number=1)
    client.force_login(users["editor"])

    history = client.get(url("prompt_history", project)).content.decode()
    assert f"?version={old.pk}#composer" in history and f"?version={version.pk}#composer" in history

    controls = Controls(client.get(url("project_detail", project) + f"?version={old.pk}").content.decode())
    assert controls.one("prompt", "textarea")["text"] == PROMPT
    assert controls.one("negative_prompt")["value"] == "no birds"
    assert controls.one("prompt_id")["value"] == str(prompt.pk)


def test_the_history_lists_each_version_with_its_jobs(client, team, a_job):
    project, users = team
    client.force_login(users["viewer"])
    html = client.get(url("prompt_history", project)).content.decode()
    assert "Version 1" in html and f"Job {a_job.pk}" in html
    assert url("job_detail", project, a_job.pk) in html
    assert "Restore" not in html, "viewers cannot send, so nothing to restore into"


# --- run again, edit and run, try another model -------------------------------------------------------------

@pytest.fixture
def framed_job(editor, team, accounts):
    """A job with parameters and a first and a last frame, on a prompt that has since been edited."""
    client, project = editor
    editor_user = team[1]["editor"]
    red = upload(project, editor_user, (220, 20, 20), "red.png")
    blue = upload(project, editor_user, (20, 40, 220), "blue.png")
    target = key(accounts, "qingbo", "veo-3.1")
    data = {"prompt": PROMPT, "negative_prompt": "no text", "targets": target, "duration": "4", "seed": "7",
            "aspect_ratio": "9:16", "first_frame": red.pk, "last_frame": blue.pk}
    hx(client, "composer_submit", project, data)
    job = Job.objects.get()
    edited = {**data, "prompt": PROMPT + " again", "prompt_id": job.prompt_version.prompt_id}
    hx(client, "composer_submit", project, edited)
    return job


def images_of(job):
    return list(job.images.order_by("position").values_list("role", "image_id", "position"))


def test_run_again_makes_an_identical_job(editor, framed_job):
    client, project = editor
    response = hx(client, "job_run_again", project, {}, framed_job.pk,
                  HTTP_HX_CURRENT_URL=f"http://testserver{url('project_detail', project)}")

    again = Job.objects.order_by("-pk").first()
    assert again.pk not in (framed_job.pk,) and again.batch_id != framed_job.batch_id
    assert (again.account_id, again.model, again.params, again.prompt_version_id) == (
        framed_job.account_id, framed_job.model, framed_job.params, framed_job.prompt_version_id)
    assert images_of(again) == images_of(framed_job)
    assert again.prompt_version.number == 1, "the version the job ran, not the prompt's latest"
    assert response["HX-Retarget"] == "#job-grid" and response["HX-Reswap"] == "afterbegin"
    assert f'id="job-{again.pk}"' in response.content.decode()


def test_run_again_from_the_job_page_opens_the_new_job(editor, framed_job):
    client, project = editor
    response = client.post(url("job_run_again", project, framed_job.pk))
    again = Job.objects.order_by("-pk").first()
    assert response.status_code == 302 and response["Location"] == url("job_detail", project, again.pk)


def test_run_again_on_the_job_page_opens_the_new_job_with_htmx(editor, framed_job):
    client, project = editor
    response = hx(client, "job_run_again", project, {}, framed_job.pk,
                  HTTP_HX_CURRENT_URL=f"http://testserver{url('job_detail', project, framed_job.pk)}")
    again = Job.objects.order_by("-pk").first()
    assert response["HX-Redirect"] == url("job_detail", project, again.pk)


def test_edit_and_run_loads_the_job_into_the_composer(editor, framed_job):
    client, project = editor
    html = client.get(url("project_detail", project) + f"?from_job={framed_job.pk}").content.decode()
    controls = Controls(html)
    target = f"{framed_job.account_id}:{framed_job.model}"

    assert "checked" in [c for c in controls.by_name["targets"] if c["value"] == target][0]
    assert controls.one("prompt", "textarea")["text"] == PROMPT
    assert controls.one("negative_prompt", "textarea")["text"] == "no text"
    assert [o["value"] for o in controls.one("duration")["options"] if o["selected"]] == ["4"]
    assert controls.one("seed")["value"] == "7"
    frames = JobImage.objects.filter(job=framed_job).order_by("position")
    red, blue = frames.values_list("image_id", flat=True)
    assert controls.values("first_frame") == [str(red)] and controls.values("last_frame") == [str(blue)]
    assert "Loaded from" in html and f"job {framed_job.pk}" in html
    assert f'href="{url("project_detail", project)}#composer">Undo' in html


def test_try_on_another_model_keeps_everything_but_the_target(editor, accounts, framed_job):
    client, project = editor
    page = client.get(url("project_detail", project) + f"?from_job={framed_job.pk}&other=1").content.decode()
    controls = Controls(page)
    assert not [c for c in controls.by_name["targets"] if "checked" in c]
    assert controls.one("duration")["value"] == "4" and controls.one("seed")["value"] == "7"

    other = key(accounts, "uniall", "viduq3p-540p")
    names = ("duration", "seed", "aspect_ratio", "first_frame", "last_frame", "prompt_id", "from_job",
             "negative_prompt")
    carried = {name: values[0]["value"] for name, values in controls.by_name.items() if name in names}
    response = hx(client, "composer_fields", project, {**carried, "prompt": PROMPT, "targets": other})
    picked = Controls(response.content.decode())
    assert picked.one("duration")["value"] == "4"
    assert [o["value"] for o in picked.one("aspect_ratio")["options"] if o["selected"]] == ["9:16"]
    assert picked.values("first_frame") == [carried["first_frame"]]
