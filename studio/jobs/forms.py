"""The composer's form: what a person has typed (ComposerState) and how the composer shows it (ComposerView).

The state is read from a POST, a prompt version or a job. Everything the composer shows is derived from the
catalog through studio.jobs.compose: the chosen targets, the fields field_plan() gives them, and the checks
check_all() makes. No field is written by hand for a model.

Form names: shared parameters use the parameter's name ("duration"); parameters one target sets on its own use
"<target key>/<name>" ("3:veo-3.1/resolution"); images use their role and carry ImageAsset ids.
"""

import re
from dataclasses import dataclass, field
from itertools import groupby

from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from studio.core.params import parse_id
from studio.jobs import compose
from studio.jobs.models import Job, JobImage
from studio.projects.images import image_ingest
from studio.projects.models import ImageAsset, Prompt, PromptVersion
from studio.providers import catalog, pricing
from studio.providers.health import pause_note
from studio.providers.models import AccountHealth, ModelPrice

PARAM_NAMES = [name for name in catalog.PARAM_ORDER if name not in ("prompt", "negative_prompt")]
ROLES = compose.IMAGE_ROLES
ROLE_LABELS = {
    "first_frame": "First frame", "last_frame": "Last frame", "reference_images": "Reference images",
}
JOB_IMAGE_ROLES = {JobImage.Role.FIRST_FRAME: "first_frame", JobImage.Role.LAST_FRAME: "last_frame",
                   JobImage.Role.REFERENCE: "reference_images"}
# The live check judges the settings; an empty prompt is reported when the person sends it.
LIVE_PROMPT = "(prompt not written yet)"
LIBRARY_SIZE = 24


def specific_name(target, param_name):
    return f"{target.key}/{param_name}"


def dom_id(*parts):
    return "-".join(re.sub(r"[^A-Za-z0-9-]", "_", str(part)) for part in parts)


# State ------------------------------------------------------------------------------------------------------


@dataclass
class ComposerState:
    prompt: str = ""
    negative_prompt: str = ""
    prompt_obj: Prompt | None = None
    target_keys: list = field(default_factory=list)
    values: dict = field(default_factory=dict)
    images: dict = field(default_factory=lambda: dict(first_frame=None, last_frame=None, reference_images=[]))
    loaded_from: object = None  # the Job whose settings were loaded ("Edit and run")
    image_errors: dict = field(default_factory=dict)  # role -> [message]
    notice: str = ""


def state_from_post(data, *, project, user):
    """What the composer held when it was posted. Unknown targets, prompts and images are left out."""
    values = {}
    for key in data:
        if key.rsplit("/", 1)[-1] in PARAM_NAMES:
            values[key] = data.get(key)
    state = ComposerState(
        prompt=data.get("prompt", "").strip(), negative_prompt=data.get("negative_prompt", "").strip(),
        prompt_obj=_prompt_of(project, user, data.get("prompt_id")), target_keys=data.getlist("targets"),
        values=values, loaded_from=_job_of(project, user, data.get("from_job")),
    )
    state.images = _images_of(project, user, data.get("first_frame"), data.get("last_frame"),
                              data.getlist("reference_images"))
    _apply_library_action(state, data, project=project, user=user)
    return state


def state_from_query(query, *, project, user):
    """The composer the project page opens with: empty, a restored prompt version, or a job's settings."""
    if job := _job_of(project, user, query.get("from_job")):
        return state_from_job(job, keep_target=not query.get("other"))
    versions = PromptVersion.objects.for_user(user).filter(prompt__project=project).select_related("prompt")
    if version := versions.filter(pk=parse_id(query.get("version"))).first():
        return ComposerState(
            prompt=version.text, negative_prompt=version.negative_prompt, prompt_obj=version.prompt,
            notice=f"Version {version.number} restored. Sending it again keeps its history.",
        )
    return ComposerState()


def state_from_job(job, *, keep_target=True):
    """The job's prompt, parameters and images; its target too, unless the person wants to try another."""
    version = job.prompt_version
    target_key = f"{job.account_id}:{job.model}"
    values = {}
    for name, value in job.params.items():
        if name in PARAM_NAMES:
            values[name] = value
            if keep_target:
                values[f"{target_key}/{name}"] = value
    state = ComposerState(
        prompt=version.text, negative_prompt=version.negative_prompt, prompt_obj=version.prompt,
        target_keys=[target_key] if keep_target else [], values=values, loaded_from=job,
    )
    for use in job.images.select_related("image").order_by("position"):
        role = JOB_IMAGE_ROLES[use.role]
        if role == "reference_images":
            state.images[role].append(use.image)
        else:
            state.images[role] = use.image
    return state


def state_after_submit(state, batch):
    """After sending, the composer keeps everything and now edits the prompt it was sent as."""
    state.prompt_obj = batch.prompt_version.prompt
    state.loaded_from = None
    count = batch.jobs.count()
    state.notice = f"Sent to {count} model{'s' if count != 1 else ''}. The new cards are at the top of Jobs."
    return state


def ingest_uploads(state, files, *, refused=(), project, user):
    """Store every uploaded file in the project's library and put it in its slot; refused files say why: those
    the upload handler did not take as they arrived (`refused`, studio.core.uploads), and those image_ingest
    refuses."""
    for role in ROLES:
        _note_refused(state, role, [r for r in refused if r.field_name == f"{role}_file"])
        for upload in files.getlist(f"{role}_file"):
            try:
                image = image_ingest(project=project, data=upload, name=upload.name, user=user)
            except ValidationError as error:
                state.image_errors.setdefault(role, []).append(f"{upload.name}: {' '.join(error.messages)}")
                continue
            if role == "reference_images":
                if image.pk not in [i.pk for i in state.images[role]]:
                    state.images[role].append(image)
            else:
                state.images[role] = image
    return state


def _note_refused(state, role, refused):
    """One line per reason, naming the files it refused (the first three, then how many more)."""
    names_by_reason = {}
    for refusal in refused:
        names_by_reason.setdefault(refusal.reason, []).append(refusal.file_name)
    for reason, names in names_by_reason.items():
        shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
        state.image_errors.setdefault(role, []).append(f"{shown}: {reason}")


def _apply_library_action(state, data, *, project, user):
    """"Use from library" and "Remove" buttons post role:image-id."""
    if pick := data.get("pick"):
        role, _, image_id = pick.partition(":")
        image = _library(project, user).filter(pk=parse_id(image_id)).first()
        if role in ROLES and image:
            if role != "reference_images":
                state.images[role] = image
            elif image.pk not in [i.pk for i in state.images[role]]:
                state.images[role].append(image)
    if drop := data.get("drop"):
        role, _, image_id = drop.partition(":")
        image_id = parse_id(image_id)
        if role == "reference_images":
            state.images[role] = [i for i in state.images[role] if i.pk != image_id]
        elif role in ROLES and state.images[role] and state.images[role].pk == image_id:
            state.images[role] = None


def _prompt_of(project, user, prompt_id):
    return Prompt.objects.for_user(user).filter(project=project, pk=parse_id(prompt_id)).first()


def _job_of(project, user, job_id):
    if (job_id := parse_id(job_id)) is None:
        return None
    jobs = Job.objects.for_user(user).filter(project=project)
    return jobs.select_related("prompt_version__prompt", "account").filter(pk=job_id).first()


def _library(project, user):
    return ImageAsset.objects.for_user(user).filter(project=project)


def _images_of(project, user, first, last, references):
    wanted = [image_id for image_id in map(parse_id, [first, last, *references]) if image_id]
    found = {image.pk: image for image in _library(project, user).filter(pk__in=wanted)}
    refs = []
    for ref in references:
        image = found.get(parse_id(ref))
        if image and image not in refs:
            refs.append(image)
    return dict(first_frame=found.get(parse_id(first)), last_frame=found.get(parse_id(last)),
                reference_images=refs)


# Resolving values ------------------------------------------------------------------------------------------


def shared_value(state, param, takers):
    """What a shared field holds: as posted, else what one of its targets had on its own, else the default."""
    if param.name in state.values:
        return state.values[param.name]
    for target in takers:
        if (name := specific_name(target, param.name)) in state.values:
            return state.values[name]
    return param.default


def specific_value(state, target, param):
    for name in (specific_name(target, param.name), param.name):
        if name in state.values:
            return state.values[name]
    return param.default


@dataclass
class Submission:
    targets: list
    plan: object
    shared: dict
    specific: dict

    def batch_kwargs(self, state):
        return {"targets": self.targets, "prompt": state.prompt, "negative_prompt": state.negative_prompt,
                "shared": self.shared, "specific": self.specific, "images": state.images,
                "prompt_obj": state.prompt_obj}


def submission(state, available=None):
    """The chosen targets and the values each field holds, the same for the live check and for sending."""
    targets = compose.targets_from_keys(state.target_keys, available)
    plan = compose.field_plan(targets)
    shared = {p.name: shared_value(state, p, plan.shared_users[p.name]) for p in plan.shared}
    specific = {t.key: {p.name: specific_value(state, t, p) for p in plan.specific[t.key]} for t in targets}
    return Submission(targets, plan, shared, specific)


def live_checks(state, sub):
    return compose.check_all(
        sub.targets, prompt=state.prompt or LIVE_PROMPT, negative_prompt=state.negative_prompt,
        shared=sub.shared, specific=sub.specific, images=state.images,
    )


# Display ----------------------------------------------------------------------------------------------------


@dataclass
class FieldView:
    name: str
    id: str
    param: catalog.Param
    value: object
    used_by: list = field(default_factory=list)  # short target labels, when not every chosen target takes it
    error: bool = False

    @property
    def widget(self):
        return {"choice": "select", "int": "number", "bool": "checkbox", "text": "textarea"}[self.param.kind]

    @property
    def options(self):
        """(value, label, selected); a value the choices do not hold is shown as such rather than replaced."""
        current = "" if self.value is None else str(self.value)
        if current == "" and self.param.default is not None:
            current = str(self.param.default)  # empty means the default, as the check reads it
        options = [(str(c), f"{c}{self.param.unit}", str(c) == current) for c in self.param.choices]
        if self.param.default is None:
            options.insert(0, ("", "Provider’s default", current == ""))
        if current and not any(selected for _, _, selected in options):
            options.insert(0, (current, f"{current}{self.param.unit} (not available)", True))
        return options

    @property
    def checked(self):
        try:
            value = catalog.coerce(self.param, self.value)
        except ValueError:
            return False
        return bool(self.param.default if value is None else value)

    @property
    def text_value(self):
        return "" if self.value is None else str(self.value)

    @property
    def allowed(self):
        """A range worth reading (1–16 s); a seed's 0–4294967295 is left to the input's own limits."""
        param = self.param
        if param.kind != "int" or param.maximum is None or param.maximum - param.minimum > 1000:
            return ""
        return param.describe_allowed()


@dataclass
class SectionView:
    target: compose.Target
    label: str
    fields: list
    check: compose.TargetCheck
    problems: list
    note: str


@dataclass
class SlotView:
    role: str
    label: str
    images: list
    used_by: list
    limit: str
    errors: list

    @property
    def multiple(self):
        return self.role == "reference_images"


@dataclass
class TargetOption:
    key: str
    id: str
    label: str
    summary: str
    checked: bool


@dataclass
class TargetGroup:
    account: object
    options: list
    pause_note: str = ""

    @property
    def chosen_count(self):
        return sum(option.checked for option in self.options)


@dataclass
class ComposerView:
    state: ComposerState
    read_only: bool
    groups: list
    chosen: list
    negative: FieldView | None
    shared_fields: list
    sections: list
    slots: list
    carried: list
    carried_images: list
    library: list
    warning: str
    prompt_problems: list
    total: object
    currency: str
    runnable: int

    @property
    def all_runnable(self):
        return bool(self.chosen) and self.runnable == len(self.chosen)


def composer_view(state, *, project, user, read_only=False, refused=None, public_url=""):
    """Everything the composer shows. When the server refused a submission its checks are shown
    (BatchRefused); otherwise the live check runs on what is in the form now."""
    available = compose.available_targets()
    sub = submission(state, available)
    checks = refused.checks if refused else live_checks(state, sub)
    checks_by_key = {check.target.key: check for check in checks}
    labels = short_labels(sub.targets)
    problem_fields = {key: {v.field for v in check.violations} for key, check in checks_by_key.items()}
    any_problem = set().union(*problem_fields.values()) if problem_fields else set()

    shared_fields = [
        FieldView(p.name, dom_id("f", p.name), p, shared_value(state, p, sub.plan.shared_users[p.name]),
                  used_by=_used_by(sub.plan.shared_users[p.name], sub.targets, labels),
                  error=p.name in any_problem)
        for p in sub.plan.shared
    ]
    sections = []
    for target in sub.targets:
        check = checks_by_key.get(target.key) or compose.TargetCheck(target)
        fields = [
            FieldView(specific_name(target, p.name), dom_id("f", target.key, p.name), p,
                      specific_value(state, target, p), error=p.name in problem_fields.get(target.key, ()))
            for p in sub.plan.specific[target.key]
        ]
        problems = [v.message for v in check.violations if v.field != "prompt"]
        note = target_note(target.spec)
        sections.append(SectionView(target, labels[target.key], fields, check, problems, note))

    negative_users = compose.takes_negative_prompt(sub.targets)
    negative = None
    if negative_users:
        negative = FieldView("negative_prompt", "f-negative_prompt", catalog.negative_prompt(),
                             state.negative_prompt, used_by=_used_by(negative_users, sub.targets, labels))

    shown = {f.param.name for f in shared_fields} | {f.param.name for s in sections for f in s.fields}
    carried = [(name, value) for name, value in state.values.items()
               if name in PARAM_NAMES and name not in shown and value not in (None, "")]
    slots, carried_images = _slots(state, sub, labels)
    prompt_problems = sorted({v.message for c in checks for v in c.violations if v.field == "prompt"})
    if refused and not sub.targets:
        prompt_problems.append("Choose at least one model to send the prompt to.")
    runnable = [c for c in checks if c.ok]
    currencies = {c.currency for c in runnable}
    return ComposerView(
        state=state, read_only=read_only, groups=target_groups(available, sub.targets), chosen=sub.targets,
        negative=negative, shared_fields=shared_fields, sections=sections, slots=slots, carried=carried,
        carried_images=carried_images, library=library(project, user), warning=compose.public_url_warning(
            sub.targets, public_url), prompt_problems=prompt_problems,
        total=sum((c.cost for c in runnable), start=0) if len(currencies) <= 1 else None,
        currency=currencies.pop() if len(currencies) == 1 else "USD", runnable=len(runnable),
    )


def _used_by(takers, chosen, labels):
    return [labels[t.key] for t in takers] if len(takers) < len(chosen) else []


def short_labels(targets):
    """A model's label, with its account when two chosen targets share the label."""
    counts = {}
    for target in targets:
        counts[target.spec.label] = counts.get(target.spec.label, 0) + 1
    return {t.key: t.spec.label if counts[t.spec.label] == 1 else t.label for t in targets}


def _slots(state, sub, labels):
    slots, carried = [], []
    for role in ROLES:
        users = sub.plan.image_users[role]
        chosen = state.images[role] if role == "reference_images" else [i for i in [state.images[role]] if i]
        for image in chosen:
            image.preview_url = preview_url(image)
        if not users:
            carried += [(role, image.pk) for image in chosen]
            continue
        limit = ""
        if role == "reference_images":
            limit = "; ".join(f"{_reference_count(t.spec.images)} for {labels[t.key]}" for t in users)
        used_by = [labels[t.key] for t in users] if len(users) < len(sub.targets) else []
        errors = state.image_errors.get(role, [])
        slots.append(SlotView(role, ROLE_LABELS[role], chosen, used_by, limit, errors))
    for role, errors in state.image_errors.items():
        if role not in [s.role for s in slots]:
            slots.append(SlotView(role, ROLE_LABELS[role], [], [], "", errors))
    return slots, carried


def _reference_count(slots):
    if slots.min_references:
        return f"{slots.min_references}–{slots.max_references}"
    return f"Up to {slots.max_references}"


def library(project, user):
    images = list(_library(project, user)[:LIBRARY_SIZE])
    for image in images:
        image.preview_url = preview_url(image)
    return images


def preview_url(image):
    """The members-only address of an uploaded image."""
    prefix = f"projects/{image.project_id}/"
    return reverse("media_file", args=[image.project_id, image.file.name.removeprefix(prefix)])


# Targets ----------------------------------------------------------------------------------------------------


def target_groups(available, chosen):
    chosen_keys = {t.key for t in chosen}
    rows = ModelPrice.objects.all()
    prices = {}
    for row in rows:
        prices.setdefault((row.provider, row.model), []).append(row)
    paused = {health.account_id: health for health in AccountHealth.objects.filter(paused_until__gt=timezone.now())}
    groups = []
    for account, targets in groupby(available, key=lambda t: t.account):
        options = [TargetOption(t.key, dom_id("t", t.key), t.spec.label,
                                target_summary(t.spec, prices.get((t.spec.provider, t.spec.model_id), [])),
                                t.key in chosen_keys)
                   for t in targets]
        groups.append(TargetGroup(account, options, pause_note(paused.get(account.pk))))
    return groups


def target_summary(spec, price_rows=()):
    """One line a person can choose by: length, size, images taken and the base price."""
    parts = [_allowed_or_fixed(spec, "duration"), _allowed_or_fixed(spec, "resolution")]
    slots = spec.images
    frames = "first + last frame" if slots.last_frame else "first frame" if slots.first_frame else ""
    refs = f"{_reference_count(slots).lower()} references" if slots.max_references else ""
    parts.append(", ".join(p for p in (frames, refs) if p) or "text only")
    per_second = pricing.price_per_second(spec, {}, rows=price_rows)
    parts.append(f"{per_second.normalize():f} {spec.price.currency}/s")
    return " · ".join(p for p in parts if p)


def _allowed_or_fixed(spec, name):
    param = spec.param(name)
    if param is None:
        fixed = spec.fixed.get(name)
        return f"{fixed} s" if fixed and name == "duration" else str(fixed or "")
    if param.choices:
        if name == "duration":
            return f"{'/'.join(str(c) for c in param.choices)} s"
        return "/".join(str(c) for c in param.choices)
    return param.describe_allowed()


def target_note(spec):
    """What the model decides for itself (shown under its section), e.g. a fixed 8 s at 720p."""
    fixed = [f"{value} s" if name == "duration" else str(value) for name, value in spec.fixed.items()
             if name in ("duration", "resolution") and not spec.param(name)]
    if spec.fixed.get("audio") is True and not spec.param("audio"):
        fixed.append("always with sound")
    elif spec.fixed.get("audio") is False and not spec.param("audio"):
        fixed.append("silent")
    return ("Fixed by the model: " + ", ".join(fixed) + ".") if fixed else ""
