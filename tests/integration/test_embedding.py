"""The embedding example in README.rst runs as written and downloads into memory."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import pytest_twisted
from swarm import LibtorrentPeer, OpenTracker, scrape_counts, wait_for
from torrents import libtorrent_torrent, write_files

from bt.metainfo import parse_metainfo

pytestmark = [pytest.mark.integration, pytest.mark.filterwarnings("ignore::DeprecationWarning")]

README = Path(__file__).resolve().parents[2] / "README.rst"


def readme_example() -> str:
    """The python block after the ``.. embedding-example`` marker, unindented."""
    text = README.read_text()
    match = re.search(
        r"\.\. embedding-example\n\n\.\. code-block:: python\n\n((?:   .*\n|\n)+)", text
    )
    assert match, "README.rst lost its embedding example"
    return "\n".join(line[3:] for line in match.group(1).splitlines())


@pytest_twisted.ensureDeferred
async def test_readme_embedding_example_downloads_into_memory(
    tmp_path: Path, opentracker: OpenTracker, libtorrent: object
) -> None:
    from twisted.internet import reactor

    seed = tmp_path / "seed"
    write_files(seed, {"blob.bin": 1_500_001})
    provisional = libtorrent_torrent(seed / "blob.bin", 64 * 1024)
    opentracker.start([parse_metainfo(provisional).info_hash])
    data = libtorrent_torrent(seed / "blob.bin", 64 * 1024, tracker=opentracker.announce_url)
    torrent = tmp_path / "blob.torrent"
    torrent.write_bytes(data)
    seeder = LibtorrentPeer(data, seed)
    try:
        info_hash = parse_metainfo(data).info_hash
        wait_for(lambda: scrape_counts(opentracker, info_hash) >= 1, 30, "seeder at the tracker")
        namespace: dict[str, object] = {}
        exec(compile(readme_example(), str(README), "exec"), namespace)
        fetch = namespace["fetch"]
        fetched = await fetch(reactor, torrent, tmp_path / "state")  # type: ignore[operator]
        assert fetched == (seed / "blob.bin").read_bytes()
        assert not list((tmp_path).glob("blob.bin")), "memory storage wrote no file"
    finally:
        seeder.close()
