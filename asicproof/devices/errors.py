"""Errors raised by point_at_node(). Bad arguments raise ValueError before anything is sent."""

from __future__ import annotations


class DeviceError(RuntimeError):
    """The device answered but refused the request, or did not apply it."""


class DeviceUnreachable(DeviceError, ConnectionError):
    """Nothing (or nothing that speaks the expected protocol) answered at host:port in time."""
