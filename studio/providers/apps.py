from django.apps import AppConfig


class ProvidersConfig(AppConfig):
    name = "studio.providers"
    label = "providers"
    verbose_name = "Providers"
