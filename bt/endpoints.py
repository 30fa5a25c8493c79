"""Twisted endpoint strings: checking one before use, and saying why a bind failed.

Used by the peer listener (``--listen``) and the control API (``--control``),
so that both report a typo or a taken port the same way, naming the option.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.error import CannotListenError
from twisted.internet.interfaces import IStreamServerEndpoint

from bt.errors import BtError

__all__ = ["check_endpoint", "describe_listen_error", "server_endpoint"]


def check_endpoint(option: str, description: str) -> str | None:
    """Why ``description`` is not a server endpoint Twisted can build, or None.

    Parses only (no socket is opened), so that a typo is an option error
    before twistd forks, not a traceback in the log.
    """
    from twisted.internet import reactor

    try:
        server_endpoint(reactor, option, description)
    except BtError as exc:
        return str(exc)
    return None


def server_endpoint(reactor: Any, option: str, description: str) -> IStreamServerEndpoint:
    """The endpoint ``description`` names; BtError naming ``--option`` when it names none."""
    from twisted.internet.endpoints import serverFromString

    try:
        return serverFromString(reactor, description)
    except (ValueError, TypeError, KeyError, IndexError, OSError) as exc:
        raise BtError(f"--{option} {description}: not a Twisted endpoint ({_reason(exc)})") from exc


def _reason(exc: BaseException) -> str:
    if isinstance(exc, TypeError | KeyError | IndexError):
        return f"bad arguments: {exc}"
    return str(exc) or type(exc).__name__


def describe_listen_error(error: BaseException) -> str:
    """A bind failure in a few words: "cannot listen on port 6881: Address already in use"."""
    if isinstance(error, CannotListenError):
        where = f"{error.interface}:{error.port}" if error.interface else f"port {error.port}"
        cause = error.socketError
        detail = getattr(cause, "strerror", None) or str(cause)
        return f"cannot listen on {where}: {detail}"
    return f"cannot listen: {error}"
