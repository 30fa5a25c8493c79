"""Prometheus metrics read from the session's status snapshots at scrape time.

The engine keeps no per-event counters for Prometheus: every value already
lives in :class:`~bt.status.TorrentStatus` and :class:`~bt.status.SessionStatus`,
so a collector that turns one snapshot into metric families is all it takes,
and a scrape always shows one consistent moment.

The registry is our own, not prometheus_client's global one, so several
sessions in one process (tests, embedders) never mix their metrics. Output is
rendered in the reactor thread: ``prometheus_client.twisted.MetricsResource``
would collect in a worker thread, reading the session from outside the reactor.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    InfoMetricFamily,
    Metric,
)

from bt.status import MagnetState, SessionStatus, TorrentState, TorrentStatus

__all__ = ["CONTENT_TYPE", "SessionCollector", "make_registry", "render_metrics"]

#: The Prometheus text exposition format's content type.
CONTENT_TYPE = CONTENT_TYPE_LATEST

_LABELS = ["info_hash", "name"]


class StatusSource(Protocol):
    """The part of the session the collector reads."""

    def status(self) -> SessionStatus: ...

    def torrent_statuses(self) -> list[TorrentStatus]: ...


#: Per-torrent families: (name, help, kind, the TorrentStatus field it reads).
TORRENT_METRICS: tuple[tuple[str, str, str, str], ...] = (
    ("bt_downloaded_bytes", "Payload bytes downloaded over the torrent's life.", "counter",
     "downloaded"),
    ("bt_uploaded_bytes", "Payload bytes uploaded over the torrent's life.", "counter", "uploaded"),
    ("bt_download_rate_bytes", "Payload download rate in bytes/s, smoothed.", "gauge",
     "download_rate"),
    ("bt_upload_rate_bytes", "Payload upload rate in bytes/s, smoothed.", "gauge", "upload_rate"),
    ("bt_peers", "Connected peers.", "gauge", "peers"),
    ("bt_seeds", "Connected peers that have every piece.", "gauge", "seeds"),
    ("bt_pieces", "Pieces in the torrent.", "gauge", "pieces"),
    ("bt_pieces_have", "Pieces verified and written.", "gauge", "pieces_have"),
    ("bt_size_bytes", "Total size of the torrent's files.", "gauge", "size"),
    ("bt_wanted_bytes", "Bytes of the files not skipped.", "gauge", "wanted"),
    ("bt_done_bytes", "Verified bytes of the wanted files.", "gauge", "done"),
    ("bt_progress_ratio", "Verified share of the wanted bytes, 0 to 1.", "gauge", "progress"),
    ("bt_hash_failures", "Pieces that failed their hash check.", "counter", "hash_failures"),
    ("bt_tracker_errors", "Failed tracker announces.", "counter", "tracker_errors"),
    ("bt_dht_peers", "Peers the DHT found for the torrent.", "counter", "dht_peers"),
)  # fmt: skip

#: Session-wide families; ``bt_session_`` so that sum() over torrents never double counts.
SESSION_METRICS: tuple[tuple[str, str, str, str], ...] = (
    ("bt_torrents", "Torrents in the session.", "gauge", "torrents"),
    ("bt_session_peers", "Connected peers of all torrents.", "gauge", "peers"),
    ("bt_session_downloaded_bytes", "Payload bytes downloaded by this process.", "counter",
     "downloaded"),
    ("bt_session_uploaded_bytes", "Payload bytes uploaded by this process.", "counter",
     "uploaded"),
    ("bt_session_download_rate_bytes", "Download rate of all torrents in bytes/s.", "gauge",
     "download_rate"),
    ("bt_session_upload_rate_bytes", "Upload rate of all torrents in bytes/s.", "gauge",
     "upload_rate"),
    ("bt_dht_nodes", "Nodes in the DHT routing table (0: no DHT).", "gauge", "dht_nodes"),
    ("bt_dht_lookups", "DHT lookups started.", "counter", "dht_lookups"),
    ("bt_dht_announces", "DHT announce_peer queries sent.", "counter", "dht_announces"),
)  # fmt: skip


class SessionCollector:
    """A prometheus_client collector over one session's snapshots."""

    def __init__(self, session: StatusSource) -> None:
        self._session = session

    def describe(self) -> list[Metric]:
        """Nothing up front: registering must not read the session (it may not run yet)."""
        return []

    def collect(self) -> Iterator[Metric]:
        session = self._session.status()
        torrents = self._session.torrent_statuses()
        yield from self._session_families(session)
        yield from self._torrent_families(torrents)

    def _session_families(self, session: SessionStatus) -> Iterator[Metric]:
        info = InfoMetricFamily("bt_build", "Version of bt serving these metrics.")
        info.add_metric([], {"version": session.version})
        yield info
        for name, text, kind, field in SESSION_METRICS:
            family = _family(name, text, kind, [])
            family.add_metric([], float(getattr(session, field) or 0))
            yield family
        for direction in ("upload", "download"):
            family = GaugeMetricFamily(
                f"bt_{direction}_limit_bytes", f"Global {direction} limit in bytes/s; 0: none."
            )
            family.add_metric([], float(getattr(session, f"{direction}_limit") or 0))
            yield family

    def _torrent_families(self, torrents: list[TorrentStatus]) -> Iterator[Metric]:
        for name, text, kind, field in TORRENT_METRICS:
            family = _family(name, text, kind, _LABELS)
            for torrent in torrents:
                family.add_metric([torrent.info_hash, torrent.name], float(getattr(torrent, field)))
            yield family
        state = GaugeMetricFamily(
            "bt_torrent_state", "1 for the state the torrent is in, 0 for the others.",
            labels=[*_LABELS, "state"],
        )  # fmt: skip
        for torrent in torrents:
            for value in (*TorrentState, *MagnetState):  # a magnet: "fetching metadata"
                state.add_metric(
                    [torrent.info_hash, torrent.name, str(value)],
                    1.0 if torrent.state == value else 0.0,
                )
        yield state


def _family(name: str, text: str, kind: str, labels: list[str]) -> Any:
    if kind == "counter":
        return CounterMetricFamily(name, text, labels=labels)
    return GaugeMetricFamily(name, text, labels=labels)


def make_registry(session: StatusSource) -> CollectorRegistry:
    """A registry of its own holding only this session's collector."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SessionCollector(session))
    return registry


def render_metrics(registry: CollectorRegistry) -> bytes:
    """The text exposition of ``registry``, collected now."""
    return generate_latest(registry)
