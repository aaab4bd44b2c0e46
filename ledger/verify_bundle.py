"""Check a SiliconHealth proof bundle offline: `python -m ledger.verify_bundle FILE [--public-key KEY]`.

Standard library plus `cryptography` (Ed25519) only: no Django, no database, no network. It checks
that the node id is derived from the public key, the checkpoint's signature, every entry's inclusion
in the signed tree, and that every entry is about one record. Pin the node's key with --public-key
(from `node info` or the district's registry): without it, the bundle vouches only for itself.
Exit 0 if valid, 1 if not (with the reason), 2 if the file cannot be read.
"""

import argparse
import base64
import binascii
import hashlib
import json
import sys

from ledger import merkle, note
from ledger.canonical import CanonicalError, canonical_json
from ledger.entries import entry_leaf_hash, log_origin

FORMAT = "siliconhealth-proof-bundle/1"
MAX_BUNDLE_BYTES = 64 * 1024 * 1024


class BundleInvalid(ValueError):
    pass


def _b64(text, what: str, size: int | None = None) -> bytes:
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, TypeError):
        raise BundleInvalid(f"{what} is not base64") from None
    if size is not None and len(raw) != size:
        raise BundleInvalid(f"{what} is {len(raw)} bytes, not {size}")
    if base64.b64encode(raw).decode() != text:
        raise BundleInvalid(f"{what} is not in canonical base64")
    return raw


_FIELDS = {"format", "origin", "node_id", "public_key", "checkpoint", "entries", "asic_proofs"}


def parse(raw: bytes) -> dict:
    """The bundle in `raw`, which must be canonical JSON (so that no byte can change unnoticed)."""
    if len(raw) > MAX_BUNDLE_BYTES:
        raise BundleInvalid("the bundle is larger than 64 MB")
    try:
        bundle = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise BundleInvalid(f"not JSON: {error}") from None
    try:
        canonical = canonical_json(bundle)
    except CanonicalError as error:
        raise BundleInvalid(f"not canonical JSON: {error}") from None
    if raw.rstrip(b"\n") != canonical:
        raise BundleInvalid("not in canonical form (keys sorted, no spaces): the file was edited")
    return bundle


def verify(bundle: dict, pinned_public_key: str | None = None, proof_checkers=()) -> dict:
    """Raise BundleInvalid with a reason, or return a summary of what was proven."""
    if not isinstance(bundle, dict) or bundle.get("format") != FORMAT:
        raise BundleInvalid(f"not a {FORMAT} file")
    if set(bundle) != _FIELDS:
        raise BundleInvalid(f"unexpected or missing fields: {sorted(set(bundle) ^ _FIELDS)}")
    public_key = _b64(bundle.get("public_key"), "public_key", 32)
    if pinned_public_key is not None and _b64(pinned_public_key, "--public-key", 32) != public_key:
        raise BundleInvalid("the bundle is signed by a different key than the one you pinned")
    node_id = bundle.get("node_id")
    if node_id != "sh-" + hashlib.sha256(public_key).hexdigest()[:16]:
        raise BundleInvalid("node_id is not derived from public_key")
    if bundle.get("origin") != log_origin(node_id):
        raise BundleInvalid("origin does not name this node's log")
    try:
        body = note.parse_checkpoint(
            note.open_note(str(bundle.get("checkpoint")), bundle["origin"], public_key)
        )
    except note.NoteError as error:
        raise BundleInvalid(f"checkpoint: {error}") from None
    if body.origin != bundle["origin"]:
        raise BundleInvalid("the signed checkpoint is for another log")
    entries = bundle.get("entries")
    if not isinstance(entries, list) or not entries:
        raise BundleInvalid("the bundle holds no entries")
    record_ids = set()
    for position, item in enumerate(entries):
        try:
            envelope, index, proof = item["entry"], item["index"], item["inclusion_proof"]
        except (KeyError, TypeError):
            raise BundleInvalid(f"entries[{position}] lacks entry, index or inclusion_proof") from None
        if set(item) != {"entry", "index", "inclusion_proof"}:
            raise BundleInvalid(f"entries[{position}] has unexpected fields")
        if (
            not isinstance(envelope, dict)
            or envelope.get("index") != index
            or envelope.get("origin") != node_id
        ):
            raise BundleInvalid(f"entries[{position}] claims another index or origin than its envelope")
        if not isinstance(index, int) or not isinstance(proof, list):
            raise BundleInvalid(f"entries[{position}] is malformed")
        try:
            leaf = entry_leaf_hash(envelope)
            hashes = [_b64(h, f"entries[{position}].inclusion_proof", 32) for h in proof]
            merkle.verify_inclusion(leaf, index, body.size, hashes, body.root_hash)
        except (merkle.ProofError, TypeError) as error:
            raise BundleInvalid(
                f"entries[{position}] (index {index}) is not in the signed log: {error}"
            ) from None
        record_ids.add(envelope.get("id"))
    if len(record_ids) != 1:
        raise BundleInvalid("the entries are about more than one record")
    checked_proofs = 0
    for checker in proof_checkers:
        checked_proofs += checker(bundle, note.note_hash(bundle["checkpoint"]))
    work = 0
    if checked_proofs:
        from ledger.verify_asic import total_work  # recomputed from each share's difficulty, not trusted

        work = total_work(bundle)
    latest = max(entries, key=lambda item: item["entry"].get("hlc", 0))["entry"]
    return {
        "ok": True,
        "record": record_ids.pop(),
        "object_type": latest.get("type"),
        "versions": len(entries),
        "node_id": node_id,
        "key_fingerprint": hashlib.sha256(public_key).hexdigest()[:16],
        "checkpoint_size": body.size,
        "root_hash": body.root_hash.hex(),
        "asic_proofs": checked_proofs,
        "asic_work": work,
        "payload": latest.get("payload"),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ledger.verify_bundle", description=__doc__.split("\n")[0]
    )
    parser.add_argument("file")
    parser.add_argument("--public-key", help="the node's Ed25519 public key (base64), obtained out of band")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    try:
        with open(args.file, "rb") as handle:
            raw = handle.read(MAX_BUNDLE_BYTES + 1)
    except OSError as error:
        print(f"cannot read {args.file}: {error}", file=sys.stderr)
        return 2
    try:
        bundle = parse(raw)
        from ledger.verify_asic import check_asic_proofs

        summary = verify(bundle, args.public_key, proof_checkers=[check_asic_proofs])
    except BundleInvalid as error:
        if args.json:
            print(json.dumps({"ok": False, "reason": str(error)}))
        else:
            print(f"INVALID: {error}")
        return 1
    if args.json:
        print(json.dumps(summary, sort_keys=True))
    else:
        print(
            f"VALID: record {summary['record']} ({summary['object_type']}), {summary['versions']} version(s)"
        )
        print(f"  in the log of {summary['node_id']} (key fingerprint {summary['key_fingerprint']}),")
        print(f"  signed checkpoint at size {summary['checkpoint_size']}, root {summary['root_hash']}")
        print(
            f"  proof-of-work shares bound to that checkpoint: {summary['asic_proofs']} "
            f"(about {summary['asic_work']:.3g} hashes of work)"
        )
        if args.public_key is None:
            print("  note: no --public-key given; compare the key fingerprint with the node's published one")
    return 0


if __name__ == "__main__":
    sys.exit(main())
