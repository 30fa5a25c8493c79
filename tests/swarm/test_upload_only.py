"""BEP 21 upload-only, as the standard extensions give it to every torrent of a session.

Our extended handshake says upload_only while every wanted piece is here, and
peers hear an update when that changes; a peer that says it only uploads counts
as a seed: dropped when we are finished too, and not dialled again then.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from scripted import peer_with_bits
from test_torrent import FakeDisk, ScriptedPeer, connect, make_torrent, one_file_metainfo
from twisted.internet.testing import MemoryReactorClock

from bt import bencode
from bt.bitfield import Bitfield
from bt.extensions.handshake import ExtendedHandshake, parse_extended_handshake
from bt.extensions.standard import install_standard_extensions
from bt.extensions.upload_only import UploadOnly
from bt.peer.messages import (
    BitfieldMessage,
    Extended,
    Message,
    Reserved,
    Unchoke,
)
from bt.swarm.extension import CLIENT_NAME
from bt.torrent import Torrent

EXTENDED = Reserved.of(Reserved.EXTENSION_PROTOCOL)


def started(clock: MemoryReactorClock, *, complete: bool) -> Torrent:
    metainfo = one_file_metainfo()
    torrent = make_torrent(metainfo, clock, FakeDisk(metainfo, complete=complete))
    install_standard_extensions(torrent)
    torrent.startService()
    return torrent


@pytest.fixture
def clock() -> MemoryReactorClock:
    return MemoryReactorClock()


@pytest.fixture
def seed(clock: MemoryReactorClock) -> Iterator[Torrent]:
    torrent = started(clock, complete=True)
    yield torrent
    torrent.stopService()


@pytest.fixture
def leecher(clock: MemoryReactorClock) -> Iterator[Torrent]:
    torrent = started(clock, complete=False)
    yield torrent
    torrent.stopService()


def extended_peer(torrent: Torrent, *messages: Message, port: int = 8) -> ScriptedPeer:
    return peer_with_bits(torrent, EXTENDED, b"-LT2000-uploadonly%02d" % port, port, *messages)


def handshakes(peer: ScriptedPeer) -> list[ExtendedHandshake]:
    return [
        parse_extended_handshake(e.payload)
        for e in peer.heard()
        if isinstance(e, Extended) and e.extended_id == 0
    ]


def saying(upload_only: int) -> Extended:
    return Extended(0, bencode.encode({b"m": {b"upload_only": 3}, b"upload_only": upload_only}))


def test_a_seed_says_upload_only_and_a_leecher_does_not(seed: Torrent, leecher: Torrent) -> None:
    [ours] = handshakes(extended_peer(seed))
    assert ours.upload_only and "upload_only" in ours.messages
    [ours] = handshakes(extended_peer(leecher))
    assert not ours.upload_only


def test_peers_hear_an_update_when_we_finish(leecher: Torrent, clock: MemoryReactorClock) -> None:
    watcher = extended_peer(leecher, port=9)
    [first] = handshakes(watcher)
    assert not first.upload_only
    source = connect(leecher, b"-LT2000-seeder000001", 1)
    full = Bitfield.full(leecher.metainfo.num_pieces)
    source.say(BitfieldMessage(full.to_bytes()), Unchoke(), handshake=True)
    source.serve()
    assert leecher.is_finished
    clock.advance(1)
    [update] = handshakes(watcher)
    assert update.upload_only
    # The whole handshake again: libtorrent reads an update without an extension's
    # id (or without metadata_size) as that extension turned off.
    assert update.messages == first.messages and "upload_only" in update.messages
    assert (update.port, update.client, update.your_ip) == (6881, CLIENT_NAME, "10.0.0.1")
    clock.advance(1)
    assert handshakes(watcher) == [], "said once"


def test_an_upload_only_peer_is_dropped_by_a_seed_and_not_dialled_again(seed: Torrent) -> None:
    seed.add_candidates([("10.0.0.1", 8)])
    peer = extended_peer(seed, saying(1))
    assert peer.transport.disconnecting
    assert peer.protocol.close_reason == "both sides are seeds"
    peer.protocol.connectionLost()
    far = seed.reactor.seconds() + 3600
    assert seed.candidates.take(far, 10, skip_seeds=True) == []
    assert seed.candidates.take(far, 10) == [("10.0.0.1", 8)]


def test_a_downloading_torrent_keeps_an_upload_only_peer(leecher: Torrent) -> None:
    peer = extended_peer(leecher, saying(1))
    (link,) = leecher.links
    assert link.upload_only and not peer.transport.disconnecting


def test_libtorrents_upload_only_message_counts_too(seed: Torrent) -> None:
    ours = UploadOnly(lambda: True).name
    [shake] = handshakes(peer := extended_peer(seed, saying(0)))
    assert not peer.transport.disconnecting
    peer.say(Extended(shake.messages[ours], b"\x01"))
    assert peer.protocol.close_reason == "both sides are seeds"
