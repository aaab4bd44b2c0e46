"""Checks of the proof-of-work shares in a proof bundle (standard library only).

Until asicproof stores shares, a bundle carries none and this checks nothing; a bundle that carries
shares in a form this version does not know is refused rather than passed unchecked.
"""


def check_asic_proofs(bundle: dict, checkpoint_hash: bytes) -> int:
    proofs = bundle.get("asic_proofs", [])
    if not isinstance(proofs, list):
        from ledger.verify_bundle import BundleInvalid

        raise BundleInvalid("asic_proofs is not a list")
    if proofs:
        from ledger.verify_bundle import BundleInvalid

        raise BundleInvalid("this verifier does not yet know how to check ASIC proofs")
    return 0
