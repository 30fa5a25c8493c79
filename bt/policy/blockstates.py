"""What the picker keeps per started piece, and what it says of a received block.

Split from :mod:`bt.policy.picker` to keep that module to its decisions.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Final, NamedTuple

from bt.geometry import Block

__all__ = ["UNWANTED", "BlockResult", "PieceDownload"]


class BlockResult(NamedTuple):
    """What a received block means (a NamedTuple: one is made per block received, and a
    tuple is built several times faster than a frozen dataclass).

    ``wanted`` is False for a block this peer had no outstanding request for
    (never requested, cancelled, given up, already received, wrong length): the
    caller drops the data. ``piece_complete`` says every block of the piece is
    now in; the caller verifies it and calls ``have`` or ``piece_failed``.
    ``cancel`` names the other peers the same block was requested from (endgame):
    send each of them a CANCEL for ``block``.
    """

    wanted: bool
    block: Block | None = None
    piece_complete: bool = False
    cancel: tuple[Hashable, ...] = ()


UNWANTED: Final = BlockResult(wanted=False)


class PieceDownload:
    """Block states of one started piece: free, requested from some peers, or received."""

    __slots__ = ("free", "received_from", "requested_by")

    def __init__(self, blocks: int) -> None:
        #: Peers each block is requested from; () when none (free or received).
        self.requested_by: list[tuple[Hashable, ...]] = [()] * blocks
        #: Block number -> the peer that sent it, for blame on a hash failure.
        self.received_from: dict[int, Hashable] = {}
        #: Blocks neither requested nor received.
        self.free = blocks

    def is_pristine(self) -> bool:
        return not self.received_from and self.free == len(self.requested_by)
