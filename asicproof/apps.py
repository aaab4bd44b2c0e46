from django.apps import AppConfig


class AsicproofConfig(AppConfig):
    name = "asicproof"
    verbose_name = "ASIC proofs"

    def ready(self):
        from ledger import bundle

        from .selectors import proofs_for_bundle

        if proofs_for_bundle not in bundle.checkpoint_proof_providers:
            bundle.checkpoint_proof_providers.append(proofs_for_bundle)
