"""The peer port: binding ``--listen`` once, and what it tells others about us.

The session builds the factory that accepts peers; this object only binds it,
turns a failed bind into one clear error naming ``--listen``, and answers which
port (and, for BEP 7, which IPv6 address) peers reach us on.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.address import IPv6Address
from twisted.internet.defer import Deferred
from twisted.internet.error import CannotListenError
from twisted.internet.interfaces import IListeningPort, IProtocolFactory
from twisted.python.failure import Failure

from bt.endpoints import describe_listen_error, server_endpoint
from bt.errors import BtError

__all__ = ["DEFAULT_PORT", "LISTEN_BACKLOG", "PeerListener", "with_backlog"]

#: What we announce before the listener is up (BitTorrent's customary port).
DEFAULT_PORT = 6881

#: Connections the kernel queues before we accept them. Twisted's default of 50
#: made 200 peers arriving at once take 1.3 s to connect (libtorrent: 0.06 s).
LISTEN_BACKLOG = 511


def with_backlog(description: str) -> str:
    """``description`` with a listen backlog for TCP, unless it names one already."""
    kind = description.split(":", 1)[0].strip().lower()
    if kind in ("tcp", "tcp6") and "backlog=" not in description:
        return f"{description}:backlog={LISTEN_BACKLOG}"
    return description


class PeerListener:
    """One listening endpoint for peers, bound synchronously (before twistd forks)."""

    def __init__(self, reactor: Any, description: str) -> None:
        self.reactor = reactor
        #: The ``--listen`` endpoint string as the user gave it.
        self.description = description
        #: The bound port; None until ``listen`` succeeded and after ``stop``.
        self.listening: IListeningPort | None = None

    @property
    def port(self) -> int:
        """The port peers reach us on (known once the listener is up)."""
        if self.listening is not None:
            return self.listening.getHost().port
        return DEFAULT_PORT

    @property
    def announce_ipv6(self) -> str | None:
        """BEP 7 ``ipv6=``: our address when we listen on one specific IPv6 address.

        Listening on all interfaces (``::``) or IPv4 says nothing useful: the
        tracker sees the address we connect from.
        """
        if self.listening is None:
            return None
        host = self.listening.getHost()
        if isinstance(host, IPv6Address) and host.host not in ("::", "::0"):
            return host.host
        return None

    def listen(self, factory: IProtocolFactory) -> None:
        """Bind ``factory`` now or raise BtError naming ``--listen`` and the cause."""
        given = self.description
        endpoint = server_endpoint(self.reactor, "listen", with_backlog(given))
        outcome: list[Any] = []
        endpoint.listen(factory).addBoth(outcome.append)
        if not outcome:
            raise BtError(f"--listen {given}: did not start listening")
        if isinstance(outcome[0], Failure):
            error = outcome[0].value
            if not isinstance(error, CannotListenError | OSError):
                outcome[0].raiseException()
            raise BtError(f"--listen {given}: {describe_listen_error(error)}") from error
        self.listening = outcome[0]

    def stop(self) -> Deferred[None] | None:
        """Stop accepting peers; None when not listening."""
        if self.listening is None:
            return None
        listening, self.listening = self.listening, None
        return listening.stopListening()
