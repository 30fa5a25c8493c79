"""v2 and hybrid magnets (BEP 52): SHA-256 metadata, then piece layers by hash requests.

Each peer is the far end of one in-memory connection, serving the metadata of
a torrent libtorrent made and answering hash requests from its piece layers.
"""

from __future__ import annotations

import random
from typing import Any

import pytest
from twisted.internet.testing import MemoryReactorClock, StringTransport

from bt import bencode
from bt.extensions.metadata_messages import (
    METADATA_PIECE,
    MetadataData,
    encode_metadata_message,
    parse_metadata_message,
)
from bt.magnet import parse_magnet
from bt.magnetfetch import NO_PIECES, MetadataFetch, torrent_from_metadata
from bt.metainfo import Metainfo, parse_metainfo
from bt.peer.connection import PeerConnection
from bt.peer.hash_messages import Hashes, HashRequest
from bt.peer.messages import Extended, Handshake, Reserved, encode, encode_handshake
from bt.policy.slots import ConnectionSlots
from bt.swarm.hashes import HashServer
from tests.torrents import libtorrent_v2_torrent, quiet_libtorrent_warnings, write_files

EXTENDED_V2 = Reserved.of(Reserved.EXTENSION_PROTOCOL, Reserved.V2)
THEIR_ID = 3


@pytest.fixture(scope="module")
def torrents(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Metainfo]:
    quiet_libtorrent_warnings()
    root = tmp_path_factory.mktemp("v2magnet")
    content = root / "album"
    # 16 KiB pieces: the big file has 600 pieces (two chunks of 512), one is tiny
    write_files(content, {"big.bin": 600 * 16384 - 999, "small.txt": 3000, "mid.bin": 70000})
    made = {
        "v2": parse_metainfo(libtorrent_v2_torrent(content, 16384)),
        "hybrid": parse_metainfo(libtorrent_v2_torrent(content, 16384, hybrid=True)),
    }
    return made


class Remote:
    """The far end of one connection of the fetch: metadata and hashes of ``meta``."""

    def __init__(self, fetch: MetadataFetch, meta: Metainfo, port: int, answer_hash: bytes) -> None:
        self.meta = meta
        self.protocol = fetch.dialer.factory.for_candidate(("10.0.0.2", port)).buildProtocol(None)
        self.transport = StringTransport()
        assert meta.info_hash_v2 is not None
        v2 = meta.info_hash_v2[:20]
        self.wire = PeerConnection(
            b"-LT2000-remote%06d" % port,
            answer_hash,
            NO_PIECES,
            reserved=EXTENDED_V2,
            v2_hash=v2,
            also_known_as=meta.info_hashes,
        )
        self.wire.ignore_pieces()
        self.answer_hash = answer_hash
        self.server = HashServer(meta)
        self.protocol.makeConnection(self.transport)

    def greet(self) -> None:
        shake = {b"m": {b"ut_metadata": THEIR_ID}, b"metadata_size": len(self.meta.raw_info)}
        handshake = encode_handshake(
            Handshake(self.answer_hash, self.wire.our_peer_id, EXTENDED_V2)
        )
        self.protocol.dataReceived(handshake + encode(Extended(0, bencode.encode(shake))))

    def heard(self) -> list[Any]:
        data = self.transport.value()
        self.transport.clear()
        return self.wire.receive_data(data)

    def serve(self, *, lie: bool = False, refuse: bool = False) -> list[HashRequest]:
        """Answer every metadata and hash request heard; the hash requests."""
        raw = self.meta.raw_info
        asked = []
        for event in self.heard():
            if isinstance(event, Extended) and event.extended_id == THEIR_ID:
                piece = parse_metadata_message(event.payload).piece  # type: ignore[union-attr]
                data = raw[piece * METADATA_PIECE : (piece + 1) * METADATA_PIECE]
                message = encode_metadata_message(MetadataData(piece, len(raw), data))
                self.protocol.dataReceived(encode(Extended(1, message)))
            elif isinstance(event, HashRequest):
                asked.append(event)
                answer = event.reject() if refuse else self.server.answer(event)
                if lie and isinstance(answer, Hashes):
                    hashes = (bytes(32), *answer.hashes[1:])
                    answer = event.answer(hashes)
                self.protocol.dataReceived(encode(answer))
        return asked

    @property
    def dropped(self) -> bool:
        return bool(self.transport.disconnecting)


def _fetch(uri: str, clock: MemoryReactorClock, fetched: list[Any]) -> MetadataFetch:
    fetch = MetadataFetch(
        parse_magnet(uri),
        peer_id=b"-BT0100-ourselves!!!",
        port=6881,
        reactor=clock,
        rng=random.Random(1),
        slots=ConnectionSlots(None),
        trackers=[],
        on_metadata=lambda raw, peers, layers: fetched.append((raw, layers)),
    )
    fetch.startService()
    return fetch


def _serve_until_done(remotes: list[Remote], clock: MemoryReactorClock, fetched: list[Any]) -> int:
    requests = 0
    for _ in range(20):
        for remote in remotes:
            requests += len(remote.serve())
        clock.advance(0)
        if fetched:
            break
    return requests


def _check_handed_over(fetched: list[Any], meta: Metainfo) -> None:
    [(raw, layers)] = fetched
    assert raw == meta.raw_info
    complete = parse_metainfo(torrent_from_metadata(raw, (), layers))  # layers required
    assert dict(complete.piece_layers) == dict(meta.piece_layers)
    assert complete.info_hash == meta.info_hash


def test_a_v2_magnet_fetches_metadata_then_piece_layers(
    torrents: dict[str, Metainfo],
) -> None:
    meta = torrents["v2"]
    assert meta.info_hash_v2 is not None
    clock, fetched = MemoryReactorClock(), []
    fetch = _fetch(f"magnet:?xt=urn:btmh:1220{meta.info_hash_v2.hex()}&dn=a", clock, fetched)
    remote = Remote(fetch, meta, 1, meta.info_hash_v2[:20])
    remote.greet()
    assert _serve_until_done([remote], clock, fetched) == 3  # big: two chunks, mid: one
    _check_handed_over(fetched, meta)
    fetch.stopService()


def test_a_hybrid_magnet_is_checked_against_both_hashes(torrents: dict[str, Metainfo]) -> None:
    meta = torrents["hybrid"]
    assert meta.info_hash_v2 is not None
    uri = f"magnet:?xt=urn:btih:{meta.info_hash.hex()}&xt=urn:btmh:1220{meta.info_hash_v2.hex()}"
    clock, fetched = MemoryReactorClock(), []
    fetch = _fetch(uri, clock, fetched)
    # libtorrent answers a hybrid's v1 hash sent with the v2 bit with its v2 hash
    remote = Remote(fetch, meta, 1, meta.info_hash_v2[:20])
    remote.greet()
    assert fetch.fetcher.assembler is not None
    assert [name for name, _ in fetch.fetcher.assembler.checks] == ["sha1", "sha256"]
    _serve_until_done([remote], clock, fetched)
    _check_handed_over(fetched, meta)
    fetch.stopService()


def test_a_false_piece_layer_drops_the_liar_and_the_next_peer_is_asked(
    torrents: dict[str, Metainfo],
) -> None:
    meta = torrents["v2"]
    assert meta.info_hash_v2 is not None
    clock, fetched = MemoryReactorClock(), []
    fetch = _fetch(f"magnet:?xt=urn:btmh:1220{meta.info_hash_v2.hex()}", clock, fetched)
    liar, honest = (Remote(fetch, meta, port, meta.info_hash_v2[:20]) for port in (1, 2))
    liar.greet()
    honest.greet()
    for _ in range(3):
        liar.serve(lie=True)
        honest.serve()
    assert liar.dropped and "does not prove" in (liar.protocol.close_reason or "")
    liar.protocol.connectionLost()
    _serve_until_done([honest], clock, fetched)
    _check_handed_over(fetched, meta)
    fetch.stopService()


def test_a_v1_magnet_of_a_hybrid_dials_again_with_the_v2_bit(
    torrents: dict[str, Metainfo],
) -> None:
    meta = torrents["hybrid"]
    assert meta.info_hash_v2 is not None
    clock, fetched = MemoryReactorClock(), []
    fetch = _fetch(f"magnet:?xt=urn:btih:{meta.info_hash.hex()}&x.pe=10.0.0.2:1", clock, fetched)
    remote = Remote(fetch, meta, 1, meta.info_hash)
    remote.wire.our_reserved = Reserved.of(Reserved.EXTENSION_PROTOCOL)  # a v1 connection
    remote.greet()
    remote.serve()  # metadata only: the connection is not v2
    assert fetch.v2_hash == meta.info_hash_v2[:20]
    assert remote.dropped and "v2 bit" in (remote.protocol.close_reason or "")
    again = fetch.dialer.factory.for_candidate(("10.0.0.2", 1)).buildProtocol(None)
    assert Reserved.has(again.connection.our_reserved, Reserved.V2)
    assert not fetched
    fetch.stopService()


def test_refused_chunks_are_asked_again_only_now_and_then(torrents: dict[str, Metainfo]) -> None:
    meta = torrents["v2"]
    assert meta.info_hash_v2 is not None
    clock, fetched = MemoryReactorClock(), []
    fetch = _fetch(f"magnet:?xt=urn:btmh:1220{meta.info_hash_v2.hex()}", clock, fetched)
    remote = Remote(fetch, meta, 1, meta.info_hash_v2[:20])
    remote.greet()
    remote.serve()  # the metadata
    assert len(remote.serve(refuse=True)) == 2  # two in flight at most; both refused
    assert len(remote.serve(refuse=True)) == 1  # the third, then nothing left to ask it
    for _ in range(10):
        clock.advance(1)
        assert remote.serve(refuse=True) == []
    clock.advance(10)
    assert remote.serve()  # asked again after a while, and answered now
    _serve_until_done([remote], clock, fetched)
    _check_handed_over(fetched, meta)
    fetch.stopService()
