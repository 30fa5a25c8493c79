"""Which blocks of a failed v2 piece were bad: ask for the real leaf hashes and compare.

A v2 (or hybrid) piece that fails verification comes back with the leaf hashes
of the blocks we received (``bt.errors.PieceHashError.leaf_hashes``). Its real
leaf hashes are not in the .torrent (only the piece layer is), so a peer is asked
for them: the injected ``block_hashes(index)`` (BEP 52 hash request for base
layer 0, provided by the wire, which checks the answer against the piece's root)
fires with the piece's leaves, or None when no peer can tell. Comparing both
names the bad blocks; the swarm keeps the good ones and fetches only the bad.

A piece waiting here keeps all its blocks in memory, so at most ``limit`` wait at
once (the disk queue's bound in pieces: they count like pieces being written);
beyond that, or without an answer in ``TIMEOUT`` seconds, a piece fails whole.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from twisted.internet import defer
from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

from bt.logs import Logger
from bt.policy.blame import bad_blocks

__all__ = ["TIMEOUT", "BadBlockFinder", "BlockHashes", "no_block_hashes"]

#: Asks for piece ``index``'s real leaf hashes (verified); None when nobody can tell.
BlockHashes = Callable[[int], "Deferred[list[bytes] | None]"]

#: Seconds to wait for a piece's leaf hashes before it fails whole.
TIMEOUT = 60.0

log = Logger()


def no_block_hashes(index: int) -> Deferred[list[bytes] | None]:
    """Without a hash source (v1 peers only, or none wired yet): failed pieces fail whole."""
    return defer.succeed(None)


class BadBlockFinder:
    """Failed v2 pieces waiting for their real leaf hashes, at most ``limit`` at once."""

    def __init__(self, ask: BlockHashes, reactor: Any, limit: int) -> None:
        self._ask = ask
        self._reactor = reactor
        self.limit = limit
        self._waiting: set[int] = set()

    @property
    def waiting(self) -> int:
        """Pieces asked for and not answered yet."""
        return len(self._waiting)

    def find(self, index: int, received: Sequence[bytes] | None) -> Deferred[list[int] | None]:
        """The bad blocks of failed piece ``index``, from its ``received`` leaf hashes.

        Fires with None when they cannot be told (a v1 failure, too many pieces
        waiting, no answer, an answer that clears every block): fail it whole.
        """
        if received is None or index in self._waiting or len(self._waiting) >= self.limit:
            return defer.succeed(None)
        self._waiting.add(index)
        asked = defer.maybeDeferred(self._ask, index)
        asked.addTimeout(TIMEOUT, self._reactor)
        asked.addErrback(self._no_answer, index)
        asked.addCallback(lambda reference: _compare(received, reference))

        def done(result: list[int] | None) -> list[int] | None:
            self._waiting.discard(index)
            return result

        return asked.addBoth(done)

    def _no_answer(self, failure: Failure, index: int) -> None:
        if failure.check(defer.TimeoutError, defer.CancelledError) is None:
            log.failure("asking for the leaf hashes of piece {index}", failure, index=index)
        return None


def _compare(received: Sequence[bytes], reference: Sequence[bytes] | None) -> list[int] | None:
    if reference is None:
        return None
    return bad_blocks(received, reference) or None
