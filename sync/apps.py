from django.apps import AppConfig


class SyncConfig(AppConfig):
    name = "sync"
    verbose_name = "Node-to-node sync"

    def ready(self):
        from ledger.registry import register_partial_logs, register_record_edited

        from .conflicts import refresh_after_edit
        from .partial import partial_verifiers

        register_partial_logs(partial_verifiers)
        register_record_edited(refresh_after_edit)
