from django.apps import AppConfig


class SearchConfig(AppConfig):
    name = "records.search"
    label = "search"
    verbose_name = "Semantic search"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from . import signals

        signals.connect()
