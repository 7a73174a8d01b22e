from studio.providers.adapter import ProviderAdapter


class VeoQueryAdapter(ProviderAdapter):
    slug = "veoquery"
    label = "VeoQuery"
