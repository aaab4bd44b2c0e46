"""Argument checks shared by poll() and point_at_node(): they raise ValueError with a readable reason.

Hosts are bare: an IPv4 address or a DNS name (device addresses may also be IPv6 literals). A
Stratum host may be written "stratum+tcp://host" or "stratum+tcp://host:port" (as the node's UI
shows it); the scheme is stripped, and a port in it must agree with the port given separately.
"""

from __future__ import annotations

import ipaddress
import re

from .reading import KINDS

STRATUM_SCHEME = "stratum+tcp://"
MAX_CREDENTIAL = 256
_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")
_FORBIDDEN_IN_HOST = set("/\\?#@ \t\r\n[]%,;\"'")


def validate_kind(kind: str) -> str:
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    return kind


def validate_port(port: object, what: str = "port") -> int:
    """An integer 1..65535 (a string of digits is accepted, a bool or float is not)."""
    if isinstance(port, str) and port.strip().isdigit():
        port = int(port.strip())
    if isinstance(port, bool) or not isinstance(port, int):
        raise ValueError(f"{what} must be an integer 1..65535, got {port!r}")
    if not 1 <= port <= 65535:
        raise ValueError(f"{what} must be in 1..65535, got {port}")
    return port


def validate_timeout(timeout: object) -> float:
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 0 < timeout <= 600:
        raise ValueError(f"timeout must be a number of seconds in (0, 600], got {timeout!r}")
    return float(timeout)


def validate_host(host: object, what: str = "host", *, allow_ipv6: bool = False) -> str:
    """A bare IPv4 address or DNS name (or, with allow_ipv6, an IPv6 literal without brackets)."""
    if not isinstance(host, str):
        raise ValueError(f"{what} must be a string, got {type(host).__name__}")
    value = host.strip()
    if not value:
        raise ValueError(f"{what} is empty")
    if "://" in value:
        raise ValueError(f"{what} must be a bare host without a scheme, got {host!r}")
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise ValueError(f"{what} contains control characters")
    if ":" in value:
        if allow_ipv6:
            try:
                return str(ipaddress.IPv6Address(value))
            except ValueError:
                pass
        raise ValueError(
            f"{what} must not carry a port or path (give the port separately), got {host!r}"
            + ("" if allow_ipv6 else "; IPv6 literals are not supported here")
        )
    bad = sorted(_FORBIDDEN_IN_HOST & set(value))
    if bad:
        raise ValueError(f"{what} must be a bare host name or IPv4 address (no path), got {host!r}")
    try:
        return str(ipaddress.IPv4Address(value))
    except ValueError:
        pass
    name = value[:-1] if value.endswith(".") else value
    labels = name.split(".")
    if len(name) > 253 or not all(_LABEL.match(label) for label in labels):
        raise ValueError(f"{what} is not a valid host name or IPv4 address: {host!r}")
    if all(label.isdigit() for label in labels):
        raise ValueError(f"{what} looks like an IPv4 address but is not a valid one: {host!r}")
    return name.lower()


def normalize_stratum_host(stratum_host: object, stratum_port: object) -> tuple[str, int]:
    """(bare host, port) for a pool; strips "stratum+tcp://" and checks any port written in it."""
    port = validate_port(stratum_port, "stratum_port")
    if not isinstance(stratum_host, str):
        raise ValueError(f"stratum_host must be a string, got {type(stratum_host).__name__}")
    value = stratum_host.strip()
    if value.lower().startswith(STRATUM_SCHEME):
        value = value[len(STRATUM_SCHEME) :]
        if value.endswith("/"):
            value = value[:-1]
        if value.count(":") == 1:
            value, _, written = value.partition(":")
            if not written.isdigit() or int(written) != port:
                raise ValueError(
                    f"stratum_host says port {written!r} but stratum_port is {port}; give one port"
                )
    elif "://" in value:
        scheme = value.split("://", 1)[0]
        raise ValueError(f"stratum_host: only plain Stratum v1 (stratum+tcp://) is supported, not {scheme!r}")
    return validate_host(value, "stratum_host"), port


def validate_credential(value: object, what: str, *, allow_empty: bool) -> str:
    """Worker names and passwords: printable, no whitespace at the ends, at most 256 characters."""
    if not isinstance(value, str):
        raise ValueError(f"{what} must be a string, got {type(value).__name__}")
    if not value and not allow_empty:
        raise ValueError(f"{what} is empty")
    if len(value) > MAX_CREDENTIAL:
        raise ValueError(f"{what} is longer than {MAX_CREDENTIAL} characters")
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise ValueError(f"{what} contains control characters")
    if value != value.strip():
        raise ValueError(f"{what} has leading or trailing whitespace")
    return value
