"""The one error of the Transmission RPC: its message becomes the reply's ``result``."""

from __future__ import annotations

from typing import Any

__all__ = ["RpcError"]


class RpcError(Exception):
    """What the client got wrong (or bt cannot do), said in Transmission's ``result``."""

    def __init__(self, message: str, arguments: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        #: What the reply carries anyway (port-test's ``port-is-open``, say).
        self.arguments = arguments or {}
