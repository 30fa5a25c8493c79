"""Scripted peers that set reserved bits, for the swarm's extension tests."""

from __future__ import annotations

from collections.abc import Iterator

from test_torrent import ScriptedPeer, connect

from bt.peer.messages import Handshake, Message, encode, encode_handshake
from bt.torrent import Torrent


def peer_with_bits(
    torrent: Torrent, reserved: bytes, peer_id: bytes, port: int, *messages: Message
) -> ScriptedPeer:
    """A peer whose handshake sets ``reserved`` and that says ``messages`` after it."""
    peer = connect(torrent, peer_id, port)
    peer.wire.our_reserved = reserved
    hello = encode_handshake(Handshake(torrent.metainfo.info_hash, peer.peer_id, reserved))
    peer.protocol.dataReceived(hello + b"".join(encode(m) for m in messages))
    return peer


def running(torrent: Torrent) -> Iterator[Torrent]:
    """For a fixture: ``torrent`` started, and stopped after the test."""
    torrent.startService()
    yield torrent
    torrent.stopService()
