"""Twisted endpoint strings: checking one before use, and saying why a bind failed.

Used by the peer listener (``--listen``) and the control API (``--control``),
so that both report a typo or a taken port the same way, naming the option.
"""

from __future__ import annotations

from twisted.internet.error import CannotListenError

__all__ = ["check_endpoint", "describe_listen_error"]


def check_endpoint(option: str, description: str) -> str | None:
    """Why ``description`` is not a server endpoint Twisted can build, or None.

    Parses only (no socket is opened), so that a typo is an option error
    before twistd forks, not a traceback in the log.
    """
    from twisted.internet import reactor
    from twisted.internet.endpoints import serverFromString

    try:
        serverFromString(reactor, description)
    except (ValueError, TypeError, KeyError, IndexError, OSError) as exc:
        return f"--{option} {description}: not a Twisted endpoint ({_reason(exc)})"
    return None


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
