"""The Veo reseller template's models (`/v1/video/create` + `/v1/video/query`).

The seed lists veo2, veo2-fast, veo2-fast-frames, veo2-fast-components, veo2-pro, veo3, veo3-fast,
veo3-pro and veo3-pro-frames; resellers on the same template add the veo3.1 family. None of them take a
duration, resolution, seed, negative prompt or audio switch: every clip is 8 s at 720p (upsampling
delivers 1080p, veo3.1-4k delivers 4k), Veo 3 and 3.1 always with sound, Veo 2 always silent.
"""

from decimal import Decimal

from studio.providers.catalog import (
    ImageSlots,
    ModelSpec,
    Price,
    aspect_ratio,
    enhance_prompt,
    last_frame_needs_first,
    references_exclude_frames,
    upsample,
)

PROVIDER = "veoquery"

VEO2_PRICE = Price(per_second=Decimal("0.35"))
VEO3_PRICE = Price(
    per_second=Decimal("0.40"), silent_per_second=Decimal("0.20"), by_resolution={"4k": Decimal("0.60")}
)
VEO3_FAST_PRICE = Price(
    per_second=Decimal("0.15"), silent_per_second=Decimal("0.10"), by_resolution={"4k": Decimal("0.35")}
)

FIRST_FRAME = ImageSlots(first_frame=True)
FRAMES = ImageSlots(first_frame=True, last_frame=True)
REFERENCES = ImageSlots(max_references=3, min_references=1)

VEO2_FIXED = {"duration": 8, "resolution": "720p", "audio": False, "aspect_ratio": "16:9"}
VEO3_FIXED = {"duration": 8, "resolution": "720p", "audio": True}


def rules_for(images):
    if images == FRAMES:
        return (last_frame_needs_first(),)
    if images == REFERENCES:
        # Shadowed today by the slots (these models take no frames at all); kept so the form and any
        # future model that takes both state the rule the provider enforces.
        return (references_exclude_frames(),)
    return ()


def veo2(model_id, label, images=FIRST_FRAME):
    return ModelSpec(
        provider=PROVIDER,
        model_id=model_id,
        family="Veo 2 Fast" if "fast" in model_id else "Veo 2",
        label=label,
        params=(enhance_prompt(), upsample()),
        images=images,
        price=VEO2_PRICE,
        rules=rules_for(images),
        fixed=dict(VEO2_FIXED),
        notes="8 s, 720p (1080p when upsampled), 16:9, silent.",
    )


def veo3(model_id, label, family, price, images=FRAMES):
    return ModelSpec(
        provider=PROVIDER,
        model_id=model_id,
        family=family,
        label=label,
        params=(aspect_ratio(), enhance_prompt(), upsample()),
        images=images,
        price=price,
        rules=rules_for(images),
        fixed=dict(VEO3_FIXED),
        notes="8 s, 720p (1080p when upsampled), with audio.",
    )


def veo31_4k():
    """Delivered in 4k by the model itself, so there is nothing to upsample."""
    return ModelSpec(
        provider=PROVIDER,
        model_id="veo3.1-4k",
        family="Veo 3.1",
        label="Veo 3.1 4K",
        params=(aspect_ratio(), enhance_prompt()),
        images=FRAMES,
        price=VEO3_PRICE,
        rules=rules_for(FRAMES),
        fixed={**VEO3_FIXED, "resolution": "4k"},
        notes="8 s, 4k, with audio.",
    )


MODELS = [
    veo2("veo2", "Veo 2"),
    veo2("veo2-fast", "Veo 2 Fast"),
    veo2("veo2-fast-frames", "Veo 2 Fast (first + last frame)", images=FRAMES),
    veo2("veo2-fast-components", "Veo 2 Fast (reference images)", images=REFERENCES),
    veo2("veo2-pro", "Veo 2 Pro"),
    veo3("veo3", "Veo 3", "Veo 3", VEO3_PRICE, images=FIRST_FRAME),
    veo3("veo3-fast", "Veo 3 Fast", "Veo 3 Fast", VEO3_FAST_PRICE, images=FIRST_FRAME),
    veo3("veo3-pro", "Veo 3 Pro", "Veo 3", VEO3_PRICE, images=FIRST_FRAME),
    veo3("veo3-pro-frames", "Veo 3 Pro (first + last frame)", "Veo 3", VEO3_PRICE),
    veo3("veo3.1", "Veo 3.1", "Veo 3.1", VEO3_PRICE),
    veo3("veo3.1-fast", "Veo 3.1 Fast", "Veo 3.1 Fast", VEO3_FAST_PRICE),
    veo3("veo3.1-pro", "Veo 3.1 Pro", "Veo 3.1", VEO3_PRICE),
    veo31_4k(),
    veo3("veo3.1-components", "Veo 3.1 (reference images)", "Veo 3.1", VEO3_PRICE, images=REFERENCES),
]
