"""GET /api/v1/torrents/{info_hash}/peers and /trackers: what the web page's tabs show."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest_twisted

from bt.status import MagnetState
from control import AUTH, FakeSession, make_status, stub_client

HASH = "ab" * 20


def link(host: str, port: int, peer_id: bytes | None, **flags: Any) -> SimpleNamespace:
    connection = SimpleNamespace(
        am_choking=flags.get("am_choking", False),
        am_interested=flags.get("am_interested", True),
        peer_choking=flags.get("peer_choking", False),
        peer_interested=flags.get("peer_interested", False),
    )
    bitfield = SimpleNamespace(count=lambda: flags.get("have", 2))
    return SimpleNamespace(
        address=(host, port),
        protocol=SimpleNamespace(connection=connection, peer_id=peer_id),
        outgoing=flags.get("outgoing", True),
        bitfield=bitfield,
        download_meter=SimpleNamespace(rate=1500.0),
        upload_meter=SimpleNamespace(rate=20.0),
    )


def announcer(url: str, last: float | None, failures: int, errors: int) -> SimpleNamespace:
    return SimpleNamespace(
        tracker=SimpleNamespace(display_url=url),
        last_announce=last,
        failures=failures,
        errors=errors,
    )


class PeerSession(FakeSession):
    """The fake session with one live torrent of 4 pieces."""

    def __init__(self) -> None:
        super().__init__()
        self.torrents[bytes.fromhex(HASH)] = make_status(HASH)
        self.live = SimpleNamespace(
            metainfo=SimpleNamespace(num_pieces=4),
            links=[
                link("127.0.0.1", 6881, b"-lt2010-\x1b[31mxxxxxx"),
                link("::1", 7000, None, outgoing=False, have=4, am_choking=True),
            ],
            announcers=[
                announcer("http://t.example/announce", 90.0, 0, 1),
                announcer("udp://u.example:80", None, 3, 3),
            ],
            reactor=SimpleNamespace(seconds=lambda: 100.0),
        )

    def get(self, info_hash: bytes) -> Any:
        self.calls.append(("get", info_hash.hex()))
        return self.live


@pytest_twisted.ensureDeferred
async def test_the_peers_of_a_torrent() -> None:
    client = stub_client(PeerSession())
    response = await client.get(f"http://localhost/api/v1/torrents/{HASH}/peers", headers=AUTH)
    assert response.code == 200
    first, second = (await response.json())["peers"]
    assert first == {
        "address": "127.0.0.1:6881",
        "client": "-lt2010-",
        "outgoing": True,
        "progress": 0.5,
        "download_rate": 1500.0,
        "upload_rate": 20.0,
        "am_choking": False,
        "am_interested": True,
        "peer_choking": False,
        "peer_interested": False,
    }
    assert second["address"] == "[::1]:7000"
    assert second["client"] == "" and second["progress"] == 1.0 and not second["outgoing"]


@pytest_twisted.ensureDeferred
async def test_a_peer_ids_control_characters_are_escaped() -> None:
    session = PeerSession()
    session.live.links = [link("127.0.0.1", 1, b"\x1b[31m\x00abcdefghijklmnop")]
    client = stub_client(session)
    response = await client.get(f"http://localhost/api/v1/torrents/{HASH}/peers", headers=AUTH)
    [peer] = (await response.json())["peers"]
    assert "\x1b" not in peer["client"] and "\x00" not in peer["client"]


@pytest_twisted.ensureDeferred
async def test_the_trackers_of_a_torrent() -> None:
    client = stub_client(PeerSession())
    response = await client.get(f"http://localhost/api/v1/torrents/{HASH}/trackers", headers=AUTH)
    assert response.code == 200
    assert (await response.json())["trackers"] == [
        {"url": "http://t.example/announce", "errors": 1, "failures": 0, "last_announce_ago": 10.0},
        {"url": "udp://u.example:80", "errors": 3, "failures": 3, "last_announce_ago": None},
    ]


@pytest_twisted.ensureDeferred
async def test_a_magnet_fetching_metadata_has_no_peers_or_trackers_yet() -> None:
    session = PeerSession()
    session.torrents[bytes.fromhex(HASH)] = make_status(HASH, state=MagnetState.FETCHING_METADATA)
    client = stub_client(session)
    for kind in ("peers", "trackers"):
        url = f"http://localhost/api/v1/torrents/{HASH}/{kind}"
        response = await client.get(url, headers=AUTH)
        assert response.code == 200
        assert (await response.json()) == {kind: []}
    assert not [call for call in session.calls if call[0] == "get"]


@pytest_twisted.ensureDeferred
async def test_an_unknown_torrent_is_404() -> None:
    client = stub_client(PeerSession())
    for kind in ("peers", "trackers"):
        url = f"http://localhost/api/v1/torrents/{'cd' * 20}/{kind}"
        response = await client.get(url, headers=AUTH)
        assert response.code == 404
