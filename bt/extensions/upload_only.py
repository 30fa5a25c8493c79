"""BEP 21 upload-only: seeds and partial seeds tell each other so, and stop wasting slots.

Our extended handshake carries ``upload_only`` while every wanted piece is here
(seeding, or finished with files skipped), and peers hear an updated handshake
when that changes (checked once a second; the whole handshake again, as
libtorrent reads each one as the whole). A peer's ``upload_only`` (in its
handshake, or libtorrent's one-byte ``upload_only`` message, which we accept
under this extension's name) makes it count as a seed: the swarm drops it when
we are finished too, and a finished torrent does not dial it again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from zope.interface import implementer

from bt.extensions.handshake import ExtendedHandshake
from bt.swarm.extension import IPeerExtension

if TYPE_CHECKING:
    from bt.swarm.link import PeerLink

__all__ = ["UploadOnly"]


@implementer(IPeerExtension)
class UploadOnly:
    """Says whether we only upload, and hears whether each peer does."""

    #: libtorrent's name for its upload-only message.
    name = "upload_only"

    def __init__(self, finished: Callable[[], bool]) -> None:
        """``finished()``: is every wanted piece here (we would only upload)?"""
        self._finished = finished
        #: Each peer, with what our last handshake to it said.
        self._said: dict[PeerLink, bool] = {}

    def handshake(self) -> dict[str, Any]:
        return {"upload_only": self._finished()}

    def attached(self, link: PeerLink) -> None:
        # Our handshake follows at once, in the same turn: it says the same.
        self._said[link] = self._finished()

    def handshake_received(self, link: PeerLink, state: object, shake: ExtendedHandshake) -> None:
        link.set_upload_only(shake.upload_only)

    def message(self, link: PeerLink, state: object, payload: bytes) -> None:
        """libtorrent's ``upload_only`` message: one byte, non-zero when it only uploads."""
        if payload:
            link.set_upload_only(payload[0] != 0)

    def lost(self, link: PeerLink, state: object) -> None:
        self._said.pop(link, None)

    def tick(self, now: float) -> None:
        """Tell each peer when we start (or stop) being upload-only."""
        finished = self._finished()
        for link, said in list(self._said.items()):
            if said != finished:
                self._said[link] = finished
                link.greet_again()
