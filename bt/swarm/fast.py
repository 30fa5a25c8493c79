"""The fast extension (BEP 6) with one peer: what we allow it, what it allows us, its hints.

Only peers whose handshake set the FAST bit, as ours does, get a :class:`FastPeer`;
plain BEP 3 peers (ctorrent, old clients) never see a fast message. The link
applies what this decides; nothing here touches a socket, so the rules are
tested directly. Every set a peer can grow is bounded.
"""

from __future__ import annotations

from collections import deque

from bt.bitfield import Bitfield
from bt.errors import RemoteProtocolError
from bt.peer.messages import BitfieldMessage, HaveAll, HaveNone, Message
from bt.policy.allowedfast import ALLOWED_FAST_COUNT, allowed_fast_set

__all__ = ["MAX_ALLOWED_FAST", "MAX_REFUSED", "MAX_SUGGESTIONS", "FastPeer", "opening_message"]

#: ALLOWED FAST messages from one peer we take; later ones are ignored (libtorrent
#: sends 10, the BEP's example too: more only costs our memory and picking time).
MAX_ALLOWED_FAST = 64
#: SUGGEST PIECE hints kept per peer, the newest; older ones are forgotten.
MAX_SUGGESTIONS = 16
#: Requests we may refuse a peer between two unchokes: each costs a REJECT
#: written, so a peer asking on and on while choked is closed, as libtorrent does
#: ("too many requests when choked"). Twice the queue we advertise (``reqq``),
#: so requests in flight when our choke crossed them never count as abuse.
MAX_REFUSED = 1000


def opening_message(have: Bitfield) -> Message:
    """What a fast peer hears first: BEP 6 requires one of HAVE ALL, HAVE NONE or
    a BITFIELD, and the one-byte messages when they say the same."""
    if have.is_complete():
        return HaveAll()
    if have.is_empty():
        return HaveNone()
    return BitfieldMessage(have.to_bytes())


class FastPeer:
    """BEP 6 state of one peer: the allowed-fast sets both ways and its suggestions."""

    __slots__ = ("_offered", "refused", "suggested", "they_allow", "we_allow")

    def __init__(self) -> None:
        #: Pieces we serve this peer even while we choke it (the set we sent it).
        self.we_allow: frozenset[int] = frozenset()
        #: Pieces the peer serves us while it chokes us (at most MAX_ALLOWED_FAST).
        self.they_allow: set[int] = set()
        #: The peer's newest hints of pieces cheap for it to send (SUGGEST PIECE).
        self.suggested: deque[int] = deque(maxlen=MAX_SUGGESTIONS)
        self._offered = False
        #: Requests refused since we last unchoked the peer.
        self.refused = 0

    def offer(self, ip: str, info_hash: bytes, peer_pieces: Bitfield) -> list[int]:
        """Our allowed-fast set for a peer at ``ip``, decided once, from its first
        bitfield: a peer with few pieces (fewer than the set) gets it, so it has
        something to trade before anyone unchokes it (BEP 6). Returns the pieces to
        send ALLOWED FAST for: the set less what the peer has already."""
        if self._offered:
            return []
        self._offered = True
        if peer_pieces.count() >= ALLOWED_FAST_COUNT:
            return []
        try:
            pieces = allowed_fast_set(ip, info_hash, peer_pieces.length)
        except ValueError:
            return []  # a host name, not an address: BEP 6 hashes the IP
        self.we_allow = frozenset(pieces)
        return [index for index in pieces if index not in peer_pieces]

    def serves_choked(self, index: int) -> bool:
        """Do we serve a request for ``index`` while we choke the peer?"""
        return index in self.we_allow

    def refuse(self) -> None:
        """A request gets a REJECT; past MAX_REFUSED since our last unchoke the peer
        is abusing the protocol (``RemoteProtocolError``)."""
        self.refused += 1
        if self.refused > MAX_REFUSED:
            raise RemoteProtocolError(f"more than {MAX_REFUSED} requests refused since an unchoke")

    def peer_allows(self, index: int) -> bool:
        """ALLOWED FAST from the peer; False if it went over the bound (ignored)."""
        if index in self.they_allow:
            return True
        if len(self.they_allow) >= MAX_ALLOWED_FAST:
            return False
        self.they_allow.add(index)
        return True

    def suggest(self, index: int) -> None:
        """SUGGEST PIECE: a hint, kept among the newest few."""
        if index in self.suggested:
            self.suggested.remove(index)
        self.suggested.append(index)

    def requestable_while_choked(self, peer_pieces: Bitfield) -> Bitfield | None:
        """The pieces we may request while the peer chokes us (its allowed-fast set,
        of those it has), or None when there are none."""
        if not self.they_allow:
            return None
        among = Bitfield(peer_pieces.length)
        for index in self.they_allow:
            if index in peer_pieces:
                among.add(index)
        return None if among.is_empty() else among
