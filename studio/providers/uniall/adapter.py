from studio.providers.adapter import ProviderAdapter


class UniAllAdapter(ProviderAdapter):
    slug = "uniall"
    label = "UniAll"
