"""The providers the studio speaks. Adding one means adding its package and one line here."""

from studio.providers import apimp, modelmax, qingbo, uniall, veoquery

ADAPTERS = {
    adapter.slug: adapter
    for adapter in (
        modelmax.adapter,
        qingbo.adapter,
        apimp.adapter,
        veoquery.adapter,
        uniall.adapter,
    )
}


class UnknownModel(LookupError):
    pass


def adapter_for(provider):
    try:
        return ADAPTERS[provider]
    except KeyError:
        raise LookupError(f"No provider protocol called “{provider}”; known: {', '.join(ADAPTERS)}.") from None


def all_specs():
    return [spec for adapter in ADAPTERS.values() for spec in adapter.models]


def model_spec(provider, model_id):
    for spec in adapter_for(provider).models:
        if spec.model_id == model_id:
            return spec
    known = ", ".join(spec.model_id for spec in adapter_for(provider).models)
    raise UnknownModel(f"{provider} has no model “{model_id}”. Its models: {known}.")
