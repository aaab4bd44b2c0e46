"""Checks of the proof-of-work shares in a proof bundle (standard library only).

Each share must rebuild to an 80-byte header whose double SHA-256 is under its difficulty's target,
commit to the bundle's signed checkpoint (the note's SHA-256 in prevhash), and name the bundle's
node in its coinbase. The work of the valid shares is what rewriting that checkpoint would cost.
"""

MAX_PROOFS = 10_000


def check_asic_proofs(bundle: dict, checkpoint_hash: bytes) -> int:
    from asicproof.stratum.proof import verify_proof
    from ledger.verify_bundle import BundleInvalid

    proofs = bundle.get("asic_proofs", [])
    if not isinstance(proofs, list) or len(proofs) > MAX_PROOFS:
        raise BundleInvalid("asic_proofs is not a list of at most 10,000 shares")
    seen = set()
    for position, proof in enumerate(proofs):
        if not isinstance(proof, dict):
            raise BundleInvalid(f"asic_proofs[{position}] is not an object")
        check = verify_proof(proof)
        if not check.ok:
            raise BundleInvalid(f"asic_proofs[{position}] is not a valid share: {'; '.join(check.problems)}")
        if check.checkpoint != checkpoint_hash.hex():
            raise BundleInvalid(f"asic_proofs[{position}] is bound to another checkpoint")
        if check.node_id != bundle.get("node_id"):
            raise BundleInvalid(f"asic_proofs[{position}] names another node")
        if check.hash in seen:
            raise BundleInvalid(f"asic_proofs[{position}] repeats a share")
        seen.add(check.hash)
    return len(proofs)


def total_work(bundle: dict) -> int:
    from asicproof.stratum.proof import verify_proof

    return sum(verify_proof(proof).work for proof in bundle.get("asic_proofs", []))
