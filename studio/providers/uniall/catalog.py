"""UniAll's Vidu Q3 models. The resolution is part of the model id, so it is a fixed fact, not a parameter.

The mode follows from the images given: none is text-to-video, a first frame is image-to-video, a first
and a last frame is first/last-frame video, and the "mix" model turns 1–4 reference images into a video.
"""

from dataclasses import replace
from decimal import Decimal

from studio.providers.catalog import (
    ImageSlots,
    ModelSpec,
    Price,
    aspect_ratio,
    audio,
    duration_range,
    last_frame_needs_first,
    seed,
)

PROVIDER = "uniall"

ASPECT_RATIO = replace(
    aspect_ratio(("16:9", "9:16", "1:1")),
    help="Documented as effective for text-to-video; with images it is sent but may not change the result.",
)
DURATION = duration_range(1, 16, 5, why="Vidu Q3 makes 1–16 s videos")
AUDIO = audio(default=True, help="Vidu Q3 adds sound by default.")
PARAMS = (ASPECT_RATIO, DURATION, AUDIO, seed())

FRAMES = ImageSlots(first_frame=True, last_frame=True)
REFERENCES = ImageSlots(max_references=4, min_references=1)

PRO_PRICES = {"540p": Decimal("0.07"), "720p": Decimal("0.10"), "1080p": Decimal("0.15")}
TURBO_PRICES = {"540p": Decimal("0.04"), "720p": Decimal("0.06"), "1080p": Decimal("0.09")}
OFF_PEAK_DISCOUNT = Decimal("0.5")


def vidu(model_id, family, resolution, per_second, *, variant="", images=FRAMES):
    label = f"{family} {resolution}" + (f" ({variant})" if variant else "")
    return ModelSpec(
        provider=PROVIDER,
        model_id=model_id,
        family=family,
        label=label,
        params=PARAMS,
        images=images,
        price=Price(per_second=per_second),
        rules=(last_frame_needs_first(),) if images.last_frame else (),
        fixed={"resolution": resolution},
    )


MODELS = [
    *(vidu(f"viduq3p-{res}", "Vidu Q3 Pro", res, price) for res, price in PRO_PRICES.items()),
    *(vidu(f"viduq3t-{res}", "Vidu Q3 Turbo", res, price) for res, price in TURBO_PRICES.items()),
    vidu("viduq3p-1080p-offpeak", "Vidu Q3 Pro", "1080p", PRO_PRICES["1080p"] * OFF_PEAK_DISCOUNT,
         variant="off-peak"),
    vidu("viduq3p-mix-720p", "Vidu Q3 Pro", "720p", PRO_PRICES["720p"],
         variant="reference mix", images=REFERENCES),
]
