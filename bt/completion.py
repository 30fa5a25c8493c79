"""The completion chain of one torrent: complete pieces to the disk, and back a batch at a time.

The swarm hands over a complete piece; the disk queue hashes and writes it in
its threads; the torrent then has it (picker, HAVE to the peers) or blames its
senders. With 16 KiB pieces a Deferred, a swarm update and a HAVE write per
piece cost more than the hashing: the disk queue's ``write_piece`` reports a
whole batch of pieces in one call, and the torrent takes the batch's good pieces
in one step (one HAVE write per peer per batch).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.python.failure import Failure

from bt.interfaces import IDiskQueue
from bt.logs import Logger

__all__ = ["CompletionChain", "Written"]

#: A written piece: its index and the blocks it was written from.
Written = tuple[int, list[bytes]]


class CompletionChain:
    """Complete pieces in, ``written`` (a batch of good pieces) or ``failed`` (one
    piece: its Failure, index, blocks and block senders) out."""

    log = Logger()

    def __init__(
        self,
        disk: IDiskQueue,
        written: Callable[[list[Written]], None],
        failed: Callable[[Failure, int, list[bytes], dict[int, Any]], None],
        name: str,
    ) -> None:
        self.disk = disk
        self._written = written
        self._failed = failed
        self._name = name

    def piece_complete(self, index: int, blocks: list[bytes], sources: dict[int, Any]) -> None:
        """Verify and write ``index`` off the reactor; its outcome comes with its batch."""
        self.disk.write_piece(index, blocks, self.outcomes, (index, blocks, sources))

    def outcomes(self, results: list[tuple[Any, Failure | None]]) -> None:
        """A batch is back: each failed piece on its own, then the good ones together."""
        good: list[Written] = []
        for (index, blocks, sources), failure in results:
            if failure is None:
                good.append((index, blocks))
                continue
            try:
                self._failed(failure, index, blocks, sources)
            except Exception:
                self._unexpected(Failure(), index)
        if good:
            try:
                self._written(good)
            except Exception:
                self._unexpected(Failure(), good[0][0])

    def _unexpected(self, failure: Failure, index: int) -> None:
        self.log.failure(
            "{name}: unexpected error in piece {index}", failure, name=self._name, index=index
        )
