"""Progress lines for the log: counts in plain English, a seed's line about uploading."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from bt.progress import describe_progress, plural


@dataclass
class _Rate:
    rate: float
    total: int = 0


@dataclass
class _Picker:
    have_count: int


@dataclass
class _Metainfo:
    name: str = "album"
    total_length: int = 4 * 1024 * 1024
    num_pieces: int = 4


@dataclass
class _Torrent:
    """What describe_progress reads off a torrent."""

    bytes_left: int
    links: list[object]
    download_rate: _Rate
    upload_rate: _Rate
    metainfo: _Metainfo = field(default_factory=_Metainfo)

    @property
    def picker(self) -> _Picker:
        return _Picker(4 - self.bytes_left // (1024 * 1024))


@pytest.mark.parametrize(
    ("count", "text"), [(0, "0 peers"), (1, "1 peer"), (2, "2 peers"), (11, "11 peers")]
)
def test_plural(count: int, text: str) -> None:
    assert plural(count, "peer") == text


def test_a_downloading_line_says_one_peer_not_one_peers() -> None:
    torrent = _Torrent(2 * 1024 * 1024, [object()], _Rate(1024 * 1024), _Rate(0))
    line = describe_progress(torrent)
    assert line == ("album: 50.0% (2/4 pieces), 1.0 MiB/s down, 0 B/s up, 1 peer, ETA 2s")


def test_a_seeding_line_shows_the_upload_side_not_the_last_download_rate() -> None:
    """When seeding starts, the download rate still holds the last seconds' figure."""
    torrent = _Torrent(0, [object(), object()], _Rate(5 * 1024 * 1024), _Rate(2048, 3 << 20))
    line = describe_progress(torrent)
    assert line == "album: 100.0% (4/4 pieces), seeding, 2.0 KiB/s up, 2 peers, uploaded 3.0 MiB"
    assert "down" not in line
