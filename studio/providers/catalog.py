"""The model catalog: every model's parameters, image inputs, rules and prices, in one place.

Each provider package declares its models with the helpers below; forms, validation, cost estimates
and adapters all read the same ModelSpec. Unified parameter names:
prompt, negative_prompt, aspect_ratio, resolution, duration, audio, seed, samples,
person_generation, enhance_prompt, upsample; images first_frame, last_frame, reference_images.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from studio.providers.base import ValidationFailed, Violation

PARAM_ORDER = [
    "prompt",
    "negative_prompt",
    "aspect_ratio",
    "resolution",
    "duration",
    "audio",
    "seed",
    "samples",
    "person_generation",
    "enhance_prompt",
    "upsample",
]
IMAGE_FIELDS = ["first_frame", "last_frame", "reference_images"]

SEED_MAX = 4_294_967_295


@dataclass(frozen=True)
class Param:
    name: str
    kind: str  # "choice", "int", "bool", "text"
    label: str
    default: Any = None
    choices: tuple = ()
    minimum: int | None = None
    maximum: int | None = None
    why: str = ""  # the rule that limits the choices or range, quoted when a value is refused
    help: str = ""
    unit: str = ""

    def describe_allowed(self):
        if self.choices:
            return ", ".join(f"{c}{self.unit}" for c in self.choices)
        if self.minimum is not None and self.maximum is not None:
            return f"{self.minimum}–{self.maximum}{self.unit}"
        return ""


@dataclass(frozen=True)
class ImageSlots:
    first_frame: bool = False
    last_frame: bool = False
    max_references: int = 0
    min_references: int = 0  # more than 0: the model needs references (e.g. Vidu "mix")

    @property
    def accepts_any(self):
        return self.first_frame or self.last_frame or self.max_references > 0


@dataclass(frozen=True)
class ImagesGiven:
    first_frame: bool = False
    last_frame: bool = False
    references: int = 0


@dataclass(frozen=True)
class Rule:
    """A constraint across values. `broken(params, images)` says whether a request breaks it."""

    code: str
    message: str
    broken: Callable[[dict, ImagesGiven], bool]
    field: str = ""


@dataclass(frozen=True)
class Price:
    """Default price per second of video, before any admin-edited ModelPrice row."""

    per_second: Decimal
    by_resolution: dict = field(default_factory=dict)
    silent_per_second: Decimal | None = None  # when audio is off, if cheaper
    currency: str = "USD"

    def for_variant(self, resolution, audio):
        """Resolution-specific price first, then the silent price, then the base price (as ModelPrice rows)."""
        if resolution in self.by_resolution:
            return self.by_resolution[resolution]
        if audio is False and self.silent_per_second is not None:
            return self.silent_per_second
        return self.per_second


@dataclass(frozen=True)
class ModelSpec:
    provider: str
    model_id: str
    family: str
    label: str
    params: tuple
    images: ImageSlots
    price: Price
    rules: tuple = ()
    # Facts fixed by the model itself (e.g. Vidu's resolution is in its id): used for display,
    # cost and probing checks, never sent as parameters.
    fixed: dict = field(default_factory=dict)
    notes: str = ""

    @property
    def key(self):
        return f"{self.provider}:{self.model_id}"

    def param(self, name):
        return next((p for p in self.params if p.name == name), None)

    @property
    def param_names(self):
        return [p.name for p in self.params]

    def effective(self, params, name):
        """A value as the provider will use it: the request's, else the model's fixed value, else the default."""
        if name in params and params[name] is not None:
            return params[name]
        if name in self.fixed:
            return self.fixed[name]
        spec = self.param(name)
        return spec.default if spec else None


# Parameter builders shared by providers ---------------------------------------------------------


def negative_prompt():
    return Param("negative_prompt", "text", "Negative prompt", default="", help="What to keep out of the video.")


def aspect_ratio(choices=("16:9", "9:16"), default="16:9", why=""):
    return Param("aspect_ratio", "choice", "Aspect ratio", default=default, choices=tuple(choices), why=why)


def resolution(choices, default="720p", why=""):
    return Param("resolution", "choice", "Resolution", default=default, choices=tuple(choices), why=why)


def duration_choices(choices, default, why=""):
    return Param("duration", "choice", "Duration", default=default, choices=tuple(choices), why=why, unit=" s")


def duration_range(minimum, maximum, default, why=""):
    return Param(
        "duration", "int", "Duration", default=default, minimum=minimum, maximum=maximum, why=why, unit=" s"
    )


def audio(default=True, help=""):
    return Param("audio", "bool", "Audio", default=default, help=help)


def seed():
    return Param(
        "seed", "int", "Seed", default=None, minimum=0, maximum=SEED_MAX, help="Same seed, similar result (not guaranteed)."
    )


def samples(maximum=4):
    return Param(
        "samples", "int", "Videos per run", default=1, minimum=1, maximum=maximum, why=f"1–{maximum} videos per request"
    )


def person_generation(choices=("allow_all", "allow_adult", "dont_allow")):
    """No default of ours: unless someone chooses, the provider applies its own (allow_all for text-to-video)."""
    return Param(
        "person_generation", "choice", "People", default=None, choices=tuple(choices),
        help="allow_all, allow_adult (adults only) or dont_allow (no people). Empty: the provider's default.",
    )


def enhance_prompt(default=False):
    return Param("enhance_prompt", "bool", "Enhance prompt", default=default, help="Let the provider rewrite the prompt.")


def upsample(default=False):
    return Param("upsample", "bool", "Upsample to 1080p", default=default)


# Rules shared by the Veo models on every provider -------------------------------------------------

VEO_DURATIONS = (4, 6, 8)
VEO_4K_WHY = "4k is only on Veo 3.1 and Veo 3.1 Fast"


def veo_hd_needs_8_seconds():
    return Rule(
        code="veo_hd_needs_8s",
        message="1080p and 4k need an 8-second duration on Veo",
        broken=lambda p, i: p.get("resolution") in ("1080p", "4k") and p.get("duration") != 8,
        field="duration",
    )


def last_frame_needs_first():
    return Rule(
        code="last_frame_needs_first",
        message="A last frame needs a first frame too",
        broken=lambda p, i: i.last_frame and not i.first_frame,
        field="last_frame",
    )


def references_exclude_frames():
    return Rule(
        code="references_exclude_frames",
        message="Reference images cannot be combined with a first or last frame",
        broken=lambda p, i: i.references > 0 and (i.first_frame or i.last_frame),
        field="reference_images",
    )


# Validation --------------------------------------------------------------------------------------


def coerce(param, value):
    """Turn a form or command-line value into the parameter's type; raise ValueError with the reason."""
    if value is None or value == "":
        return None
    if param.kind == "bool":
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in {"1", "true", "yes", "on"}:
            return True
        if text in {"0", "false", "no", "off"}:
            return False
        raise ValueError(f"{param.name} must be true or false, not “{value}”")
    if param.kind == "int" or (param.kind == "choice" and param.choices and isinstance(param.choices[0], int)):
        if isinstance(value, bool):
            raise ValueError(f"{param.name} must be a whole number")
        try:
            number = int(str(value).strip())
        except ValueError:
            raise ValueError(f"{param.name} must be a whole number, not “{value}”") from None
        return number
    return str(value).strip() if param.kind == "choice" else str(value)


def check_param(spec, param, value):
    """Return a Violation if the value is not allowed for this parameter, else None."""
    where = f"on {spec.label}"
    if param.choices and value not in param.choices:
        reason = f" ({param.why})" if param.why else ""
        return Violation(
            param.name,
            f"{param.name}_not_allowed",
            f"{param.label} {value}{param.unit} is not available {where}: choose {param.describe_allowed()}{reason}.",
        )
    if param.minimum is not None and value < param.minimum or param.maximum is not None and value > param.maximum:
        reason = f" ({param.why})" if param.why else ""
        return Violation(
            param.name,
            f"{param.name}_out_of_range",
            f"{param.label} must be {param.describe_allowed()} {where}{reason}; got {value}{param.unit}.",
        )
    return None


def check_images(spec, images):
    slots, violations = spec.images, []
    if images.first_frame and not slots.first_frame:
        violations.append(Violation("first_frame", "first_frame_not_accepted", f"{spec.label} does not take a first frame."))
    if images.last_frame and not slots.last_frame:
        violations.append(Violation("last_frame", "last_frame_not_accepted", f"{spec.label} does not take a last frame."))
    if images.references and not slots.max_references:
        violations.append(
            Violation("reference_images", "references_not_accepted", f"{spec.label} does not take reference images.")
        )
    elif images.references > slots.max_references:
        violations.append(
            Violation(
                "reference_images",
                "too_many_references",
                f"{spec.label} takes at most {slots.max_references} reference images; got {images.references}.",
            )
        )
    elif images.references < slots.min_references:
        violations.append(
            Violation(
                "reference_images",
                "references_required",
                f"{spec.label} needs {slots.min_references}–{slots.max_references} reference images.",
            )
        )
    return violations


def validate(spec, params, images=ImagesGiven()):
    """Check a request against the model's catalog entry.

    Returns the complete parameters (coerced, defaults filled in). Raises ValidationFailed naming every
    rule the request breaks; nothing is ever sent for a request that fails here.
    """
    violations, clean = [], {}
    prompt = str(params.get("prompt") or "").strip()
    if not prompt:
        violations.append(Violation("prompt", "prompt_required", "A prompt is required."))
    clean["prompt"] = prompt
    known = {p.name: p for p in spec.params}
    for name in params:
        if name != "prompt" and name not in known:
            violations.append(
                Violation(name, "unknown_parameter", f"{spec.label} has no parameter “{name}”.")
            )
    for param in spec.params:
        try:
            value = coerce(param, params.get(param.name))
        except ValueError as error:
            violations.append(Violation(param.name, f"{param.name}_invalid", str(error) + "."))
            continue
        if value is None:
            value = param.default
        elif (violation := check_param(spec, param, value)) is not None:
            violations.append(violation)
        if value is not None and not (param.kind == "text" and value == ""):
            clean[param.name] = value
    violations.extend(check_images(spec, images))
    if not violations:
        for rule in spec.rules:
            if rule.broken(clean, images):
                violations.append(Violation(rule.field, rule.code, f"{rule.message}."))
    if violations:
        raise ValidationFailed(violations)
    return clean


def estimate_cost(spec, params, price_per_second=None):
    """Estimated cost of one request: price per second × seconds × videos."""
    per_second = price_per_second
    if per_second is None:
        per_second = spec.price.for_variant(spec.effective(params, "resolution"), spec.effective(params, "audio"))
    seconds = Decimal(str(spec.effective(params, "duration") or 0))
    videos = int(params.get("samples") or 1)
    return (per_second * seconds * videos).quantize(Decimal("0.0001"))
