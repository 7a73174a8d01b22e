"""The composer's logic: which targets exist, which fields they share, and one batch from one prompt.

A target is a provider account plus one of its models. When several are chosen, a parameter every one
of them takes is set once (offering only values all of them accept); the rest are set per target. Every
target is validated against the catalog on its own, and a batch is created only when all of them pass.
"""

import socket
from dataclasses import dataclass, field, replace
from urllib.parse import urlsplit

from django.conf import settings
from django.db import transaction

from studio.jobs import services
from studio.jobs.models import Batch
from studio.projects.models import Prompt, PromptVersion
from studio.providers import catalog, pricing
from studio.providers.base import ValidationFailed, Violation
from studio.providers.http import is_public_address
from studio.providers.models import ProviderAccount
from studio.providers.registry import adapter_for

IMAGE_ROLES = ("first_frame", "last_frame", "reference_images")


@dataclass(frozen=True)
class Target:
    account: ProviderAccount
    spec: catalog.ModelSpec

    @property
    def key(self):
        return f"{self.account.pk}:{self.spec.model_id}"

    @property
    def label(self):
        return f"{self.spec.label} · {self.account.name}"


@dataclass
class TargetCheck:
    target: Target
    params: dict = field(default_factory=dict)
    violations: list = field(default_factory=list)
    cost: object = None
    currency: str = "USD"

    @property
    def ok(self):
        return not self.violations


@dataclass
class FieldPlan:
    shared: list
    shared_users: dict  # parameter name -> [Target] that take it
    specific: dict  # target key -> [Param]
    image_users: dict  # role -> [Target] that take it


# Targets --------------------------------------------------------------------------------------------


def available_targets():
    """Every enabled account's models, in a stable order."""
    targets = []
    for account in ProviderAccount.objects.enabled().order_by("name"):
        targets += [Target(account, spec) for spec in adapter_for(account.provider).models]
    return targets


def targets_from_keys(keys, available=None):
    """The chosen targets, in the order chosen; unknown or disabled ones are left out."""
    by_key = {target.key: target for target in (available or available_targets())}
    chosen = []
    for key in keys:
        if key in by_key and by_key[key] not in chosen:
            chosen.append(by_key[key])
    return chosen


# Fields --------------------------------------------------------------------------------------------


def merged_param(params):
    """One field for a parameter several targets take, offering only values all of them accept; None when
    they have nothing in common (then each target gets its own field)."""
    first = params[0]
    kinds = {p.kind for p in params}
    numeric = kinds <= {"int", "choice"} and all(isinstance(c, int) for p in params for c in p.choices)
    if len(kinds) > 1 and not numeric:
        return None
    if first.kind in ("text", "bool"):
        return first
    allowed = [set(p.choices) if p.choices else None for p in params]
    if all(a is None for a in allowed):
        low, high = max(p.minimum for p in params), min(p.maximum for p in params)
        if low > high:
            return None
        default = first.default if first.default is not None and low <= first.default <= high else None
        return replace(first, minimum=low, maximum=high, default=default)
    choices = _common_values(params)
    if not choices:
        return None
    # No default means the provider decides (person_generation): keep it empty unless someone chooses.
    default = first.default if first.default is None or first.default in choices else choices[0]
    return replace(first, kind="choice", choices=tuple(choices), default=default, minimum=None, maximum=None)


def _common_values(params):
    candidates = next(p.choices for p in params if p.choices)
    return [value for value in candidates if all(_accepts(p, value) for p in params)]


def _accepts(param, value):
    if param.choices:
        return value in param.choices
    return param.minimum <= value <= param.maximum


def field_plan(targets):
    """Set once what two or more targets take (or everything, for one target); the rest per target."""
    names_in_order = [name for name in catalog.PARAM_ORDER if name not in ("prompt", "negative_prompt")]
    shared, shared_users = [], {}
    for name in names_in_order:
        takers = [t for t in targets if t.spec.param(name)]
        if len(takers) < min(2, len(targets)) or not takers:
            continue
        if (merged := merged_param([t.spec.param(name) for t in takers])) is not None:
            shared.append(merged)
            shared_users[name] = takers
    shared_names = set(shared_users)
    specific = {
        t.key: [p for p in t.spec.params if p.name not in shared_names and p.name != "negative_prompt"]
        for t in targets
    }
    image_users = {
        "first_frame": [t for t in targets if t.spec.images.first_frame],
        "last_frame": [t for t in targets if t.spec.images.last_frame],
        "reference_images": [t for t in targets if t.spec.images.max_references],
    }
    return FieldPlan(shared=shared, shared_users=shared_users, specific=specific, image_users=image_users)


def takes_negative_prompt(targets):
    return [t for t in targets if t.spec.param("negative_prompt")]


# Checking -------------------------------------------------------------------------------------------


def target_params(target, *, prompt, negative_prompt, shared, specific):
    """The unified parameters for one target: shared values it takes plus its own."""
    params = {"prompt": prompt}
    if negative_prompt and target.spec.param("negative_prompt"):
        params["negative_prompt"] = negative_prompt
    for name, value in shared.items():
        if target.spec.param(name) and value not in (None, ""):
            params[name] = value
    for name, value in specific.get(target.key, {}).items():
        if value not in (None, ""):
            params[name] = value
    return params


def images_for(target, images):
    """The images this target takes, out of those uploaded for the whole batch."""
    slots = target.spec.images
    return {
        "first_frame": images.get("first_frame") if slots.first_frame else None,
        "last_frame": images.get("last_frame") if slots.last_frame else None,
        "references": list(images.get("reference_images") or []) if slots.max_references else [],
    }


def check_target(target, params, images):
    used = images_for(target, images)
    given = catalog.ImagesGiven(bool(used["first_frame"]), bool(used["last_frame"]), len(used["references"]))
    try:
        clean = catalog.validate(target.spec, params, given)
    except ValidationFailed as failure:
        return TargetCheck(target, params, failure.violations)
    cost, currency = pricing.estimate(target.spec, clean)
    return TargetCheck(target, clean, [], cost, currency)


def check_all(targets, *, prompt, negative_prompt, shared, specific, images):
    return [
        check_target(t, target_params(t, prompt=prompt, negative_prompt=negative_prompt, shared=shared,
                                      specific=specific), images)
        for t in targets
    ]


# Creating ---------------------------------------------------------------------------------------------


def prompt_version_to_use(*, project, user, prompt=None, text, negative_prompt=""):
    """The version a batch runs: the prompt's latest when unchanged; otherwise a new version when the latest
    already has jobs (their history must stay true), or the latest edited in place when it has none."""
    if prompt is None:
        prompt = Prompt.objects.create(project=project, title=text[:80], created_by=user)
    latest = prompt.versions.order_by("-number").first()
    if latest and latest.text == text and latest.negative_prompt == negative_prompt:
        return latest
    if latest and not latest.jobs.exists():
        latest.text, latest.negative_prompt = text, negative_prompt
        latest.save(update_fields=["text", "negative_prompt"])
        return latest
    number = latest.number + 1 if latest else 1
    return PromptVersion.objects.create(prompt=prompt, number=number, text=text, negative_prompt=negative_prompt,
                                        created_by=user)


class BatchRefused(Exception):
    """At least one target breaks a rule: nothing was created or sent."""

    def __init__(self, checks):
        self.checks = checks
        super().__init__("; ".join(f"{c.target.label}: {v.message}" for c in checks for v in c.violations))


@transaction.atomic
def batch_create(*, project, user, targets, prompt, negative_prompt="", shared=None, specific=None, images=None,
                 prompt_obj=None, name=""):
    """One job per target, created together or not at all; each job is sent once the batch commits."""
    images = images or {}
    checks = check_all(targets, prompt=prompt, negative_prompt=negative_prompt, shared=shared or {},
                       specific=specific or {}, images=images)
    if not targets or not all(check.ok for check in checks):
        raise BatchRefused(checks)
    version = prompt_version_to_use(project=project, user=user, prompt=prompt_obj, text=prompt,
                                    negative_prompt=negative_prompt)
    batch = Batch.objects.create(project=project, prompt_version=version, name=name or prompt[:80], created_by=user)
    for check in checks:
        services.job_create(project=project, user=user, account=check.target.account, model=check.target.spec.model_id,
                            params=check.params, prompt_version=version, batch=batch,
                            **images_for(check.target, images))
    return batch


@transaction.atomic
def job_run_again(*, job, user):
    """A new job identical to `job`: same account, model, parameters, images and the very prompt version it
    ran (not the prompt's latest, which may have been edited since). Validated like any new job."""
    if not job.account.enabled:
        raise ValidationFailed([Violation("account", "account_disabled",
                                                  f"The provider account “{job.account.name}” is turned off.")])
    version = job.prompt_version
    batch = Batch.objects.create(project=job.project, prompt_version=version,
                                 name=job.batch.name if job.batch else version.text[:80], created_by=user)
    images = {"first_frame": None, "last_frame": None, "references": []}
    for use in job.images.select_related("image").order_by("position"):
        if use.role == "reference":
            images["references"].append(use.image)
        else:
            images[use.role] = use.image
    return services.job_create(project=job.project, user=user, account=job.account, model=job.model,
                               params=dict(job.params), prompt_version=version, batch=batch, **images)


def is_sandbox(account):
    return account.base_url.startswith(settings.STUDIO_SANDBOX_URL.rstrip("/") + "/")


def reachable_from_internet(url):
    host = urlsplit(url or "").hostname
    if not host:
        return False
    try:
        return all(is_public_address(info[4][0]) for info in socket.getaddrinfo(host, None))
    except (socket.gaierror, ValueError):
        return False


def public_url_warning(targets, public_url):
    """Real providers that fetch images by URL cannot reach a studio on localhost: say so before submitting."""
    needs_urls = [t for t in targets
                  if adapter_for(t.account.provider).image_transport == "url" and not is_sandbox(t.account)]
    if not needs_urls or reachable_from_internet(public_url):
        return ""
    names = ", ".join(sorted({t.account.name for t in needs_urls}))
    return (f"{names} fetch images from the studio at STUDIO_PUBLIC_URL ({public_url or 'not set'}), which they "
            "cannot reach from the internet. Set STUDIO_PUBLIC_URL to the studio's public address, or send "
            "images only to providers that take them inline.")
