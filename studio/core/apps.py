from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "studio.core"
    label = "core"
    verbose_name = "Studio"

    def ready(self):
        from studio.core.redaction import install_log_redaction

        install_log_redaction()
