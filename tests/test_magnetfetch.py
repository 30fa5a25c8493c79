"""A magnet fetching its metadata from scripted peers: parallel, bounded, verified.

Each peer here is the remote end of one in-memory connection. The fetch dials
the magnet's ``x.pe`` peers, sends only its extended handshake, asks each
peer that offers ``ut_metadata`` for a few pieces, and hands over the info
dictionary once it hashes right. Wrong sizes, wrong pieces, a hash mismatch and
a peer that stalls each cost only the peer that did it.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator
from typing import Any

import pytest
from twisted.internet.testing import MemoryReactorClock, StringTransport

from bt import bencode
from bt.extensions.handshake import parse_extended_handshake
from bt.extensions.metadata_messages import (
    METADATA_PIECE,
    MetadataData,
    MetadataReject,
    MetadataRequest,
    encode_metadata_message,
    parse_metadata_message,
)
from bt.magnet import parse_magnet
from bt.magnetfetch import NO_PIECES, MetadataFetch, torrent_from_metadata
from bt.metainfo import parse_metainfo
from bt.peer.connection import PeerConnection
from bt.peer.messages import (
    BitfieldMessage,
    Extended,
    Handshake,
    Have,
    HaveAll,
    Reserved,
    Unchoke,
    encode,
    encode_handshake,
)
from bt.policy.slots import ConnectionSlots

INFO = bytes(range(256)) * 150  # 38,400 bytes: three pieces, the last one short
INFO_HASH = hashlib.sha1(INFO).digest()
EXTENDED = Reserved.of(Reserved.EXTENSION_PROTOCOL)
FAST_AND_EXTENDED = Reserved.of(Reserved.EXTENSION_PROTOCOL, Reserved.FAST)
THEIR_ID = 3  # the id each scripted peer gives ut_metadata
OURS = 1  # the id we give it


class Remote:
    """The far end of one connection of the fetch."""

    def __init__(self, fetch: MetadataFetch, port: int, reserved: bytes = EXTENDED) -> None:
        self.protocol = fetch.dialer.factory.for_candidate(("10.0.0.2", port)).buildProtocol(None)
        self.transport = StringTransport()
        self.wire = PeerConnection(b"-LT2000-remote%06d" % port, INFO_HASH, NO_PIECES)
        self.wire.our_reserved = reserved
        self.wire.ignore_pieces()
        self.protocol.makeConnection(self.transport)
        self.reserved = reserved

    def greet(
        self, *, size: int | None = len(INFO), offers: bool = True, extra: bytes = b""
    ) -> None:
        shake: dict[bytes, Any] = {b"m": {b"ut_metadata": THEIR_ID} if offers else {}}
        if size is not None:
            shake[b"metadata_size"] = size
        handshake = encode_handshake(Handshake(INFO_HASH, self.wire.our_peer_id, self.reserved))
        self.protocol.dataReceived(handshake + extra + encode(Extended(0, bencode.encode(shake))))

    def say(self, *messages: Any) -> None:
        self.protocol.dataReceived(b"".join(encode(m) for m in messages))

    def send_piece(self, piece: int, data: bytes | None = None, total: int = len(INFO)) -> None:
        if data is None:
            data = INFO[piece * METADATA_PIECE : (piece + 1) * METADATA_PIECE]
        message = MetadataData(piece, total, data)
        self.say(Extended(OURS, encode_metadata_message(message)))

    def heard(self) -> list[Any]:
        data = self.transport.value()
        self.transport.clear()
        return self.wire.receive_data(data)

    def asked(self) -> list[int]:
        """The pieces we asked this peer for since last time."""
        return [
            parse_metadata_message(e.payload).piece  # type: ignore[union-attr]
            for e in self.heard()
            if isinstance(e, Extended) and e.extended_id == THEIR_ID
        ]

    @property
    def dropped(self) -> bool:
        return bool(self.transport.disconnecting)


@pytest.fixture
def clock() -> MemoryReactorClock:
    return MemoryReactorClock()


@pytest.fixture
def fetched() -> list[tuple[bytes, list[Any]]]:
    return []


@pytest.fixture
def fetch(clock: MemoryReactorClock, fetched: list[Any]) -> Iterator[MetadataFetch]:
    magnet = parse_magnet(f"magnet:?xt=urn:btih:{INFO_HASH.hex()}&dn=x&x.pe=10.0.0.2:1")
    fetch = MetadataFetch(
        magnet,
        peer_id=b"-BT0100-ourselves!!!",
        port=6881,
        reactor=clock,
        rng=random.Random(1),
        slots=ConnectionSlots(None),
        trackers=[],
        on_metadata=lambda raw, peers, layers: fetched.append((raw, peers)),
    )
    fetch.startService()
    yield fetch
    fetch.stopService()


def test_the_magnets_peers_are_dialled(fetch: MetadataFetch, clock: MemoryReactorClock) -> None:
    assert [(host, port) for host, port, *_ in clock.tcpClients] == [("10.0.0.2", 1)]


def test_we_send_our_handshake_and_offer_only_ut_metadata_without_a_size(
    fetch: MetadataFetch,
) -> None:
    remote = Remote(fetch, 1)
    remote.greet()
    events = remote.heard()
    assert events[0].info_hash == INFO_HASH
    shake = parse_extended_handshake(events[1].payload)
    assert shake.messages == {"ut_metadata": OURS} and shake.metadata_size is None
    assert shake.port == 6881


def test_two_peers_are_asked_in_parallel_and_the_metadata_is_handed_over(
    fetch: MetadataFetch, clock: MemoryReactorClock, fetched: list[Any]
) -> None:
    first, second = Remote(fetch, 1), Remote(fetch, 2)
    first.greet()
    second.greet()
    assert first.asked() == [0, 1] and second.asked() == [2]
    first.send_piece(1)
    second.send_piece(2)
    first.send_piece(0)
    assert fetch.fetcher.metadata == INFO
    clock.advance(0)
    [(raw, peers)] = fetched
    assert raw == INFO and set(peers) == {("10.0.0.2", 1), ("10.0.0.2", 2)}
    assert fetch.tried == {("10.0.0.2", 1), ("10.0.0.2", 2)}


def test_piece_messages_are_ignored_in_metadata_mode(fetch: MetadataFetch) -> None:
    remote = Remote(fetch, 1, FAST_AND_EXTENDED)
    remote.greet(extra=encode(HaveAll()) + encode(Unchoke()))
    remote.say(BitfieldMessage(b"\xff" * 40), Have(12345))
    assert not remote.dropped and remote.asked() == [0, 1]


def test_a_peer_without_the_extension_protocol_is_refused(fetch: MetadataFetch) -> None:
    remote = Remote(fetch, 1, bytes(8))
    remote.greet()
    assert remote.dropped and "BEP 10" in (remote.protocol.close_reason or "")


def test_our_metadata_requests_are_rejected(fetch: MetadataFetch) -> None:
    remote = Remote(fetch, 1)
    remote.greet(size=None)  # it has only the magnet too
    remote.heard()
    remote.say(Extended(OURS, encode_metadata_message(MetadataRequest(0))))
    [answer] = [parse_metadata_message(e.payload) for e in remote.heard()]
    assert answer == MetadataReject(0)


@pytest.mark.parametrize(
    ("piece", "data", "total", "why"),
    [
        (0, b"short", len(INFO), "is 5 bytes"),
        (7, b"x", len(INFO), "piece 7 of 3"),
        (0, INFO[:METADATA_PIECE], 99, "total_size 99"),
    ],
)
def test_a_wrong_piece_or_size_drops_that_peer_only(
    fetch: MetadataFetch, piece: int, data: bytes, total: int, why: str
) -> None:
    bad, good = Remote(fetch, 1), Remote(fetch, 2)
    bad.greet()
    good.greet()
    bad.send_piece(piece, data, total)
    assert bad.dropped and why in (bad.protocol.close_reason or "")
    assert not good.dropped


def test_metadata_over_the_size_limit_is_refused(fetch: MetadataFetch) -> None:
    remote = Remote(fetch, 1)
    remote.greet(size=64 * 1024 * 1024)
    assert remote.dropped and "metadata_size" in (remote.protocol.close_reason or "")


def test_a_hash_mismatch_drops_the_senders_and_an_honest_peer_completes(
    fetch: MetadataFetch, clock: MemoryReactorClock, fetched: list[Any]
) -> None:
    liar = Remote(fetch, 1)
    liar.greet()
    assert liar.asked() == [0, 1]
    liar.send_piece(0, bytes(METADATA_PIECE))
    liar.send_piece(1)
    assert liar.asked() == [2]
    honest = Remote(fetch, 2)
    honest.greet()
    assert honest.asked() == []  # every piece is asked of someone
    liar.send_piece(2)
    assert liar.dropped and "does not match" in (liar.protocol.close_reason or "")
    liar.protocol.connectionLost()
    assert honest.asked() == [0, 1]  # the pieces were dropped: all asked again
    honest.send_piece(0)
    honest.send_piece(1)
    assert honest.asked() == [2]
    honest.send_piece(2)
    clock.advance(0)
    assert [raw for raw, _ in fetched] == [INFO]


def test_a_peer_that_stalls_is_dropped_and_its_pieces_go_to_another(
    fetch: MetadataFetch, clock: MemoryReactorClock
) -> None:
    slow, quick = Remote(fetch, 1), Remote(fetch, 2)
    slow.greet()
    quick.greet()
    assert slow.asked() == [0, 1] and quick.asked() == [2]
    quick.send_piece(2)
    quick.asked()
    clock.advance(21)
    assert slow.dropped and "no metadata piece" in (slow.protocol.close_reason or "")
    assert quick.asked() == [0, 1]


def test_a_reject_sends_the_piece_to_someone_else(fetch: MetadataFetch) -> None:
    first, second = Remote(fetch, 1), Remote(fetch, 2)
    first.greet()
    second.greet()
    first.asked(), second.asked()
    second.send_piece(2)
    second.asked()
    first.say(Extended(OURS, encode_metadata_message(MetadataReject(0))))
    assert second.asked() == [0]


def test_a_peer_naming_another_size_is_not_asked(fetch: MetadataFetch) -> None:
    first, other = Remote(fetch, 1), Remote(fetch, 2)
    first.greet()
    other.greet(size=1234)
    assert other.asked() == [] and not other.dropped


def test_an_incoming_peer_joins_in_metadata_mode(fetch: MetadataFetch) -> None:
    from bt.peer.incoming import IncomingPeerFactory

    class Lookup:
        def torrent_for(self, info_hash: bytes) -> Any:
            return fetch if info_hash == INFO_HASH else None

    factory = IncomingPeerFactory(b"-BT0100-ourselves!!!", Lookup(), fetch.reactor)
    protocol = factory.buildProtocol(None)
    transport = StringTransport()
    protocol.makeConnection(transport)
    wire = PeerConnection(b"-LT2000-incoming0001", INFO_HASH, NO_PIECES, reserved=EXTENDED)
    shake = bencode.encode({b"m": {b"ut_metadata": THEIR_ID}, b"metadata_size": len(INFO)})
    protocol.dataReceived(
        encode_handshake(Handshake(INFO_HASH, wire.our_peer_id, EXTENDED))
        + encode(BitfieldMessage(b"\xff" * 3))
        + encode(Extended(0, shake))
    )
    assert not transport.disconnecting
    assert len(fetch.peers) == 1
    factory.stopFactory()


def test_the_torrent_gets_dialable_addresses_of_the_peers(
    fetch: MetadataFetch, clock: MemoryReactorClock, fetched: list[Any]
) -> None:
    from bt.magnetfetch import _dialable

    remote = Remote(fetch, 1)
    remote.greet()
    (peer,) = fetch.peers
    assert _dialable(peer) == ("10.0.0.2", 1)
    peer.protocol.candidate = None  # as if it had dialled us, from port 1
    peer.peer_extensions = None
    assert _dialable(peer) is None
    from bt.extensions.handshake import ExtendedHandshake

    peer.peer_extensions = ExtendedHandshake({"ut_metadata": THEIR_ID}, port=51413)
    assert _dialable(peer) == ("10.0.0.2", 51413)


def test_the_torrent_keeps_the_info_bytes_and_the_magnets_trackers() -> None:
    raw = bencode.encode(
        {b"length": 5, b"name": b"x", b"piece length": 16384, b"pieces": bytes(20)}
    )
    data = torrent_from_metadata(raw, (("http://a/announce",), ("udp://b:1/announce",)))
    metainfo = parse_metainfo(data)
    assert metainfo.raw_info == raw and metainfo.info_hash == hashlib.sha1(raw).digest()
    assert metainfo.trackers == (("http://a/announce",), ("udp://b:1/announce",))
    assert parse_metainfo(torrent_from_metadata(raw, ())).trackers == ()


def test_when_the_peers_of_one_size_are_gone_the_size_others_name_is_fetched(
    fetch: MetadataFetch, clock: MemoryReactorClock, fetched: list[Any]
) -> None:
    liar, honest = Remote(fetch, 1), Remote(fetch, 2)
    liar.greet(size=100)  # heard first: its size is assembled first
    honest.greet()
    assert liar.asked() == [0] and honest.asked() == []
    liar.send_piece(0, bytes(100), total=100)  # does not hash to the info-hash
    assert liar.dropped
    assert honest.asked() == [0, 1]
    for piece in (0, 1):
        honest.send_piece(piece)
    assert honest.asked() == [2]
    honest.send_piece(2)
    clock.advance(0)
    assert [raw for raw, _ in fetched] == [INFO]
