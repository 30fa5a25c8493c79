"""Prometheus metrics are read from the session's snapshots at scrape time."""

from __future__ import annotations

from typing import Any

import pytest_twisted
from prometheus_client import REGISTRY, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from bt.control.metrics import make_registry, render_metrics
from bt.status import MagnetState, TorrentState
from control import AUTH, FakeSession, make_status, stub_client

A = "ab" * 20
B = "cd" * 20


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def two_torrents() -> FakeSession:
    session = FakeSession()
    session.torrents[bytes.fromhex(A)] = make_status(A, "alpha")
    session.torrents[bytes.fromhex(B)] = make_status(
        B, 'b"e\\ta\nname', state=TorrentState.SEEDING, downloaded=40_000, peers=7, progress=1.0
    )
    session.limits["upload"] = 1024.0
    return session


def test_values_come_from_the_snapshots() -> None:
    session = two_torrents()
    found = samples(render_metrics(make_registry(session)).decode())
    alpha = (("info_hash", A), ("name", "alpha"))
    beta = (("info_hash", B), ("name", 'b"e\\ta\nname'))
    assert found[("bt_downloaded_bytes_total", alpha)] == 20_000
    assert found[("bt_downloaded_bytes_total", beta)] == 40_000
    assert found[("bt_uploaded_bytes_total", alpha)] == 5_000
    assert found[("bt_download_rate_bytes", alpha)] == 1500.0
    assert found[("bt_upload_rate_bytes", alpha)] == 250.0
    assert found[("bt_peers", beta)] == 7
    assert found[("bt_seeds", alpha)] == 1
    assert found[("bt_pieces", alpha)] == 3
    assert found[("bt_pieces_have", alpha)] == 1
    assert found[("bt_hash_failures_total", alpha)] == 2
    assert found[("bt_tracker_errors_total", alpha)] == 3
    assert found[("bt_progress_ratio", beta)] == 1.0
    assert found[("bt_torrents", ())] == 2
    assert found[("bt_session_peers", ())] == 11
    assert found[("bt_session_downloaded_bytes_total", ())] == 123_456
    assert found[("bt_session_uploaded_bytes_total", ())] == 7_890
    assert found[("bt_session_download_rate_bytes", ())] == 3000.0
    assert found[("bt_upload_limit_bytes", ())] == 1024.0
    assert found[("bt_download_limit_bytes", ())] == 0.0
    assert found[("bt_build_info", (("version", "0.1.0"),))] == 1.0


MAGNET = "cc" * 20


def test_state_is_one_hot() -> None:
    session = two_torrents()
    session.torrents[bytes.fromhex(MAGNET)] = make_status(
        MAGNET, "a magnet", state=MagnetState.FETCHING_METADATA
    )
    found = samples(render_metrics(make_registry(session)).decode())
    for info_hash, state in ((A, "downloading"), (B, "seeding"), (MAGNET, "fetching metadata")):
        values = {
            dict(labels)["state"]: value
            for (name, labels), value in found.items()
            if name == "bt_torrent_state" and dict(labels)["info_hash"] == info_hash
        }
        assert set(values) == {s.value for s in (*TorrentState, *MagnetState)}
        assert [s for s, v in values.items() if v == 1.0] == [state]
        assert sum(values.values()) == 1.0


def test_the_value_is_read_at_each_scrape() -> None:
    session = two_torrents()
    registry = make_registry(session)
    render_metrics(registry)
    session.torrents.pop(bytes.fromhex(B))
    found = samples(render_metrics(registry).decode())
    assert found[("bt_torrents", ())] == 1
    assert not any(dict(labels).get("info_hash") == B for _, labels in found)


def test_registering_reads_nothing_and_the_global_registry_stays_clean() -> None:
    session = FakeSession()
    session.fail["status"] = AssertionError("read at registration")
    make_registry(session)
    assert b"bt_torrents" not in generate_latest(REGISTRY)


@pytest_twisted.ensureDeferred
async def test_served_at_metrics_as_prometheus_text() -> None:
    response = await stub_client(two_torrents()).get("http://localhost/metrics", headers=AUTH)
    assert response.code == 200
    [content_type] = response.headers.getRawHeaders("content-type")
    assert content_type.startswith("text/plain")
    text = (await response.content()).decode()
    assert samples(text)[("bt_torrents", ())] == 2


def test_an_empty_session_still_exposes_the_session_metrics() -> None:
    found: dict[Any, float] = samples(render_metrics(make_registry(FakeSession())).decode())
    assert found[("bt_torrents", ())] == 0


def test_the_dht_is_in_the_metrics() -> None:
    session = two_torrents()
    session.dht = {"dht_nodes": 42, "dht_lookups": 7, "dht_announces": 3}
    session.torrents[bytes.fromhex(A)] = make_status(A, "alpha", dht_peers=5)
    found = samples(render_metrics(make_registry(session)).decode())
    assert found[("bt_dht_nodes", ())] == 42
    assert found[("bt_dht_lookups_total", ())] == 7
    assert found[("bt_dht_announces_total", ())] == 3
    assert found[("bt_dht_peers_total", (("info_hash", A), ("name", "alpha")))] == 5


def test_without_a_dht_its_metrics_are_zero() -> None:
    found = samples(render_metrics(make_registry(two_torrents())).decode())
    assert found[("bt_dht_nodes", ())] == 0
