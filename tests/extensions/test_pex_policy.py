"""BEP 11 per-peer rules: the diff we send, and the flood gate on what we receive."""

from __future__ import annotations

from bt.extensions.pex_messages import PexFlags, PexMessage
from bt.extensions.pex_policy import MAX_PEERS_FROM_ONE, PexInbox, PexOutbox

ME = ("127.0.0.1", 1)
A, B, C = ("127.0.0.1", 2), ("127.0.0.1", 3), ("::1", 4)


def test_the_outbox_sends_changes_only_and_never_an_empty_message():
    outbox = PexOutbox()
    first = outbox.next_message({ME: PexFlags.NONE, A: PexFlags.SEED, B: PexFlags.NONE}, ME)
    assert first == PexMessage(added=((A, PexFlags.SEED), (B, PexFlags.NONE)))
    assert outbox.next_message({ME: PexFlags.NONE, A: PexFlags.SEED, B: PexFlags.NONE}, ME) is None
    later = outbox.next_message({A: PexFlags.SEED, C: PexFlags.REACHABLE}, ME)
    assert later == PexMessage(added=((C, PexFlags.REACHABLE),), dropped=(B,))


def test_the_outbox_is_bounded_and_sends_the_rest_next_time():
    outbox = PexOutbox(limit=2)
    swarm = {("10.0.0.1", port): PexFlags.NONE for port in range(1, 6)}
    sizes = []
    while (message := outbox.next_message(swarm, ME)) is not None:
        sizes.append(len(message.added))
    assert sizes == [2, 2, 1]


def test_the_inbox_drops_messages_that_come_too_often():
    inbox = PexInbox()
    message = PexMessage(added=((A, PexFlags.NONE),))
    assert inbox.accept(message, now=0) == [(A, PexFlags.NONE)]
    assert inbox.accept(message, now=10) == []
    assert inbox.accept(message, now=60) == [(A, PexFlags.NONE)]


def test_one_peer_cannot_hand_us_more_than_its_share():
    inbox = PexInbox()
    batch = PexMessage(added=tuple((("10.0.0.1", port), PexFlags.NONE) for port in range(1, 101)))
    taken = sum(len(inbox.accept(batch, now=60.0 * minute)) for minute in range(10))
    assert taken == MAX_PEERS_FROM_ONE
