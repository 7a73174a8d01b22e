"""APIMP's Veo models: the four Veo 3 ids its generate gateway documents, first frame only."""

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
    person_generation,
    resolution,
    seed,
    veo_hd_needs_8_seconds,
)

PROVIDER = "apimp"

VEO_PRICE = Price(per_second=Decimal("0.40"), silent_per_second=Decimal("0.20"), by_resolution={"4k": Decimal("0.60")})
VEO_FAST_PRICE = Price(
    per_second=Decimal("0.15"), silent_per_second=Decimal("0.10"), by_resolution={"4k": Decimal("0.35")}
)


def veo_model(model_id, label, *, price, has_4k):
    resolutions = ("720p", "1080p", "4k") if has_4k else ("720p", "1080p")
    return ModelSpec(
        provider=PROVIDER,
        model_id=model_id,
        family=label,
        label=label,
        params=(
            negative_prompt(),
            aspect_ratio(),
            resolution(resolutions, why="" if has_4k else VEO_4K_WHY),
            duration_choices(VEO_DURATIONS, default=8),
            audio(default=True),
            seed(),
            person_generation(),
        ),
        # The gateway reads one first frame (input.image, or the first of input.images) and nothing else.
        images=ImageSlots(first_frame=True),
        price=price,
        rules=(veo_hd_needs_8_seconds(),),
    )


MODELS = [
    veo_model("veo-3.0-generate-001", "Veo 3", price=VEO_PRICE, has_4k=False),
    veo_model("veo-3.0-fast-generate-001", "Veo 3 Fast", price=VEO_FAST_PRICE, has_4k=False),
    veo_model("veo-3.1-generate-preview", "Veo 3.1", price=VEO_PRICE, has_4k=True),
    veo_model("veo-3.1-fast-generate-preview", "Veo 3.1 Fast", price=VEO_FAST_PRICE, has_4k=True),
]
