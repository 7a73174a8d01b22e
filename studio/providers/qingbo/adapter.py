from studio.providers.adapter import ProviderAdapter


class QingboAdapter(ProviderAdapter):
    slug = "qingbo"
    label = "Qingbo"
