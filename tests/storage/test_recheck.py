"""Checking existing data: only pieces whose bytes all exist are hashed; valid ones are kept."""

from __future__ import annotations

from twisted.internet import defer

from bt.storage.layout import Layout
from bt.storage.recheck import pieces_with_data, recheck


def test_pieces_touching_missing_bytes_are_not_candidates() -> None:
    layout = Layout([10, 0, 25, 7], piece_length=8)  # 42 bytes, 6 pieces
    assert pieces_with_data(layout, [10, 0, 25, 7]) == [0, 1, 2, 3, 4, 5]
    # File 2 (bytes 10..35) holds only its first 6 bytes: bytes 16..35 are missing.
    assert pieces_with_data(layout, [10, 0, 6, 7]) == [0, 1, 5]
    assert pieces_with_data(layout, [0, 0, 0, 0]) == []


def test_padding_files_count_as_present() -> None:
    layout = Layout([6, 10, 16], piece_length=16)
    assert pieces_with_data(layout, [6, 0, 16], [False, True, False]) == [0, 1]


def test_recheck_keeps_valid_pieces_and_bounds_concurrency() -> None:
    pending: list[tuple[int, defer.Deferred[bool]]] = []

    def hash_piece(index: int) -> defer.Deferred[bool]:
        d: defer.Deferred[bool] = defer.Deferred()
        pending.append((index, d))
        return d

    progress: list[tuple[int, int]] = []
    result = recheck(
        hash_piece,
        [0, 1, 2, 3, 4],
        concurrency=2,
        on_progress=lambda done, total: progress.append((done, total)),
    )
    assert [i for i, _ in pending] == [0, 1]
    while pending:
        index, d = pending.pop(0)
        d.callback(index % 2 == 0)
        assert len(pending) <= 2
    assert result.result == [0, 2, 4]
    assert progress[-1] == (5, 5)


def test_recheck_of_nothing_fires_at_once() -> None:
    assert recheck(lambda i: defer.succeed(True), []).result == []
