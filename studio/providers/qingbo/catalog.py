"""QWave (qingbo.dev) models: Veo 3.1, Veo 3.1 Fast and Veo 3 behind one task API.

From the provider's page: aspect ratio 16:9 or 9:16, 4/6/8 s (default 8), 720p by default; 1080p and 4k
need 8 s; 4k only on the 3.1 family; seed only on the 3.1 family; audio is native and cannot be turned off.
Images (first frame, last frame, up to 3 references) come from the provider's newer page.
"""

from decimal import Decimal

from studio.providers.catalog import (
    VEO_4K_WHY,
    VEO_DURATIONS,
    ImageSlots,
    ModelSpec,
    Price,
    Rule,
    aspect_ratio,
    duration_choices,
    last_frame_needs_first,
    negative_prompt,
    person_generation,
    references_exclude_frames,
    resolution,
    seed,
    veo_hd_needs_8_seconds,
)

PROVIDER = "qingbo"
ALWAYS_AUDIO = {"audio": True}
# Veo 3 has no 4k, so its price table simply never meets the 4k entry.
VEO_PRICE = Price(
    per_second=Decimal("0.40"), silent_per_second=Decimal("0.20"), by_resolution={"4k": Decimal("0.60")}
)
VEO_FAST_PRICE = Price(
    per_second=Decimal("0.15"), silent_per_second=Decimal("0.10"), by_resolution={"4k": Decimal("0.35")}
)


def references_need_16x9_8_seconds():
    return Rule(
        code="veo_references_need_16x9_8s",
        message="Reference images on Veo 3.1 need a 16:9 aspect ratio and an 8-second duration",
        broken=lambda p, i: i.references > 0 and (p.get("aspect_ratio") != "16:9" or p.get("duration") != 8),
        field="reference_images",
    )


def veo_31(model_id, label, price):
    return ModelSpec(
        provider=PROVIDER,
        model_id=model_id,
        family=label,
        label=label,
        params=(
            negative_prompt(),
            aspect_ratio(),
            resolution(("720p", "1080p", "4k")),
            duration_choices(VEO_DURATIONS, default=8),
            seed(),
            person_generation(),
        ),
        images=ImageSlots(first_frame=True, last_frame=True, max_references=3),
        price=price,
        rules=(
            veo_hd_needs_8_seconds(),
            last_frame_needs_first(),
            references_exclude_frames(),
            references_need_16x9_8_seconds(),
        ),
        fixed=ALWAYS_AUDIO,
    )


MODELS = [
    veo_31("veo-3.1", "Veo 3.1", VEO_PRICE),
    veo_31("veo-3.1-fast", "Veo 3.1 Fast", VEO_FAST_PRICE),
    ModelSpec(
        provider=PROVIDER,
        model_id="veo-3.0",
        family="Veo 3",
        label="Veo 3",
        params=(
            negative_prompt(),
            aspect_ratio(),
            resolution(("720p", "1080p"), why=VEO_4K_WHY),
            duration_choices(VEO_DURATIONS, default=8),
            person_generation(),
        ),
        images=ImageSlots(first_frame=True),
        price=VEO_PRICE,
        rules=(veo_hd_needs_8_seconds(),),
        fixed=ALWAYS_AUDIO,
        notes="No seed, last frame or reference images on Veo 3.",
    ),
]
