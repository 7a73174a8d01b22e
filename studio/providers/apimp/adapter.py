from studio.providers.adapter import ProviderAdapter


class ApimpAdapter(ProviderAdapter):
    slug = "apimp"
    label = "Apimp"
