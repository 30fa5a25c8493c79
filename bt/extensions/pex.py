"""BEP 11 peer exchange (``ut_pex``) as a peer extension of a swarm.

Every :data:`~bt.extensions.pex_policy.PEX_INTERVAL` each peer that offered
``ut_pex`` hears which peers of our swarm joined or left since it last heard,
by the address where each one *listens* (the address we dialled, or an
incoming peer's IP with the ``p`` port of its extended handshake; a peer whose
listen port we do not know is left out, as libtorrent does). What peers tell
us passes the per-peer flood gate (:class:`~bt.extensions.pex_policy.PexInbox`)
and joins the candidate pool tagged :attr:`~bt.candidates.PeerSource.PEX`,
where it has a bounded share. Private torrents (BEP 27) never get this
extension (see :mod:`bt.extensions.standard`).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from zope.interface import implementer

from bt.candidates import PeerSource
from bt.compact import Peer
from bt.extensions.pex_messages import PexFlags, encode_pex, parse_pex
from bt.extensions.pex_policy import PEX_INTERVAL, PexInbox, PexOutbox
from bt.swarm.extension import IPeerExtension

if TYPE_CHECKING:
    from bt.extensions.handshake import ExtendedHandshake
    from bt.swarm.link import PeerLink
    from bt.swarm.swarm import Swarm

__all__ = ["PEX_NAME", "PeerExchange", "listen_address"]

PEX_NAME = "ut_pex"


@dataclass
class PexPeer:
    """What peer exchange keeps for one peer."""

    outbox: PexOutbox = field(default_factory=PexOutbox)
    inbox: PexInbox = field(default_factory=PexInbox)
    #: When we may send to it next; None until it offers ut_pex.
    due: float | None = None
    #: The view of the swarm it was found up to date with (nothing to send).
    current: dict[Peer, PexFlags] | None = None
    #: Where it listens (see :func:`listen_address`), kept as its handshake changes.
    listen: Peer | None = None


@implementer(IPeerExtension)
class PeerExchange:
    """Tells peers about each other, and takes the peers they tell us about as candidates."""

    name = PEX_NAME

    def __init__(
        self,
        links: Callable[[], Iterable[PeerLink]],
        add_candidates: Callable[[Sequence[Peer], str], None],
        clock: Callable[[], float],
        *,
        seeding: Callable[[], bool] = lambda: False,
    ) -> None:
        """``links()`` are the swarm's peers now; ``seeding()``: we are a seed, so
        peers flagged as seeds are of no use to us."""
        self._links = links
        self._add_candidates = add_candidates
        self._clock = clock
        self._seeding = seeding
        #: The swarm as the last tick saw it: peers up to date with it are not asked again.
        self._view: dict[Peer, PexFlags] = {}

    @classmethod
    def of(cls, swarm: Swarm) -> PeerExchange:
        """Peer exchange among ``swarm``'s links, feeding its candidate pool."""
        return cls(
            lambda: swarm.links,
            swarm.add_candidates,
            swarm.reactor.seconds,
            seeding=lambda: swarm.picker.is_finished,
        )

    def handshake(self) -> dict[str, Any]:
        return {}  # only our id for ut_pex in ``m``

    def attached(self, link: PeerLink) -> PexPeer:
        return PexPeer(listen=listen_address(link))

    def handshake_received(
        self, link: PeerLink, state: object, handshake: ExtendedHandshake
    ) -> None:
        if not isinstance(state, PexPeer):
            return
        state.listen = listen_address(link)  # the ``p`` of an incoming peer
        if state.due is None and PEX_NAME in handshake.messages:
            state.due = self._clock()  # the first message goes out on the next tick

    def message(self, link: PeerLink, state: object, payload: bytes) -> None:
        """Added peers, past the flood gate, become candidates; dropped ones are ignored
        (we may still reach them, and libtorrent ignores them too)."""
        message = parse_pex(payload)  # a malformed one closes the peer
        if not isinstance(state, PexPeer):
            return
        taken = state.inbox.accept(message, self._clock())
        if not taken:
            return
        known = set(vouched_peers(self._links()))
        skip_seeds = self._seeding()
        peers = [
            peer
            for peer, flags in taken
            if peer not in known
            and _dialable(peer[0])
            and not (skip_seeds and PexFlags.SEED in flags)
        ]
        if peers:
            self._add_candidates(peers, PeerSource.PEX)

    def lost(self, link: PeerLink, state: object) -> None:
        pass  # the others hear of it as dropped in their next message

    def tick(self, now: float) -> None:
        """Send each peer whose minute is up what changed in the swarm since its last message."""
        links = list(self._links())
        due = [
            (link, state)
            for link in links
            if isinstance(state := link.extensions.get(PEX_NAME), PexPeer)
            and state.due is not None
            and state.due <= now
            and not link.closed
            and link.peer_extensions is not None
            and PEX_NAME in link.peer_extensions.messages
        ]
        if not due:
            return
        swarm = vouched_peers(links)
        if swarm == self._view:
            swarm = self._view  # unchanged: a peer up to date with it has nothing to hear
        self._view = swarm
        for link, state in due:
            if state.current is swarm:
                continue
            message = state.outbox.next_message(swarm, state.listen or link.address)
            if message is None:
                # Nothing new: look again when the swarm changes; the minute starts
                # with a message.
                state.current = swarm
                continue
            if link.send_extended(PEX_NAME, encode_pex(message)):
                state.due = now + PEX_INTERVAL


def vouched_peers(links: Iterable[PeerLink]) -> dict[Peer, PexFlags]:
    """The peers we can tell others about: their listen addresses, with BEP 11's flags."""
    peers: dict[Peer, PexFlags] = {}
    for link in links:
        state = link.extensions.get(PEX_NAME)
        address = state.listen if isinstance(state, PexPeer) else None
        if address is None or link.closed:
            continue
        flags = PexFlags.NONE
        shake = link.peer_extensions
        if link.bitfield.is_complete() or (shake is not None and shake.upload_only):
            flags |= PexFlags.SEED
        if link.outgoing:
            flags |= PexFlags.REACHABLE
        peers[address] = flags
    return peers


def listen_address(link: PeerLink) -> Peer | None:
    """Where ``link``'s peer accepts connections: the address we dialled, or its IP with
    the port of its extended handshake; None when unknown or not an IP address."""
    host, port = link.address
    if not link.outgoing:
        port = link.peer_extensions.port if link.peer_extensions is not None else None
        if port is None:
            return None
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return None  # a host name from a tracker: PEX carries addresses only
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return (str(ip), port)


def _dialable(host: str) -> bool:
    ip = ipaddress.ip_address(host)
    return not (ip.is_unspecified or ip.is_multicast)
