from studio.providers.adapter import ProviderAdapter


class ModelMaxAdapter(ProviderAdapter):
    slug = "modelmax"
    label = "ModelMax"
