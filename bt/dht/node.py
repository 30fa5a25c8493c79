"""The DHT node: the one DatagramProtocol around the pure core (BEP 5, BEP 32).

It holds only I/O state (pending transactions and their timers); every rule
lives in the pure modules: the codec (:mod:`bt.dht.krpc`), the routing table,
the lookup state machine, tokens, the peer store and the rate limiter. As a
responder it answers ping, find_node, get_peers and announce_peer; as a
querier it sends queries with a transaction id, a timeout and one retry, and
drives iterative lookups. One node speaks one address family: that of the
address it listens on.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.error import InvalidAddressError
from twisted.internet.protocol import DatagramProtocol

from bt.dht import krpc
from bt.dht.krpc import ErrorCode, ErrorMessage, KrpcError, NodeInfo, Query, Response
from bt.dht.lookup import Lookup, LookupResult
from bt.dht.ratelimit import RateLimiter
from bt.dht.routing import K, RoutingTable
from bt.dht.store import PeerStore
from bt.dht.tokens import Tokens
from bt.errors import DHTError
from bt.logs import Logger

__all__ = ["DHTNode", "DHTQueryError", "DHTTimeout", "NodeCounters"]

Address = tuple[str, int]

#: Seconds to wait for a reply before the one retry, and again after it.
QUERY_TIMEOUT = 5.0
RETRIES = 1
#: Queries in flight at most: a flood of lookups cannot grow memory without bound.
MAX_PENDING = 512
#: Responses whose ``ip`` we count towards our external address, at most.
MAX_VOTES = 200
#: Our client version (BEP 5 ``v``): "BT" and a version number.
VERSION = b"BT\x00\x01"


class DHTTimeout(DHTError):
    """A query got no reply, even after its retry."""


class DHTQueryError(DHTError):
    """A node answered a query with a KRPC error, or we could not send it."""


@dataclass
class NodeCounters:
    """What the node did, for status and metrics."""

    queries_received: int = 0
    queries_sent: int = 0
    dropped: int = 0
    lookups: int = 0
    announces: int = 0


@dataclass
class _Pending:
    address: Address
    datagram: bytes
    node_id: bytes | None
    deferred: Deferred[Response]
    timer: Any
    tries: int = 1


class DHTNode(DatagramProtocol):
    """One DHT node on one UDP port (see the module docstring)."""

    log = Logger()

    def __init__(
        self,
        node_id: bytes,
        reactor: Any,
        rng: random.Random,
        *,
        allow_same_ip: bool = False,
        ipv6: bool = False,
        query_timeout: float = QUERY_TIMEOUT,
        retries: int = RETRIES,
        max_pending: int = MAX_PENDING,
        limiter: RateLimiter | None = None,
    ) -> None:
        self.node_id = node_id
        self.reactor = reactor
        self.rng = rng
        self.ipv6 = ipv6
        self.query_timeout = query_timeout
        self.retries = retries
        self.max_pending = max_pending
        now = reactor.seconds()
        # BEP 42 is enforced for others (local and private addresses are exempt).
        self.table = RoutingTable(node_id, allow_same_ip=allow_same_ip, enforce_node_id=True)
        self.tokens = Tokens(rng.randbytes, now)
        self.store = PeerStore()
        self.limiter = limiter if limiter is not None else RateLimiter()
        self.counters = NodeCounters()
        self.pending: dict[bytes, _Pending] = {}
        #: Called with (host, port) of every node that answered us (tests, PORT pings).
        self.on_node: Callable[[NodeInfo], None] | None = None
        #: Our address as responders saw it (BEP 42 ``ip``): votes, bounded.
        self.seen_as: Counter[str] = Counter()

    # -- the wire ---------------------------------------------------------------

    def datagramReceived(self, datagram: bytes, addr: Any) -> None:
        address = (addr[0], addr[1])
        if len(datagram) > krpc.MAX_DATAGRAM:
            self.counters.dropped += 1
            return
        try:
            message = krpc.parse(datagram)
        except KrpcError as exc:
            self.counters.dropped += 1
            if exc.answerable and self._allowed(address):
                assert exc.tid is not None
                self._send(ErrorMessage(exc.tid, int(exc.code), str(exc)), address)
            return
        if isinstance(message, Query):
            if self._allowed(address):
                self.counters.queries_received += 1
                self._answer(message, address)
            else:
                self.counters.dropped += 1
        else:
            self._resolve(message, address)

    def _allowed(self, address: Address) -> bool:
        return self.limiter.allow(address[0], self.reactor.seconds())

    def _send(self, message: krpc.Message, address: Address) -> bool:
        return self._write(krpc.encode(message), address)

    # -- responder --------------------------------------------------------------

    def _answer(self, query: Query, address: Address) -> None:
        now = self.reactor.seconds()
        host = address[0]
        if not query.read_only:
            self.table.add(NodeInfo(query.sender, host, address[1]), now)
        reply: krpc.Message
        if query.method == "ping":
            reply = Response(query.tid, self.node_id, ip=address)
        elif query.method == "find_node":
            assert query.target is not None
            reply = self._with_nodes(query, address, query.target)
        elif query.method == "get_peers":
            assert query.info_hash is not None
            values = self.store.get(query.info_hash, now, self.rng, ipv6=self.ipv6)
            token = self.tokens.issue(host, now)
            if values:
                reply = Response(
                    query.tid, self.node_id, values=tuple(values), token=token, ip=address
                )
            else:
                base = self._with_nodes(query, address, query.info_hash)
                reply = Response(
                    query.tid, self.node_id, base.nodes, base.nodes6, token=token, ip=address
                )
        elif query.method == "announce_peer":
            reply = self._announced(query, address, now)
        else:  # the codec refuses unknown methods; kept for a codec that lets one through
            reply = ErrorMessage(query.tid, int(ErrorCode.METHOD_UNKNOWN), "Method Unknown")
        self._send(reply, address)

    def _with_nodes(self, query: Query, address: Address, target: bytes) -> Response:
        # Only nodes that answered us: a forged query must not plant an address in replies.
        closest = tuple(self.table.closest(target, K, verified_only=True))
        if self.ipv6:
            return Response(query.tid, self.node_id, nodes6=closest, ip=address)
        return Response(query.tid, self.node_id, nodes=closest, ip=address)

    def _announced(self, query: Query, address: Address, now: float) -> krpc.Message:
        assert query.info_hash is not None
        if query.token is None or not self.tokens.check(query.token, address[0], now):
            return ErrorMessage(query.tid, int(ErrorCode.PROTOCOL), "bad token")
        port = address[1] if query.implied_port else query.port
        if port is None or not 0 < port < 65536:
            return ErrorMessage(query.tid, int(ErrorCode.PROTOCOL), "bad port")
        self.store.add(query.info_hash, (address[0], port), now)
        return Response(query.tid, self.node_id, ip=address)

    # -- querier ----------------------------------------------------------------

    def query(
        self, address: Address, method: str, node_id: bytes | None = None, **arguments: Any
    ) -> Deferred[Response]:
        """Send one query; fires with the Response, or fails with a DHTError.

        It never fires before returning: a lookup whose queries all fail at once
        (no route, too many in flight) then steps through its candidates one
        reactor turn at a time instead of recursing through them.
        """
        if len(self.pending) >= self.max_pending:
            return self._fail_soon(Deferred(), DHTQueryError("too many queries in flight"))
        tid = self._new_tid()
        message = Query(tid, method, self.node_id, version=VERSION, **arguments)
        datagram = krpc.encode(message)
        deferred: Deferred[Response] = Deferred()
        timer = self.reactor.callLater(self.query_timeout, self._timed_out, tid)
        self.pending[tid] = _Pending(address, datagram, node_id, deferred, timer)
        self.counters.queries_sent += 1
        if not self._write(datagram, address):
            self._fail_soon(self._finish(tid), DHTQueryError(f"cannot send to {address}"))
        return deferred

    def _fail_soon(self, deferred: Deferred[Response], error: DHTError) -> Deferred[Response]:
        self.reactor.callLater(0, deferred.errback, error)
        return deferred

    def ping(self, address: Address) -> Deferred[Response]:
        return self.query(address, "ping")

    def find_node(
        self, address: Address, target: bytes, node_id: bytes | None = None
    ) -> Deferred[Response]:
        return self.query(address, "find_node", node_id, target=target)

    def get_peers(
        self, address: Address, info_hash: bytes, node_id: bytes | None = None
    ) -> Deferred[Response]:
        return self.query(address, "get_peers", node_id, info_hash=info_hash)

    def announce_peer(
        self,
        address: Address,
        info_hash: bytes,
        port: int,
        token: bytes,
        node_id: bytes | None = None,
    ) -> Deferred[Response]:
        return self.query(
            address, "announce_peer", node_id, info_hash=info_hash, port=port, token=token
        )

    def _write(self, datagram: bytes, address: Address) -> bool:
        if self.transport is None:
            return False
        try:
            self.transport.write(datagram, address)
        except (OSError, InvalidAddressError) as exc:  # no route; an IPv4 address on IPv6...
            self.log.debug("DHT: cannot send to {address}: {error}", address=address, error=exc)
            return False
        return True

    def _new_tid(self) -> bytes:
        while True:
            tid = self.rng.randbytes(2)
            if tid not in self.pending:
                return tid

    def _finish(self, tid: bytes) -> Deferred[Response]:
        pending = self.pending.pop(tid)
        if pending.timer.active():
            pending.timer.cancel()
        return pending.deferred

    def _timed_out(self, tid: bytes) -> None:
        pending = self.pending[tid]
        if pending.tries <= self.retries:
            pending.tries += 1
            pending.timer = self.reactor.callLater(self.query_timeout, self._timed_out, tid)
            self._write(pending.datagram, pending.address)
            return
        del self.pending[tid]
        if pending.node_id is not None:
            self.table.failed(pending.node_id, self.reactor.seconds())
        pending.deferred.errback(DHTTimeout(f"no reply from {pending.address}"))

    def _resolve(self, message: Response | ErrorMessage, address: Address) -> None:
        pending = self.pending.get(message.tid)
        if pending is None or pending.address != address:
            self.counters.dropped += 1  # late, spoofed or unasked for
            return
        deferred = self._finish(message.tid)
        if isinstance(message, ErrorMessage):
            deferred.errback(DHTQueryError(f"error {message.code}: {message.message}"))
            return
        info = NodeInfo(message.sender, address[0], address[1])
        self.table.add(info, self.reactor.seconds(), replied=True)
        if message.ip is not None and sum(self.seen_as.values()) < MAX_VOTES:
            self.seen_as[message.ip[0]] += 1
        if self.on_node is not None:
            self.on_node(info)
        deferred.callback(message)

    @property
    def external_ip(self) -> str | None:
        """Our address as most responders saw it; None before any said."""
        voted = self.seen_as.most_common(1)
        return voted[0][0] if voted else None

    def stop(self) -> None:
        """Fail every query in flight (the node is going away)."""
        for tid in list(self.pending):
            self._finish(tid).errback(DHTTimeout("the DHT node stopped"))

    # -- lookups ----------------------------------------------------------------

    def lookup(
        self, target: bytes, *, get_peers: bool = False, seeds: Iterable[NodeInfo] = ()
    ) -> Deferred[LookupResult]:
        """An iterative find_node (or get_peers) for ``target``; fires with its result."""
        self.counters.lookups += 1
        seed_list = list(self.table.closest(target, K)) + list(seeds)
        machine = Lookup(target, seed_list, self.reactor.seconds())
        finished: Deferred[LookupResult] = Deferred()

        def send(nodes: list[NodeInfo]) -> None:
            if finished.called:
                return
            for node in nodes:
                if get_peers:
                    asked = self.get_peers(node.address, target, node.id)
                else:
                    asked = self.find_node(node.address, target, node.id)
                asked.addCallbacks(replied, failed, callbackArgs=(node,), errbackArgs=(node,))
            if machine.check(self.reactor.seconds()) and not finished.called:
                self.table.touch(target, self.reactor.seconds())
                finished.callback(machine.result())

        def replied(response: Response, node: NodeInfo) -> None:
            nodes = response.nodes6 if self.ipv6 else response.nodes
            send(
                machine.on_response(
                    node,
                    nodes,
                    self.reactor.seconds(),
                    values=response.values,
                    token=response.token,
                )
            )

        def failed(failure: Any, node: NodeInfo) -> None:
            failure.trap(DHTError)
            send(machine.on_timeout(node, self.reactor.seconds()))

        send(machine.start())
        return finished

    def announce(self, info_hash: bytes, port: int) -> Deferred[LookupResult]:
        """get_peers for ``info_hash``, then announce_peer to the closest nodes that gave tokens.

        Fires with the lookup's result (its ``peers`` are the ones found) once
        the announces are sent; their replies are not waited for.
        """
        looked = self.lookup(info_hash, get_peers=True)

        def announce_to(result: LookupResult) -> LookupResult:
            for node, token in result.closest:
                if token is not None:
                    self.counters.announces += 1
                    sent = self.announce_peer(node.address, info_hash, port, token, node.id)
                    sent.addErrback(lambda f: f.trap(DHTError))
            return result

        return looked.addCallback(announce_to)
