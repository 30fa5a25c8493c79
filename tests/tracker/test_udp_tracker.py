"""UDPTracker against a scripted tracker: exchanges, retransmission timing, connection ids, cleanup.

Most tests run on a fake reactor (``task.Clock`` plus a ``listenUDP`` that
records datagrams), so timing is exact and no socket is opened; the test
plays the tracker by reading what was sent and feeding answers to the
protocol. One test talks to a real responder on 127.0.0.1.
"""

from __future__ import annotations

import random
import struct
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import defer, task
from twisted.internet.error import DNSLookupError
from twisted.internet.protocol import DatagramProtocol
from twisted.python.failure import Failure

from bt.errors import TrackerError
from bt.tracker.announce import (
    AnnounceRequest,
    AnnounceResponse,
    encode_compact_peers,
    encode_compact_peers6,
)
from bt.tracker.scrape import ScrapeResult
from bt.tracker.udp import UDPTracker

TRACKER = ("127.0.0.1", 6969)
URL = "udp://127.0.0.1:6969/announce"
CID = 0x1122334455667788
REQUEST = AnnounceRequest(
    info_hash=b"i" * 20,
    peer_id=b"-BT0001-abcdefghijkl",
    port=6881,
    uploaded=1,
    downloaded=2,
    left=3,
    event="started",
    key="0000abcd",
)


class FakePort:
    """A listening UDP port that keeps what is written to it."""

    def __init__(self, protocol: DatagramProtocol, interface: str) -> None:
        self.protocol = protocol
        self.interface = interface
        self.sent: list[tuple[bytes, tuple[str, int]]] = []
        self.listening = True
        self.fail_writes: OSError | None = None
        protocol.makeConnection(self)  # type: ignore[arg-type]

    def write(self, data: bytes, addr: tuple[str, int]) -> None:
        assert self.listening, "wrote to a closed port"
        if self.fail_writes is not None:
            raise self.fail_writes
        self.sent.append((data, addr))

    def stopListening(self) -> None:
        self.listening = False
        self.protocol.doStop()


class FakeReactor(task.Clock):
    """A clock whose ``listenUDP`` opens :class:`FakePort` objects."""

    def __init__(self) -> None:
        super().__init__()
        self.ports: list[FakePort] = []

    def listenUDP(
        self, port: int, protocol: DatagramProtocol, interface: str = "", maxPacketSize: int = 8192
    ) -> FakePort:
        assert port == 0, "the tracker client must use an ephemeral port"
        opened = FakePort(protocol, interface)
        self.ports.append(opened)
        return opened

    @property
    def port(self) -> FakePort:
        return self.ports[-1]

    def open_ports(self) -> list[FakePort]:
        return [p for p in self.ports if p.listening]

    def sent(self) -> list[tuple[bytes, tuple[str, int]]]:
        return [datagram for port in self.ports for datagram in port.sent]

    def last(self) -> bytes:
        return self.sent()[-1][0]

    def answer(self, data: bytes, sender: tuple[str, int] = TRACKER) -> None:
        self.port.protocol.datagramReceived(data, sender)


def make(reactor: FakeReactor, url: str = URL, **options: Any) -> tuple[UDPTracker, random.Random]:
    rng = random.Random(1)
    options.setdefault("retry_base", 1.0)
    return UDPTracker(url, reactor, rng=rng, **options), rng


def action_tid(packet: bytes) -> tuple[int, int]:
    """The action and transaction id of a request (after its 8-byte connection id or magic)."""
    return struct.unpack_from("!iI", packet, 8)


def connection_id(packet: bytes) -> int:
    return struct.unpack_from("!Q", packet)[0]


def connect_reply(packet: bytes, cid: int = CID) -> bytes:
    action, tid = action_tid(packet)
    assert action == 0 and len(packet) == 16
    return struct.pack("!iIQ", 0, tid, cid)


def announce_reply(packet: bytes, peers: bytes = b"", interval: int = 900) -> bytes:
    action, tid = action_tid(packet)
    assert action == 1 and len(packet) == 98
    return struct.pack("!iIiii", 1, tid, interval, 4, 2) + peers


def error_reply(packet: bytes, message: bytes) -> bytes:
    return struct.pack("!iI", 3, action_tid(packet)[1]) + message


def result_of(d: defer.Deferred[Any]) -> Any:
    outcome: list[Any] = []
    d.addBoth(outcome.append)
    assert outcome, "the operation has not finished"
    if isinstance(outcome[0], Failure):
        outcome[0].raiseException()
    return outcome[0]


def failure_of(d: defer.Deferred[Any]) -> TrackerError:
    with pytest.raises(TrackerError) as caught:
        result_of(d)
    return caught.value


def assert_clean(reactor: FakeReactor) -> None:
    """Nothing left behind once every operation has finished."""
    assert reactor.getDelayedCalls() == []
    assert reactor.open_ports() == []


def announce_through(reactor: FakeReactor, tracker: UDPTracker) -> AnnounceResponse:
    """One announce with a fresh connect, answered at once."""
    d = tracker.announce(REQUEST)
    reactor.answer(connect_reply(reactor.last()))
    reactor.answer(announce_reply(reactor.last()))
    return result_of(d)


# --- exchanges ----------------------------------------------------------------------


def test_connect_then_announce_ipv4() -> None:
    reactor = FakeReactor()
    tracker, _ = make(reactor)
    d = tracker.announce(REQUEST)

    assert reactor.port.interface == "0.0.0.0"
    packet, address = reactor.sent()[0]
    assert address == TRACKER
    assert packet[:8] == struct.pack("!Q", 0x41727101980)
    reactor.answer(connect_reply(packet))

    packet, address = reactor.sent()[1]
    assert address == TRACKER
    assert connection_id(packet) == CID
    peers = [("10.1.2.3", 6881), ("10.1.2.4", 6882)]
    reactor.answer(announce_reply(packet, encode_compact_peers(peers)))

    response = result_of(d)
    assert response.peers == tuple(peers)
    assert (response.interval, response.complete, response.incomplete) == (900, 2, 4)
    assert_clean(reactor)


def test_ipv6_tracker_binds_ipv6_and_reads_18_byte_peers() -> None:
    reactor = FakeReactor()
    tracker, _ = make(reactor, "udp://[::1]:6969")
    d = tracker.announce(REQUEST)

    assert reactor.port.interface == "::"
    assert reactor.sent()[0][1] == ("::1", 6969)
    # Another spelling of the same address is still the tracker.
    reactor.answer(connect_reply(reactor.last()), ("0:0:0:0:0:0:0:1", 6969))
    peers = [("2001:db8::7", 51413)]
    reactor.answer(announce_reply(reactor.last(), encode_compact_peers6(peers)), ("::1", 6969))

    assert result_of(d).peers == tuple(peers)
    assert_clean(reactor)


def test_bind_interface_can_be_chosen() -> None:
    reactor = FakeReactor()
    tracker, _ = make(reactor, interface="127.0.0.1")
    tracker.announce(REQUEST)
    assert reactor.port.interface == "127.0.0.1"
    result = tracker.close()
    assert result is None


def test_scrape_of_several_hashes() -> None:
    reactor = FakeReactor()
    tracker, _ = make(reactor)
    hashes = [b"a" * 20, b"b" * 20, b"c" * 20]
    d = tracker.scrape(hashes)
    reactor.answer(connect_reply(reactor.last()))

    packet = reactor.last()
    assert action_tid(packet)[0] == 2
    assert packet[16:] == b"".join(hashes)
    counts = struct.pack("!9i", 1, 2, 3, 4, 5, 6, 7, 8, 9)
    reactor.answer(struct.pack("!iI", 2, action_tid(packet)[1]) + counts)

    assert result_of(d) == {
        b"a" * 20: ScrapeResult(1, 2, 3),
        b"b" * 20: ScrapeResult(4, 5, 6),
        b"c" * 20: ScrapeResult(7, 8, 9),
    }
    assert_clean(reactor)


def test_scrape_of_more_hashes_than_fit_a_packet_takes_several_requests() -> None:
    reactor = FakeReactor()
    tracker, _ = make(reactor)
    hashes = [i.to_bytes(20, "big") for i in range(100)]
    d = tracker.scrape(hashes)
    reactor.answer(connect_reply(reactor.last()))
    for expected in (74, 26):
        packet = reactor.last()
        assert (len(packet) - 16) // 20 == expected
        counts = struct.pack("!iii", 1, 1, 1) * expected
        reactor.answer(struct.pack("!iI", 2, action_tid(packet)[1]) + counts)
    assert len(result_of(d)) == 100
    assert_clean(reactor)


@pytest.mark.parametrize("hashes", [[], [b"short"]])
def test_scrape_of_nothing_or_bad_hashes_is_a_bug(hashes: list[bytes]) -> None:
    tracker, _ = make(FakeReactor())
    with pytest.raises(ValueError):
        tracker.scrape(hashes)


# --- retransmission -----------------------------------------------------------------


def test_lost_packets_are_resent_at_base_times_two_to_the_n() -> None:
    reactor = FakeReactor()
    tracker, _ = make(reactor, retry_base=15.0)
    d = tracker.announce(REQUEST)
    first = reactor.last()

    reactor.advance(14.9)
    assert len(reactor.sent()) == 1
    reactor.advance(0.1)  # t = 15: first retransmission, same bytes (same transaction id)
    assert [p for p, _ in reactor.sent()] == [first, first]
    reactor.advance(29.9)
    assert len(reactor.sent()) == 2
    reactor.advance(0.1)  # t = 45 = 15 + 30
    assert len(reactor.sent()) == 3

    reactor.answer(connect_reply(first))
    announce = reactor.last()
    assert action_tid(announce)[0] == 1
    # The count runs over the whole operation: the announce waits 15 * 2**2 s.
    reactor.advance(59.9)
    assert reactor.last() is announce and len(reactor.sent()) == 4
    reactor.answer(announce_reply(announce))
    assert result_of(d).interval == 900
    assert_clean(reactor)


def test_late_answer_to_an_earlier_copy_still_counts() -> None:
    reactor = FakeReactor()
    tracker, _ = make(reactor)
    d = tracker.announce(REQUEST)
    reactor.advance(1.0)
    assert len(reactor.sent()) == 2
    reactor.answer(connect_reply(reactor.sent()[0][0]))
    reactor.answer(announce_reply(reactor.last()))
    assert result_of(d).interval == 900


def test_gives_up_after_max_retries_with_a_clear_error() -> None:
    reactor = FakeReactor()
    tracker, _ = make(reactor, retry_base=1.0, max_retries=2)
    d = tracker.announce(REQUEST)
    reactor.pump([1.0, 2.0])
    assert len(reactor.sent()) == 3
    assert not d.called
    reactor.advance(4.0)

    error = failure_of(d)
    assert str(error) == "udp://127.0.0.1:6969: connect: no answer after 3 tries over 7 s"
    assert len(reactor.sent()) == 3
    assert_clean(reactor)


def test_default_schedule_is_bep15s_nine_tries() -> None:
    reactor = FakeReactor()
    tracker = UDPTracker(URL, reactor, rng=random.Random(2))
    d = tracker.announce(REQUEST)
    reactor.pump([15.0 * 2**n for n in range(9)])
    assert len(reactor.sent()) == 9
    assert "no answer after 9 tries over 7665 s" in str(failure_of(d))
    assert_clean(reactor)


def test_stale_connection_id_during_retransmission_means_connect_again() -> None:
    reactor = FakeReactor()
    tracker, _ = make(reactor, retry_base=20.0, max_retries=8)
    d = tracker.announce(REQUEST)
    reactor.answer(connect_reply(reactor.last()))  # connection id obtained at t = 0
    reactor.pump([20.0, 40.0])  # announce sent at 0, 20; times out at 60
    packets = [p for p, _ in reactor.sent()]
    assert [action_tid(p)[0] for p in packets] == [0, 1, 1, 0]
    reactor.answer(connect_reply(packets[-1], cid=CID + 1))
    assert connection_id(reactor.last()) == CID + 1
    reactor.answer(announce_reply(reactor.last()))
    assert result_of(d).interval == 900


# --- what is ignored, what fails ----------------------------------------------------


def test_stray_datagrams_are_ignored() -> None:
    reactor = FakeReactor()
    tracker, _ = make(reactor)
    d = tracker.announce(REQUEST)
    packet = reactor.last()
    good = connect_reply(packet)
    wrong_tid = struct.pack("!iIQ", 0, (action_tid(packet)[1] + 1) % 2**32, CID)

    reactor.answer(wrong_tid)
    reactor.answer(good, ("127.0.0.2", 6969))
    reactor.answer(good, ("127.0.0.1", 6970))
    reactor.answer(b"\x00\x01")
    reactor.answer(b"")
    assert not d.called and len(reactor.sent()) == 1

    reactor.answer(good)
    reactor.answer(announce_reply(reactor.last()))
    assert result_of(d).interval == 900


def test_error_response_surfaces_the_trackers_message() -> None:
    reactor = FakeReactor()
    tracker, _ = make(reactor)
    d = tracker.announce(REQUEST)
    reactor.answer(connect_reply(reactor.last()))
    reactor.answer(error_reply(reactor.last(), b"torrent not registered"))
    error = failure_of(d)
    assert str(error) == "udp://127.0.0.1:6969: tracker error: torrent not registered"
    assert len(reactor.sent()) == 2  # a fresh connection id: no reconnect
    assert_clean(reactor)


def test_error_response_to_connect_fails() -> None:
    reactor = FakeReactor()
    tracker, _ = make(reactor)
    d = tracker.announce(REQUEST)
    reactor.answer(error_reply(reactor.last(), b"banned"))
    assert "tracker error: banned" in str(failure_of(d))
    assert_clean(reactor)


def test_malformed_answer_fails_the_operation() -> None:
    reactor = FakeReactor()
    tracker, _ = make(reactor)
    d = tracker.announce(REQUEST)
    reactor.answer(connect_reply(reactor.last()))
    reactor.answer(announce_reply(reactor.last(), b"\x01\x02\x03"))
    assert "3 bytes of IPv4 peers" in str(failure_of(d))
    assert_clean(reactor)


def test_send_failure_is_a_tracker_error() -> None:
    reactor = FakeReactor()
    tracker, _ = make(reactor)
    d = tracker.announce(REQUEST)
    reactor.port.fail_writes = OSError(101, "Network is unreachable")
    reactor.advance(1.0)
    assert "cannot send to 127.0.0.1" in str(failure_of(d))
    assert_clean(reactor)


# --- connection ids -----------------------------------------------------------------


def test_connection_id_reused_within_60_s_and_renewed_after() -> None:
    reactor = FakeReactor()
    tracker, _ = make(reactor)
    announce_through(reactor, tracker)
    assert reactor.open_ports() == []

    reactor.advance(59.0)
    d = tracker.announce(REQUEST)
    packet = reactor.last()
    assert action_tid(packet)[0] == 1 and connection_id(packet) == CID
    reactor.answer(announce_reply(packet))
    result_of(d)

    reactor.advance(1.0)  # 60 s after the connect answer
    d = tracker.announce(REQUEST)
    assert action_tid(reactor.last())[0] == 0
    reactor.answer(connect_reply(reactor.last(), cid=CID + 1))
    assert connection_id(reactor.last()) == CID + 1
    reactor.answer(announce_reply(reactor.last()))
    result_of(d)
    assert_clean(reactor)


def test_rejected_cached_connection_id_means_one_reconnect() -> None:
    reactor = FakeReactor()
    tracker, _ = make(reactor)
    announce_through(reactor, tracker)

    d = tracker.announce(REQUEST)
    reactor.answer(error_reply(reactor.last(), b"bad connection id"))
    assert action_tid(reactor.last())[0] == 0  # connecting again
    reactor.answer(connect_reply(reactor.last(), cid=CID + 1))
    assert connection_id(reactor.last()) == CID + 1
    reactor.answer(announce_reply(reactor.last()))
    assert result_of(d).interval == 900


def test_reconnect_happens_only_once() -> None:
    reactor = FakeReactor()
    tracker, _ = make(reactor)
    announce_through(reactor, tracker)

    d = tracker.announce(REQUEST)
    reactor.answer(error_reply(reactor.last(), b"no"))
    reactor.answer(connect_reply(reactor.last(), cid=CID + 1))
    reactor.answer(error_reply(reactor.last(), b"still no"))
    assert "tracker error: still no" in str(failure_of(d))
    assert_clean(reactor)


def test_concurrent_operations_share_one_port_and_demultiplex_by_transaction_id() -> None:
    reactor = FakeReactor()
    tracker, _ = make(reactor)
    first = tracker.announce(REQUEST)
    second = tracker.scrape([b"s" * 20])
    assert len(reactor.ports) == 1
    connect_a, connect_b = (p for p, _ in reactor.sent())
    reactor.answer(connect_reply(connect_b))
    reactor.answer(connect_reply(connect_a))
    scrape, announce = (p for p, _ in reactor.sent()[2:])
    reactor.answer(announce_reply(announce))
    assert result_of(first).interval == 900
    assert reactor.open_ports() == [reactor.port]  # the scrape is still waiting
    reactor.answer(struct.pack("!iIiii", 2, action_tid(scrape)[1], 1, 2, 3))
    assert result_of(second) == {b"s" * 20: ScrapeResult(1, 2, 3)}
    assert_clean(reactor)


# --- names, URLs, cancel, close -----------------------------------------------------


def test_host_name_is_resolved_and_literals_are_not() -> None:
    reactor = FakeReactor()
    names: list[str] = []

    def resolve(name: str) -> defer.Deferred[str]:
        names.append(name)
        return defer.succeed("127.0.0.1")

    tracker, _ = make(reactor, "udp://tracker.example:6969/announce", resolve=resolve)
    announce_through(reactor, tracker)
    assert names == ["tracker.example"]
    assert reactor.sent()[0][1] == TRACKER

    literal, _ = make(reactor, URL, resolve=resolve)
    announce_through(reactor, literal)
    assert names == ["tracker.example"]


def test_unresolvable_name_is_a_tracker_error() -> None:
    reactor = FakeReactor()
    tracker, _ = make(
        reactor,
        "udp://nowhere.example:6969",
        resolve=lambda name: defer.fail(DNSLookupError(name)),
    )
    error = failure_of(tracker.announce(REQUEST))
    assert str(error).startswith("udp://nowhere.example:6969: cannot resolve nowhere.example")
    assert_clean(reactor)


@pytest.mark.parametrize(
    "url",
    [
        "http://tracker.example/announce",
        "udp://tracker.example/announce",
        "udp://tracker.example:0",
        "udp://tracker.example:x",
        "udp://:6969",
        "udp://trackér.example:6969",
    ],
)
def test_invalid_urls_are_refused(url: str) -> None:
    with pytest.raises(TrackerError, match="not a valid udp://host:port tracker URL"):
        UDPTracker(url, FakeReactor(), rng=random.Random())


def test_messages_hide_user_info_path_and_query() -> None:
    reactor = FakeReactor()
    tracker, _ = make(reactor, "udp://user:secret@127.0.0.1:6969/announce?passkey=secret")
    assert tracker.display_url == "udp://127.0.0.1:6969"
    assert "secret" not in repr(tracker)
    with pytest.raises(TrackerError) as caught:
        UDPTracker("udp://user:secret@host/x?passkey=secret", reactor, rng=random.Random())
    assert "secret" not in str(caught.value)


def test_a_hostile_url_from_a_torrent_is_shown_cut_and_escaped() -> None:
    with pytest.raises(TrackerError) as caught:
        UDPTracker("udp://\x1b[31m" + "h" * 100_000, FakeReactor(), rng=random.Random())
    message = str(caught.value)
    assert len(message) < 300 and message.isprintable()
    assert message.startswith("udp://\\x1b[31mhhh")


def test_cancelling_an_announce_cleans_up() -> None:
    reactor = FakeReactor()
    tracker, _ = make(reactor)
    d = tracker.announce(REQUEST)
    d.cancel()
    assert str(failure_of(d)) == "udp://127.0.0.1:6969: announce cancelled"
    assert_clean(reactor)


def test_close_fails_operations_in_flight_and_later_ones() -> None:
    reactor = FakeReactor()
    tracker, _ = make(reactor)
    d = tracker.announce(REQUEST)
    assert tracker.close() is None
    assert "announce cancelled (tracker closed)" in str(failure_of(d))
    assert_clean(reactor)
    assert "after close()" in str(failure_of(tracker.scrape([b"a" * 20])))
    assert len(reactor.ports) == 1  # no port opened for it


# --- real sockets -------------------------------------------------------------------


class Responder(DatagramProtocol):
    """A minimal BEP 15 tracker: answers connects and announces with one peer."""

    def datagramReceived(self, datagram: bytes, addr: Any) -> None:
        action, tid = action_tid(datagram)
        if action == 0:
            self.transport.write(struct.pack("!iIQ", 0, tid, CID), addr)
        elif action == 1:
            peers = encode_compact_peers([("127.0.0.9", 6881)])
            self.transport.write(struct.pack("!iIiii", 1, tid, 600, 1, 1) + peers, addr)


@pytest_twisted.ensureDeferred
async def test_announce_over_loopback() -> None:
    from twisted.internet import reactor

    server = reactor.listenUDP(0, Responder(), interface="127.0.0.1")
    tracker = UDPTracker(
        f"udp://127.0.0.1:{server.getHost().port}",
        reactor,
        rng=random.Random(3),
        retry_base=0.5,
        interface="127.0.0.1",
    )
    try:
        response = await tracker.announce(REQUEST).addTimeout(5, reactor)
        assert response.peers == (("127.0.0.9", 6881),)
    finally:
        closing = tracker.close()
        if closing is not None:
            await closing
        await server.stopListening()
