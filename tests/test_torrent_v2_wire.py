"""A hybrid torrent on the wire (BEP 52): both hashes, the v2 bit, hashes served, announces."""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest
from test_torrent import OUR_ID, FakeDisk, make_torrent
from torrents import libtorrent_v2_torrent, quiet_libtorrent_warnings, write_files
from twisted.internet.testing import MemoryReactorClock, StringTransport

from bt.extensions.standard import install_standard_extensions
from bt.merkle import verify_proof
from bt.metainfo import Metainfo, parse_metainfo
from bt.peer.connection import PeerConnection
from bt.peer.hash_messages import Hashes, HashReject, HashRequest
from bt.peer.incoming import IncomingPeerFactory
from bt.peer.messages import Handshake, Reserved, encode, encode_handshake
from bt.torrent import Torrent
from bt.torrentindex import TorrentIndex
from bt.tracker.sources import Trackers

PEER_ID = b"-LT2000-incoming0001"
V2_BIT = Reserved.of(Reserved.EXTENSION_PROTOCOL, Reserved.FAST, Reserved.V2)
PLAIN = Reserved.of(Reserved.EXTENSION_PROTOCOL, Reserved.FAST)


@pytest.fixture(scope="module")
def hybrid(tmp_path_factory: pytest.TempPathFactory) -> Metainfo:
    quiet_libtorrent_warnings()
    content = tmp_path_factory.mktemp("hybrid") / "pair"
    write_files(content, {"a.bin": 5 * 16384 + 7, "b.bin": 1000})
    data = libtorrent_v2_torrent(content, 16384, hybrid=True)
    return parse_metainfo(data)


@pytest.fixture
def seed(hybrid: Metainfo) -> Iterator[Torrent]:
    clock = MemoryReactorClock()
    torrent = make_torrent(hybrid, clock, FakeDisk(hybrid, complete=True), seed=2)
    install_standard_extensions(torrent)
    torrent.startService()
    yield torrent
    torrent.stopService()


class _Session:
    """The session's lookup: torrents found by any of their hashes."""

    def __init__(self, torrent: Torrent) -> None:
        self.torrents = TorrentIndex[Torrent](lambda t: t.metainfo.info_hashes)
        self.torrents[torrent.info_hash] = torrent

    def torrent_for(self, info_hash: bytes) -> object:
        torrent = self.torrents.find(info_hash)
        return torrent.swarm if torrent is not None else None


def _incoming(
    torrent: Torrent, info_hash: bytes, reserved: bytes
) -> tuple[object, StringTransport]:
    factory = IncomingPeerFactory(OUR_ID, _Session(torrent), torrent.reactor)
    protocol = factory.buildProtocol(None)
    transport = StringTransport()
    protocol.makeConnection(transport)
    protocol.dataReceived(encode_handshake(Handshake(info_hash, PEER_ID, reserved)))
    return protocol, transport


def _answer(transport: StringTransport) -> Handshake:
    data = transport.value()
    return Handshake(data[28:48], data[48:68], data[20:28])


def test_a_hybrid_is_found_by_its_v1_hash_and_upgrades_a_v2_peer(seed: Torrent) -> None:
    meta = seed.metainfo
    assert meta.format == "hybrid" and meta.info_hash_v2 is not None
    _, transport = _incoming(seed, meta.info_hash, V2_BIT)
    answer = _answer(transport)
    assert answer.info_hash == meta.info_hash_v2[:20]  # as libtorrent: the peer speaks v2 now
    assert Reserved.has(answer.reserved, Reserved.V2)
    (link,) = seed.links
    assert link.speaks_v2


def test_the_truncated_v2_hash_finds_it_too(seed: Torrent) -> None:
    meta = seed.metainfo
    assert meta.info_hash_v2 is not None
    _, transport = _incoming(seed, meta.info_hash_v2[:20], PLAIN)
    assert _answer(transport).info_hash == meta.info_hash_v2[:20]
    (link,) = seed.links
    assert link.speaks_v2  # the hash says so without the bit (libtorrent omits it)


def test_a_v1_peer_of_a_hybrid_stays_v1(seed: Torrent) -> None:
    meta = seed.metainfo
    _, transport = _incoming(seed, meta.info_hash, PLAIN)
    answer = _answer(transport)
    assert answer.info_hash == meta.info_hash
    assert Reserved.has(answer.reserved, Reserved.V2)  # offered, not taken
    (link,) = seed.links
    assert not link.speaks_v2


def test_piece_layers_are_served_to_a_v2_peer(seed: Torrent) -> None:
    meta = seed.metainfo
    assert meta.info_hash_v2 is not None
    v2 = meta.info_hash_v2[:20]
    protocol, transport = _incoming(seed, v2, V2_BIT)
    wire = PeerConnection(PEER_ID, v2, meta.geometry, reserved=V2_BIT, v2_hash=v2)
    wire.receive_data(transport.value())
    transport.clear()
    root = next(f.pieces_root for f in meta.files if f.length > meta.piece_length)
    # 16 KiB pieces: the piece layer is the leaf layer; a.bin has 6 pieces (8 wide)
    request = HashRequest(root, 0, 0, 8, 2)
    protocol.dataReceived(encode(request))
    (answer,) = [e for e in wire.receive_data(transport.value()) if isinstance(e, Hashes)]
    assert answer.request == request and verify_proof(answer.hashes, 0, 0, 8, 2, root)
    transport.clear()
    beyond = HashRequest(root, 0, 0, 8, 3)  # proofs above the root
    protocol.dataReceived(encode(beyond))
    (rejected,) = [e for e in wire.receive_data(transport.value()) if isinstance(e, HashReject)]
    assert rejected.request == beyond


def test_trackers_and_outgoing_peers_use_both_hashes(seed: Torrent) -> None:
    meta = seed.metainfo
    assert meta.info_hash_v2 is not None
    trackers = Trackers([object()], seed.reactor, random.Random(1), seed, lambda *_: None)  # type: ignore[list-item]
    hashes = [a._request_factory(None).info_hash for a in trackers.announcers]
    assert hashes == list(meta.info_hashes) and len(hashes) == 2
    protocol = seed.swarm.factory.for_candidate(("10.0.0.9", 1)).buildProtocol(None)
    assert Reserved.has(protocol.connection.our_reserved, Reserved.V2)
    assert protocol.connection.info_hash == meta.info_hash
    assert protocol.connection.also_known_as == meta.info_hashes


def test_verify_proof_of_served_layer(seed: Torrent) -> None:
    assert seed.swarm.hashes is not None
    meta = seed.metainfo
    root = next(f.pieces_root for f in meta.files if f.length > meta.piece_length)
    answer = seed.swarm.hashes.server.answer(HashRequest(root, 1, 0, 4, 1))
    assert isinstance(answer, Hashes)
    assert verify_proof(answer.hashes, 1, 0, 4, 1, root)


def test_peers_of_the_v2_announce_are_dialled_with_the_v2_hash(seed: Torrent) -> None:
    meta = seed.metainfo
    assert meta.info_hash_v2 is not None
    v2 = meta.info_hash_v2[:20]
    heard: list[tuple] = []
    trackers = Trackers(
        [object(), object()],  # type: ignore[list-item]
        seed.reactor,
        random.Random(1),
        seed,
        lambda *args: heard.append(args),
    )
    for announcer in trackers.announcers:
        announcer._on_peers((("10.0.0.5", 5),))
    assert [args[2:] for args in heard] == [(), (), (v2,), (v2,)]
    seed.add_candidates([("10.0.0.5", 5)], "tracker", v2)
    seed.add_candidates([("10.0.0.6", 6)])
    dialled = {(host, port): factory for host, port, factory, *_ in seed.reactor.tcpClients}
    assert dialled[("10.0.0.5", 5)].info_hash == v2
    assert dialled[("10.0.0.6", 6)].info_hash == meta.info_hash


def test_block_hashes_are_asked_of_a_v2_peer_over_the_wire(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    from bt.merkle import leaf_hashes
    from bt.peer.messages import HaveAll

    content = tmp_path_factory.mktemp("big") / "pair"
    write_files(content, {"a.bin": 5 * 65536 + 7, "b.bin": 1000})
    meta = parse_metainfo(libtorrent_v2_torrent(content, 65536, hybrid=True))
    assert meta.info_hash_v2 is not None
    torrent = make_torrent(meta, MemoryReactorClock(), FakeDisk(meta), seed=3)
    install_standard_extensions(torrent)
    torrent.startService()
    v2 = meta.info_hash_v2[:20]
    protocol, transport = _incoming(torrent, v2, V2_BIT)
    wire = PeerConnection(PEER_ID, v2, meta.geometry, reserved=V2_BIT, v2_hash=v2)
    wire.receive_data(transport.value())
    protocol.dataReceived(encode(HaveAll()))
    transport.clear()
    results: list[object] = []
    torrent.swarm.hashes.block_hashes(1).addCallback(results.append)
    (request,) = [e for e in wire.receive_data(transport.value()) if isinstance(e, HashRequest)]
    assert (request.base_layer, request.index, request.length, request.proof_layers) == (0, 4, 4, 1)
    leaves = leaf_hashes((content / "a.bin").read_bytes()[65536 : 2 * 65536])
    protocol.dataReceived(encode(request.answer(leaves)))
    assert results == [leaves]
    torrent.stopService()


def test_after_a_pause_and_resume_a_v2_peer_is_served_hashes_again(seed: Torrent) -> None:
    meta = seed.metainfo
    assert meta.info_hash_v2 is not None
    v2 = meta.info_hash_v2[:20]
    root = next(f.pieces_root for f in meta.files if f.length > meta.piece_length)
    request = HashRequest(root, 0, 0, 8, 2)

    def ask() -> list[object]:
        protocol, transport = _incoming(seed, v2, V2_BIT)
        wire = PeerConnection(PEER_ID, v2, meta.geometry, reserved=V2_BIT, v2_hash=v2)
        wire.receive_data(transport.value())
        transport.clear()
        protocol.dataReceived(encode(request))
        return [e for e in wire.receive_data(transport.value()) if isinstance(e, Hashes)]

    assert len(ask()) == 1
    before = seed.state
    seed.pause()
    assert not seed.links
    seed.resume()
    seed.reactor.advance(1)  # type: ignore[attr-defined]
    (answer,) = ask()
    assert answer.request == request and verify_proof(answer.hashes, 0, 0, 8, 2, root)
    assert seed.state == before
