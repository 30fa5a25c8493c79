"""Checking data already on disk: which pieces could be there, and hashing them.

Used when a torrent starts on a folder that already holds some or all of its
data (a seed, or a download resumed without resume state).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence

from twisted.internet.defer import Deferred

from bt.storage.layout import Layout


def pieces_with_data(
    layout: Layout,
    existing: Sequence[int],
    padding: Sequence[bool] = (),
    parted: Collection[int] = (),
) -> list[int]:
    """Pieces all of whose bytes exist on disk (worth hashing); O(files + pieces).

    ``existing[i]`` is how many bytes of file ``i`` exist; padding files always count
    as complete. ``parted`` pieces have their skipped files' bytes in the part file:
    they are worth hashing whatever their files hold.
    """
    missing: list[tuple[int, int]] = []  # torrent byte ranges that are not on disk
    offset = 0
    for index, length in enumerate(layout.file_lengths):
        have = length if (padding and padding[index]) else min(existing[index], length)
        if have < length:
            missing.append((offset + have, offset + length))
        offset += length
    candidates = []
    extra = frozenset(parted)
    piece_length = layout.piece_length
    hole = 0
    for index in range(layout.num_pieces):
        start = index * piece_length
        end = start + layout.piece_size(index)
        while hole < len(missing) and missing[hole][1] <= start:
            hole += 1
        if hole < len(missing) and missing[hole][0] < end and index not in extra:
            continue
        candidates.append(index)
    return candidates


def recheck(
    hash_piece: Callable[[int], Deferred[bool]],
    indexes: Sequence[int],
    *,
    concurrency: int = 4,
    on_progress: Callable[[int, int], None] = lambda done, total: None,
) -> Deferred[list[int]]:
    """Hash ``indexes`` with at most ``concurrency`` in flight; fires with the valid ones.

    A few jobs in flight keep every disk thread busy (hashing releases the GIL)
    without queueing the whole torrent at once.
    """
    valid: list[int] = []
    total = len(indexes)
    state = {"next": 0, "done": 0}
    finished: Deferred[list[int]] = Deferred()
    if not total:
        finished.callback(valid)
        return finished

    def launch() -> None:
        while state["next"] < total and state["next"] - state["done"] < concurrency:
            index = indexes[state["next"]]
            state["next"] += 1
            job = hash_piece(index)
            job.addCallbacks(checked, failed, (index,))

    def checked(ok: bool, index: int) -> None:
        if ok:
            valid.append(index)
        step()

    def failed(failure: object) -> None:
        if not finished.called:
            finished.errback(failure)

    def step() -> None:
        state["done"] += 1
        on_progress(state["done"], total)
        if state["done"] == total:
            if not finished.called:
                finished.callback(sorted(valid))
        elif not finished.called:
            launch()

    launch()
    return finished


__all__ = ["pieces_with_data", "recheck"]
