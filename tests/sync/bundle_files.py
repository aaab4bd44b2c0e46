"""USB bundles signed by a test's stand-in node (a FakeLog or a RemoteNode: anything with its key,
node_id and public_b64), for the tests that read or import them."""

from pathlib import Path

from ledger import selectors as ledger_selectors
from sync import wire

ME = "me"  # as the recipient: this node, its id read when the bundle is written (inside the test database)


def bundle_bytes(sender, batches=(), *, recipient=None, **options) -> bytes:
    """wire.write_bundle by `sender`, for `recipient` (None: for anyone; ME: this node)."""
    return wire.write_bundle(
        sender.key,
        sender=sender.node_id,
        sender_public_key=sender.public_b64,
        batches=list(batches),
        recipient=ledger_selectors.self_node_id() if recipient == ME else recipient,
        **options,
    )


def bundle_file(tmp_path: Path, sender, batches=(), name="bundle.shb", recipient=None, **options) -> Path:
    """The same bundle written to tmp_path / name (replacing any file of that name)."""
    path = tmp_path / name
    path.write_bytes(bundle_bytes(sender, batches, recipient=recipient, **options))
    return path
