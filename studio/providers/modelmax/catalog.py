"""ModelMax's video models: Veo 3 and Veo 3 Fast behind a fal.ai-style queue.

The endpoint's document lists 4k, but these are Veo 3.0 models, which stop at 1080p; ModelMax
refuses 4k for them. Durations are Veo's 4, 6 and 8 s, and ModelMax caps them at 8 s.
"""

from decimal import Decimal

from studio.providers.catalog import (
    VEO_4K_WHY,
    VEO_DURATIONS,
    ImageSlots,
    ModelSpec,
    Price,
    aspect_ratio,
    audio,
    duration_choices,
    negative_prompt,
    resolution,
    samples,
    veo_hd_needs_8_seconds,
)

DURATION_WHY = "ModelMax caps duration at 8 s"


def veo3_params():
    return (
        negative_prompt(),
        aspect_ratio(("16:9", "9:16"), default="16:9"),
        resolution(("720p", "1080p"), default="720p", why=VEO_4K_WHY),
        duration_choices(VEO_DURATIONS, default=8, why=DURATION_WHY),
        audio(default=True),
        samples(maximum=4),
    )


def veo3_model(model_id, label, price):
    return ModelSpec(
        provider="modelmax",
        model_id=model_id,
        family=label,
        label=label,
        params=veo3_params(),
        images=ImageSlots(first_frame=True),
        price=price,
        rules=(veo_hd_needs_8_seconds(),),
        notes="Image-to-video takes a first frame only. Fetching a finished result is what ModelMax bills.",
    )


MODELS = [
    veo3_model("veo-3", "Veo 3", Price(per_second=Decimal("0.40"), silent_per_second=Decimal("0.20"))),
    veo3_model("veo-3-fast", "Veo 3 Fast", Price(per_second=Decimal("0.15"), silent_per_second=Decimal("0.10"))),
]
