"""One bad block of a v2 piece costs one block, not the piece (BEP 52's merkle leaves).

A raw-socket seeder flips the bytes of the first block it serves (once) and
rejects every hash request; a good libtorrent seeder has everything and answers
hash requests. bt finds both through opentracker. When the piece fails, bt gets
the piece's 16 KiB leaf hashes from libtorrent, sees which block is bad and asks
again for that block only. What each block of the piece was asked for is
counted on the seeders' side: by the bad seeder itself and from libtorrent's
peer log, independently of bt.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from swarm import BtDaemon, LibtorrentPeer, OpenTracker, scrape_counts, wait_for
from test_create_swarm import assert_stopped_cleanly
from test_download import assert_same_tree
from torrents import write_files
from v2swarm import (
    BLOCK,
    OneBadBlockSeeder,
    RequestLog,
    libtorrent_hashes,
    libtorrent_made,
    session_counter,
    v2_stream,
    with_announce,
)

pytestmark = [pytest.mark.integration, pytest.mark.filterwarnings("ignore::DeprecationWarning")]

#: 16 blocks a piece: a whole-piece re-fetch asks again for 15 good blocks.
PIECE = 256 * 1024
#: 32 pieces: the bad piece (the bad seeder's first) is done long before the endgame,
#: whose duplicate requests would blur the count.
SIZE = 32 * PIECE - 1_000
TIMEOUT = 60


def test_one_corrupted_block_is_fetched_again_alone(
    tmp_path: Path, opentracker: OpenTracker, libtorrent: object
) -> None:
    seed = tmp_path / "seed"
    write_files(seed, {"big.bin": SIZE})
    plain = libtorrent_made(seed / "big.bin", PIECE, "v2")
    hashes = libtorrent_hashes(plain)
    opentracker.start(hashes.wire)
    torrent = tmp_path / "big.torrent"
    torrent.write_bytes(with_announce(plain, opentracker.announce_url))
    stream, piece_length = v2_stream(plain, seed)

    liar = OneBadBlockSeeder(hashes.wire, stream, piece_length)
    liar.start()
    good = LibtorrentPeer(torrent.read_bytes(), seed)
    asked_good = RequestLog(good)
    work = tmp_path / "bt"
    work.mkdir()
    daemon = BtDaemon(work, torrent, work / "downloads")
    try:
        good.wait_checked()
        opentracker.announce(hashes.wire[0], liar.peer_id, liar.port)
        wait_for(lambda: scrape_counts(opentracker, hashes.wire[0]) >= 2, 30, "both seeders")
        daemon.start()
        daemon.wait_for_log("big.bin: download complete", TIMEOUT)
        assert_same_tree(seed / "big.bin", daemon.download_dir / "big.bin")
        daemon.wait_for_api()
        _, status = daemon.api("GET", f"/api/v1/torrents/{hashes.wire[0].hex()}")
    finally:
        good_counts = asked_good.collect()
        hashes_served = session_counter(good.session, "ses.num_outgoing_hashes")
        good.close()
        liar.stop()
        stopped = daemon.stop()
    log = assert_stopped_cleanly(daemon, stopped)

    assert liar.bad_block is not None, "bt never asked the bad seeder for a block"
    piece, bad_begin = liar.bad_block
    assert "failed its hash check" in log and status["hash_failures"] == 1, log[-3000:]
    asked = Counter(liar.requests) + good_counts
    per_block = {begin: asked[piece, begin] for begin in range(0, piece_length, BLOCK)}
    again = {begin: n for begin, n in per_block.items() if n != 1}
    # The bad block was asked for twice (bad, then good); every other block once.
    # A whole-piece re-fetch shows here as 15 more blocks asked for twice.
    assert list(again) == [bad_begin] and again[bad_begin] >= 2, (
        f"piece {piece}, bad block at {bad_begin}: requests per block {per_block}; "
        f"hash requests: {liar.hash_requests} rejected by the bad seeder, "
        f"{hashes_served} answered by libtorrent"
    )
    assert hashes_served >= 1
