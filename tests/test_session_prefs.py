"""Labels, seed ratios and the download folder set at run time survive a restart.

As in test_session_registry, the sessions are not started: with the disk
threads not running, writes happen synchronously, so each step is checked at once.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from torrents import handmade_info, handmade_torrent, pseudo_random_bytes
from twisted.internet.testing import MemoryReactorClock

from bt.errors import BtError
from bt.magnet import parse_magnet
from bt.metainfo import Metainfo, parse_metainfo
from bt.registry import TorrentRecord
from bt.session import Session, SessionConfig
from bt.sessionprefs import set_session_prefs, set_torrent_prefs, torrent_prefs
from bt.torrentconfig import TorrentConfig
from bt.torrentprefs import RatioMode, TorrentPrefs, check_labels

PIECE = 16 * 1024
DATA = pseudo_random_bytes(2 * PIECE, seed=5)


def album(name: str = "album") -> Metainfo:
    info = handmade_info([([name + ".bin"], 2 * PIECE)], name=name, piece_length=PIECE, data=DATA)
    return parse_metainfo(handmade_torrent(info, announce=b"http://127.0.0.1:1/announce"))


def new_session(tmp_path: Path, **options: Any) -> Session:
    ratio = options.pop("seed_ratio", None)
    config = SessionConfig(
        download_dir=options.pop("download_dir", tmp_path / "data"),
        state_dir=tmp_path / "state",
        torrent=TorrentConfig(seed_ratio=ratio),
        **options,
    )
    return Session(config, reactor=MemoryReactorClock())


def restarted(tmp_path: Path, **options: Any) -> Session:
    session = new_session(tmp_path, **options)
    assert session.restore() == []
    return session


def result(deferred: Any) -> Any:
    results: list[Any] = []
    deferred.addBoth(results.append)
    assert results, "fired at once (no disk threads running)"
    if hasattr(results[0], "raiseException"):
        results[0].raiseException()
    return results[0]


def test_labels_and_seed_ratio_of_a_torrent_come_back_after_a_restart(tmp_path: Path) -> None:
    first = new_session(tmp_path, seed_ratio=2.0)
    one, two = album("one"), album("two")
    first.add_torrent(one)
    first.add_torrent(two)
    set_torrent_prefs(first, one.info_hash, labels=["tv", "hd"], ratio_mode=1, own_ratio=0.5)
    set_torrent_prefs(first, two.info_hash, ratio_mode=RatioMode.UNLIMITED)
    assert first.torrents[one.info_hash].config.seed_ratio == 0.5, "applies at once"
    assert first.torrents[two.info_hash].config.seed_ratio is None

    second = restarted(tmp_path, seed_ratio=2.0)
    assert torrent_prefs(second, one.info_hash) == TorrentPrefs(("tv", "hd"), 1, 0.5)
    assert second.torrents[one.info_hash].config.seed_ratio == 0.5
    assert second.torrents[two.info_hash].config.seed_ratio is None
    record = json.loads(
        (tmp_path / "state" / "torrents" / f"{one.info_hash.hex()}.json").read_text()
    )
    assert record["labels"] == ["tv", "hd"] and record["seed_ratio_mode"] == 1


def test_a_record_written_before_labels_existed_still_loads(tmp_path: Path) -> None:
    old = {"version": 1, "paused": True, "download_dir": None, "added": 5.0}
    record = TorrentRecord.from_json(old, "old.json")
    assert record.prefs == TorrentPrefs() and record.paused


@pytest.mark.parametrize(
    ("field", "value"),
    [("labels", ["a,b"]), ("labels", "tv"), ("seed_ratio_mode", 5), ("seed_ratio", -1)],
)
def test_a_broken_record_names_the_field(field: str, value: Any) -> None:
    with pytest.raises(BtError, match=f"x.json: .*{field.split('_')[0]}"):
        TorrentRecord.from_json({"version": 1, field: value}, "x.json")


def test_labels_are_checked_as_transmission_does() -> None:
    assert check_labels([" tv ", "hd", "tv"]) == ("tv", "hd")
    for bad in (["a,b"], [""], ["x" * 257], [1], ["\x07"], [str(n) for n in range(65)]):
        with pytest.raises(ValueError, match="labels"):
            check_labels(bad)


def test_the_session_seed_ratio_moves_the_torrents_that_follow_it(tmp_path: Path) -> None:
    session = new_session(tmp_path, seed_ratio=2.0)
    follows, own = album("follows"), album("own")
    session.add_torrent(follows)
    session.add_torrent(own)
    set_torrent_prefs(session, own.info_hash, ratio_mode=1, own_ratio=3.0)
    result(set_session_prefs(session, seed_ratio=1.0))
    assert session.torrents[follows.info_hash].config.seed_ratio == 1.0
    assert session.torrents[own.info_hash].config.seed_ratio == 3.0
    result(set_session_prefs(session, seed_ratio_limited=False))
    assert session.torrents[follows.info_hash].config.seed_ratio is None
    result(set_session_prefs(session, seed_ratio_limited=True))  # the kept 1.0 again
    assert session.torrents[follows.info_hash].config.seed_ratio == 1.0


def test_session_folder_and_ratio_come_back_unless_the_command_line_gives_them(
    tmp_path: Path,
) -> None:
    first = new_session(tmp_path, seed_ratio=2.0)
    result(set_session_prefs(first, download_dir=tmp_path / "new", seed_ratio=0.25))
    assert first.config.download_dir == tmp_path / "new"

    # As twistd without --download-dir and --seed-ratio: the saved ones apply.
    second = restarted(tmp_path, given=frozenset())
    assert second.config.download_dir == tmp_path / "new"
    assert second.config.torrent.seed_ratio == 0.25
    second.add_torrent(album())
    assert second.torrent_statuses()[0].download_dir == str(tmp_path / "new")

    # A value the command line gives wins, and is what the file then holds.
    third = restarted(tmp_path, download_dir=tmp_path / "cli", seed_ratio=4.0)
    assert third.config.download_dir == tmp_path / "cli" and third.config.torrent.seed_ratio == 4.0
    saved = json.loads((tmp_path / "state" / "settings.json").read_text())
    assert saved["download_dir"] == str(tmp_path / "cli") and saved["seed_ratio"] == 4.0


@pytest.mark.parametrize(
    ("folder", "fragment"),
    [("relative", "not an absolute folder"), ("FILE", "is not a folder")],
)
def test_a_download_folder_that_cannot_be_used_is_refused(
    tmp_path: Path, folder: str, fragment: str
) -> None:
    session = new_session(tmp_path)
    (tmp_path / "FILE").write_bytes(b"x")
    given = str(tmp_path / "FILE") if folder == "FILE" else folder
    with pytest.raises(ValueError, match=fragment):
        result(set_session_prefs(session, download_dir=given))
    assert session.config.download_dir == tmp_path / "data"


def test_labels_given_to_a_magnet_follow_it_into_its_record(tmp_path: Path) -> None:
    session = new_session(tmp_path)
    magnet = parse_magnet("magnet:?xt=urn:btih:" + "ab" * 20 + "&dn=mag")
    session.add_magnet(magnet)
    set_torrent_prefs(session, magnet.info_hash, labels=["music"])
    assert torrent_prefs(session, magnet.info_hash).labels == ("music",)
    record = json.loads((tmp_path / "state" / "torrents" / ("ab" * 20 + ".json")).read_text())
    assert record["labels"] == ["music"]
    second = restarted(tmp_path)
    assert torrent_prefs(second, magnet.info_hash).labels == ("music",)
