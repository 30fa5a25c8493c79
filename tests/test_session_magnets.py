"""A session holding magnets: shown before their metadata, remembered, handed over once.

As in test_session_registry.py the session is not started, so state-folder
writes happen at once and each step can be checked.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from test_session_registry import album, new_session

from bt.errors import DuplicateTorrentError, UnknownTorrentError
from bt.magnet import parse_magnet
from bt.magnetfetch import MetadataFetch
from bt.status import MagnetState

ALBUM = album()
HASH = ALBUM.info_hash.hex()
URI = f"magnet:?xt=urn:btih:{HASH}&dn=My%20Album&x.pe=10.0.0.2:6881"


def fetching(session) -> MetadataFetch:  # type: ignore[no-untyped-def]
    return session.magnets.fetches[ALBUM.info_hash]


def test_a_magnet_shows_by_info_hash_and_name_while_fetching(tmp_path: Path) -> None:
    session = new_session(tmp_path)
    session.add_magnet(parse_magnet(URI))
    [status] = session.torrent_statuses()
    assert (status.info_hash, status.name) == (HASH, "My Album")
    assert status.state == MagnetState.FETCHING_METADATA == "fetching metadata"
    assert status.peers == status.peers_tried == 0
    assert (status.format, status.info_hash_v1, status.info_hash_v2) == (None, HASH, None)
    assert session.torrent_status(ALBUM.info_hash) == status
    assert status.to_json(files=False)["state"] == "fetching metadata"
    assert session.status().torrents == 1
    # Incoming peers for the magnet join its fetch.
    assert session.torrent_for(ALBUM.info_hash) is fetching(session)


def test_a_hybrid_magnet_shows_both_hashes_its_link_gave(tmp_path: Path) -> None:
    session = new_session(tmp_path)
    v2 = "cd" * 32
    session.add_magnet(parse_magnet(f"{URI}&xt=urn:btmh:1220{v2}"))
    [status] = session.torrent_statuses()
    assert (status.info_hash, status.info_hash_v1, status.info_hash_v2) == (HASH, HASH, v2)


def test_without_dn_the_name_is_the_info_hash(tmp_path: Path) -> None:
    session = new_session(tmp_path)
    session.add_magnet(parse_magnet(f"magnet:?xt=urn:btih:{HASH}"))
    assert session.torrent_statuses()[0].name == HASH


def test_a_magnet_or_torrent_is_added_once(tmp_path: Path) -> None:
    session = new_session(tmp_path)
    session.add_magnet(parse_magnet(URI))
    with pytest.raises(DuplicateTorrentError):
        session.add_magnet(parse_magnet(URI))
    with pytest.raises(DuplicateTorrentError):
        session.add_torrent(ALBUM)
    other = new_session(tmp_path / "other")
    other.add_torrent(ALBUM)
    with pytest.raises(DuplicateTorrentError):
        other.add_magnet(parse_magnet(URI))


def test_a_v2_only_magnet_is_known_by_its_truncated_hash_and_restored(tmp_path: Path) -> None:
    v2 = bytes.fromhex("ab" * 32)
    uri = "magnet:?xt=urn:btmh:1220" + "ab" * 32
    first = new_session(tmp_path)
    fetch = first.add_magnet(parse_magnet(uri))
    assert first.magnets.fetches[v2[:20]] is fetch
    assert first.torrent_for(v2[:20]) is fetch  # incoming peers use that hash
    assert fetch.fetcher.info_hash == v2  # metadata checked with SHA-256
    with pytest.raises(DuplicateTorrentError):
        first.add_magnet(parse_magnet(uri))
    second = new_session(tmp_path)
    assert second.restore() == []
    assert second.magnets.fetches[v2[:20]].magnet == parse_magnet(uri)


def test_a_hybrid_magnet_is_found_by_either_hash(tmp_path: Path) -> None:
    v2 = bytes.fromhex("cd" * 32)
    session = new_session(tmp_path)
    fetch = session.add_magnet(parse_magnet(f"{URI}&xt=urn:btmh:1220{v2.hex()}"))
    assert session.torrent_for(ALBUM.info_hash) is fetch is session.torrent_for(v2[:20])
    with pytest.raises(DuplicateTorrentError):  # the v2 hash alone names it too
        session.add_magnet(parse_magnet(f"magnet:?xt=urn:btmh:1220{v2.hex()}"))


def test_a_magnet_still_fetching_is_fetched_again_after_a_restart(tmp_path: Path) -> None:
    first = new_session(tmp_path)
    first.add_magnet(parse_magnet(URI), paused=True, download_dir=tmp_path / "elsewhere")
    folder = tmp_path / "state" / "torrents"
    assert (folder / f"{HASH}.magnet").read_text().startswith("magnet:?xt=urn:btih:" + HASH)
    second = new_session(tmp_path)
    assert second.restore() == []
    fetch = fetching(second)
    assert fetch.magnet == parse_magnet(URI) and fetch.name == "My Album"
    status = second.torrent_status(ALBUM.info_hash)
    assert status.download_dir == str(tmp_path / "elsewhere")


def test_the_metadata_becomes_a_torrent_saved_at_once_and_never_fetched_again(
    tmp_path: Path,
) -> None:
    first = new_session(tmp_path)
    first.add_magnet(parse_magnet(URI), download_dir=tmp_path / "elsewhere")
    fetch = fetching(first)
    fetch.on_metadata(ALBUM.raw_info, [("10.0.0.3", 1)], {})
    assert ALBUM.info_hash not in first.magnets and ALBUM.info_hash in first.torrents
    torrent = first.torrents[ALBUM.info_hash]
    assert torrent.metainfo.info_hash == ALBUM.info_hash
    assert torrent.download_dir == str(tmp_path / "elsewhere")
    # The magnet's x.pe peer and the peers the metadata came from are candidates.
    assert len(torrent.candidates) == 2
    assert not torrent.candidates.add(("10.0.0.2", 6881))
    assert not torrent.candidates.add(("10.0.0.3", 1))
    folder = tmp_path / "state" / "torrents"
    assert (folder / f"{HASH}.torrent").exists() and not (folder / f"{HASH}.magnet").exists()
    [status] = first.torrent_statuses()
    assert status.name == "album" and status.state != MagnetState.FETCHING_METADATA

    second = new_session(tmp_path)
    assert second.restore() == []
    assert list(second.torrents) == [ALBUM.info_hash] and not second.magnets.fetches


def test_a_magnet_can_be_removed_but_not_changed_before_its_metadata(tmp_path: Path) -> None:
    session = new_session(tmp_path)
    session.add_magnet(parse_magnet(URI))
    with pytest.raises(UnknownTorrentError, match="My Album: still fetching its metadata"):
        session.pause_torrent(ALBUM.info_hash)
    with pytest.raises(UnknownTorrentError, match="no torrent with info-hash 00"):
        session.pause_torrent(bytes(20))


def test_removing_a_magnet_forgets_it(tmp_path: Path) -> None:
    first = new_session(tmp_path)
    first.add_magnet(parse_magnet(URI))
    removed = first.remove_torrent(ALBUM.info_hash)
    assert removed.called and not first.torrent_statuses()
    assert not list((tmp_path / "state" / "torrents").iterdir())
    assert new_session(tmp_path).restore() == []
