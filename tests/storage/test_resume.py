"""Resume state: round trip, refusal of anything that is not this torrent's state, atomic saves."""

from __future__ import annotations

from pathlib import Path

import pytest

from bt.bitfield import Bitfield
from bt.errors import ResumeSaveError
from bt.storage.resume import ResumeError, ResumeState, load_resume, save_resume

HASH = b"\x11" * 20


def state(count: int = 10) -> ResumeState:
    have = Bitfield(count)
    for index in (0, 3, count - 1):
        have.add(index)
    return ResumeState(HASH, have, ((100, 123456789), (0, 0)), uploaded=5, downloaded=7)


def test_round_trip() -> None:
    saved = state()
    assert ResumeState.decode(saved.encode(), HASH, 10) == saved


@pytest.mark.parametrize(
    ("data", "info_hash", "pieces", "reason"),
    [
        (b"garbage", HASH, 10, "not valid bencode"),
        (b"i1e", HASH, 10, "not a dictionary"),
        (state().encode(), b"\x22" * 20, 10, "state of another torrent"),
        (state().encode(), HASH, 11, "10 pieces, expected 11"),
        (state().encode().replace(b"7:versioni1e", b"7:versioni9e"), HASH, 10, "version 9"),
    ],
)
def test_unusable_state_is_refused_with_the_reason(
    data: bytes, info_hash: bytes, pieces: int, reason: str
) -> None:
    with pytest.raises(ResumeError, match=reason):
        ResumeState.decode(data, info_hash, pieces)


def test_save_is_atomic_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    path = tmp_path / "state" / "x.resume"
    save_resume(path, b"first")
    save_resume(path, b"second")
    assert load_resume(path) == b"second"
    assert [p.name for p in path.parent.iterdir()] == ["x.resume"]


def test_missing_state_is_none_and_unwritable_state_is_a_storage_error(tmp_path: Path) -> None:
    assert load_resume(tmp_path / "none.resume") is None
    blocker = tmp_path / "file"
    blocker.write_bytes(b"")
    with pytest.raises(ResumeSaveError, match="cannot save resume state"):
        save_resume(blocker / "x.resume", b"data")
