"""USB bundle files: batches in one signed, compressed file (format: wire.py); any missing, added
or changed byte refuses the whole file. Pure.

A bundle made for one recipient may also carry the two halves of downward, partial sync (the format
of partial_wire.py), so a child that holds only its patients' entries can be synced by hand too:
    "served": [offer, ...]  from a parent to a child that takes its logs in part: the offers a round
        would push to its /sync/offered, each {"groups", "referrals", "more"} (checked group by group
        as the child takes them, exactly like offered ones)
    "served_links": [{"origin", "from_size", "to_size", "proof": [base64]}, ...]  with "served":
        consistency proofs to a group's checkpoint from other checkpoints the child may hold (those
        the parent sent it since it last said where it stands), for the child to use in place of the
        group's own when that starts elsewhere: a lost or unimported earlier bundle refuses nothing
    "served_position": {"cursor", "referrals", "known"}  from that child to its parent: what its
        /sync/sizes answer would announce (it takes the parent's logs in part, and where it stands)
They are absent otherwise, so bundles without them read as before."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from .wire_codec import (
    _NODE_ID,
    WireError,
    _verify_ed25519,
    b64,
    check_node_id,
    compress,
    decompress,
    parse_json,
    public_key_bytes,
    unb64,
)

BUNDLE_FORMAT = "siliconhealth-bundle/1"
BUNDLE_MAGIC = b"siliconhealth-bundle/1\n"
MAX_BUNDLE_BYTES = 1024 * 1024 * 1024  # a bundle on a USB stick may hold a whole log
MAX_BUNDLE_DECOMPRESSED_BYTES = 1024 * 1024 * 1024
MAX_BATCHES = 100_000
MAX_SERVED_OFFERS = 10_000
OFFER_FIELDS = {"groups", "referrals", "more"}
POSITION_FIELDS = {"cursor", "referrals", "known"}
LINK_FIELDS = {"origin", "from_size", "to_size", "proof"}
MAX_SERVED_LINKS = 100_000


@dataclass
class Bundle:
    sender: str
    sender_public_key: str
    recipient: str | None
    created: int
    batches: list
    # Entries of the recipient's own log the sender holds: a recipient restored from an old backup may
    # write again once it holds as many (its batches of that log ride in `batches`).
    recipient_log_size: int | None = None
    served: list | None = None  # offers of served groups, to a child taking the sender's logs in part
    served_position: dict | None = None  # the sender (such a child) announcing where it stands
    served_links: list | None = None  # other consistency proofs to the served groups' checkpoints


def bundle_document(
    *,
    sender: str,
    sender_public_key: str,
    recipient: str | None,
    created: int,
    batches: list,
    recipient_log_size: int | None = None,
    served: list | None = None,
    served_position: dict | None = None,
    served_links: list | None = None,
):
    document = {
        "format": BUNDLE_FORMAT,
        "sender": sender,
        "sender_public_key": sender_public_key,
        "recipient": recipient,
        "created": created,
        "batches": batches,
    }
    if recipient_log_size is not None:  # absent otherwise: older bundles read the same
        document["recipient_log_size"] = recipient_log_size
    if served is not None:
        document["served"] = served
    if served_position is not None:
        document["served_position"] = served_position
    if served_links is not None:
        document["served_links"] = served_links
    return document


def _bundle_signed_part(header: bytes, body: bytes) -> bytes:
    return BUNDLE_MAGIC + header + b"\n" + body


def write_bundle(
    private_key: Ed25519PrivateKey,
    *,
    sender: str,
    sender_public_key: str,
    batches: list,
    recipient: str | None = None,
    created: int | None = None,
    recipient_log_size: int | None = None,
    served: list | None = None,
    served_position: dict | None = None,
    served_links: list | None = None,
) -> bytes:
    if recipient is None and (
        recipient_log_size is not None or served is not None or served_position is not None
    ):
        raise WireError("recipient_log_size, served and served_position need a recipient")
    if served_links is not None and served is None:
        raise WireError("served_links go with served offers")
    document = bundle_document(
        sender=sender,
        sender_public_key=sender_public_key,
        recipient=recipient,
        created=int(time.time()) if created is None else created,
        batches=batches,
        recipient_log_size=recipient_log_size,
        served=served,
        served_position=served_position,
        served_links=served_links,
    )
    body = compress(document, level=19)
    header = f"{sender} {sender_public_key} {len(body)}".encode()
    signature = private_key.sign(_bundle_signed_part(header, body))
    return BUNDLE_MAGIC + header + b" " + b64(signature).encode() + b"\n" + body


def read_bundle(
    data: bytes,
    *,
    accept_sender: Callable[[str, str], None] | None = None,
    max_size: int = MAX_BUNDLE_DECOMPRESSED_BYTES,
) -> Bundle:
    """The bundle's document, once the whole file is proven to be what its sender signed; any missing,
    added or changed byte refuses the whole file, with the reason. `accept_sender(node_id, public_key)`
    raises WireError for a sender we do not accept, before anything is decompressed."""
    if len(data) > MAX_BUNDLE_BYTES:
        raise WireError(f"the bundle is {len(data)} bytes; the limit is {MAX_BUNDLE_BYTES}")
    if not data.startswith(BUNDLE_MAGIC):
        raise WireError("not a SiliconHealth sync bundle (bad magic line)")
    end = data.find(b"\n", len(BUNDLE_MAGIC), len(BUNDLE_MAGIC) + 512)
    if end < 0:
        raise WireError("the bundle's signature line is missing or cut short (truncated file)")
    line = data[len(BUNDLE_MAGIC) : end]
    parts = line.split(b" ")
    if len(parts) != 4 or not parts[2].isdigit():
        raise WireError("the bundle's signature line is malformed (edited file)")
    try:
        sender, public_key, length_text = (p.decode("ascii") for p in parts[:3])
    except UnicodeDecodeError:
        raise WireError("the bundle's signature line is malformed (edited file)") from None
    try:
        check_node_id(sender, public_key)
        signature = unb64(parts[3].decode("ascii", "replace"), "bundle signature", 64)
    except WireError as error:
        raise WireError(f"the bundle's signature line is not valid: {error}") from None
    body = data[end + 1 :]
    length = int(length_text)
    if len(body) < length:
        raise WireError(f"the bundle is truncated: its body has {len(body)} of {length} bytes")
    if len(body) > length:
        raise WireError(f"the bundle has {len(body) - length} bytes after its end (edited or appended file)")
    header = b" ".join(parts[:3])
    if not _verify_ed25519(public_key_bytes(public_key), signature, _bundle_signed_part(header, body)):
        raise WireError(f"the bundle's signature by {sender} does not verify: the file was altered")
    if accept_sender is not None:
        accept_sender(sender, public_key)
    document = parse_json(decompress(body, max_size=max_size))
    if not isinstance(document, dict) or document.get("format") != BUNDLE_FORMAT:
        raise WireError("the bundle's body is not a siliconhealth-bundle/1 document")
    expected = {"format", "sender", "sender_public_key", "recipient", "created", "batches"}
    optional = {"recipient_log_size", "served", "served_position", "served_links"}
    if not expected <= set(document) <= expected | optional:
        raise WireError(
            f"a bundle has exactly the fields {', '.join(sorted(expected))} "
            f"(and may have {', '.join(sorted(optional))})"
        )
    if document["sender"] != sender or document["sender_public_key"] != public_key:
        raise WireError("the bundle's body names another sender than its signature line")
    recipient = document["recipient"]
    if recipient is not None and (not isinstance(recipient, str) or not _NODE_ID.match(recipient)):
        raise WireError("the bundle's recipient is not a node id")
    if type(document["created"]) is not int:
        raise WireError("the bundle's creation time is not an integer")
    recipient_log_size = document.get("recipient_log_size")
    if recipient_log_size is not None and (
        recipient is None or type(recipient_log_size) is not int or not 0 <= recipient_log_size < 2**63
    ):
        raise WireError("the bundle's recipient_log_size must be a size, in a bundle with a recipient")
    batches = document["batches"]
    if not isinstance(batches, list) or len(batches) > MAX_BATCHES:
        raise WireError(f"the bundle's batches must be a list of at most {MAX_BATCHES}")
    served, position = _check_served(document, recipient)
    links = _check_links(document.get("served_links"), served)
    return Bundle(
        sender,
        public_key,
        recipient,
        document["created"],
        batches,
        recipient_log_size,
        served,
        position,
        links,
    )


def _check_served(document: dict, recipient: str | None) -> tuple[list | None, dict | None]:
    """The shape of the partial-sync sections; their groups and sizes are checked by partial_wire as
    they are taken (check_offer, check_group, check_announce)."""
    served, position = document.get("served"), document.get("served_position")
    if (served is not None or position is not None) and recipient is None:
        raise WireError("served entries and a served position are only in a bundle with a recipient")
    if served is not None:
        if not isinstance(served, list) or len(served) > MAX_SERVED_OFFERS:
            raise WireError(f"the bundle's served offers must be a list of at most {MAX_SERVED_OFFERS}")
        for position_in_list, offer in enumerate(served):
            if not isinstance(offer, dict) or set(offer) != OFFER_FIELDS:
                raise WireError(f"the bundle's served[{position_in_list}] is not {{groups, referrals, more}}")
    if position is not None and (not isinstance(position, dict) or set(position) != POSITION_FIELDS):
        raise WireError("the bundle's served_position is not {cursor, referrals, known}")
    return served, position


def _check_links(links, served: list | None) -> list | None:
    """The shape of served_links; each proof is verified only if the child uses it (check_group)."""
    if links is None:
        return None
    if served is None:
        raise WireError("the bundle's served_links go with served offers")
    if not isinstance(links, list) or len(links) > MAX_SERVED_LINKS:
        raise WireError(f"the bundle's served_links must be a list of at most {MAX_SERVED_LINKS}")
    for position, link in enumerate(links):
        if (
            not isinstance(link, dict)
            or set(link) != LINK_FIELDS
            or not isinstance(link["origin"], str)
            or type(link["from_size"]) is not int
            or type(link["to_size"]) is not int
            or not 0 < link["from_size"] < link["to_size"] < 2**63
            or not isinstance(link["proof"], list)
        ):
            raise WireError(
                f"the bundle's served_links[{position}] is not {{origin, from_size < to_size, proof}}"
            )
    return links
