"""Cost estimates: the catalog's default prices, overridden by ModelPrice rows that admins edit."""

from studio.providers.catalog import estimate_cost
from studio.providers.models import ModelPrice
from studio.providers.registry import all_specs


def _audio_key(audio):
    return "on" if audio is True else "off" if audio is False else ""


def price_per_second(spec, params, rows=None):
    """The most specific price: resolution and audio, then resolution, then audio, then the model's base."""
    resolution = spec.effective(params, "resolution") or ""
    audio = _audio_key(spec.effective(params, "audio"))
    if rows is None:
        rows = ModelPrice.objects.filter(provider=spec.provider, model=spec.model_id)
    by_variant = {(row.resolution, row.audio): row.price_per_second for row in rows}
    for variant in [(resolution, audio), (resolution, ""), ("", audio), ("", "")]:
        if variant in by_variant:
            return by_variant[variant]
    return spec.price.for_variant(resolution, spec.effective(params, "audio"))


def estimate(spec, params):
    return estimate_cost(spec, params, price_per_second(spec, params)), spec.price.currency


def load_default_prices():
    """Write the catalog's default prices as ModelPrice rows (only the missing ones), so admins can edit them."""
    created = 0
    for spec in all_specs():
        variants = [("", "", spec.price.per_second)]
        if spec.price.silent_per_second is not None:
            variants.append(("", "off", spec.price.silent_per_second))
        variants += [(resolution, "", price) for resolution, price in spec.price.by_resolution.items()]
        for resolution, audio, price in variants:
            _, made = ModelPrice.objects.get_or_create(
                provider=spec.provider, model=spec.model_id, resolution=resolution, audio=audio,
                defaults={"price_per_second": price, "currency": spec.price.currency},
            )
            created += made
    return created
