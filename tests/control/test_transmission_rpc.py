"""The Transmission RPC against a fake session: the dispatcher, ids, fields, and methods."""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from twisted.internet import defer
from twisted.internet.task import Clock

from bt.control.transmission.live import Details, PeerDetails, TrackerDetails
from bt.control.transmission.rpc import Rpc
from bt.control.transmission.torrentfields import FIELDS
from bt.errors import MoveError
from bt.metainfo import parse_metainfo
from bt.session import SessionConfig
from bt.status import FilePriority, FileStatus, MagnetState, TorrentState
from bt.torrentconfig import TorrentConfig
from control import FakeSession, make_status, torrent_bytes

HASH_A = "aa" * 20
HASH_B = "bb" * 20


class Session(FakeSession):
    """The control API's fake, with a real config and add_torrent's file priorities."""

    def __init__(self) -> None:
        super().__init__()
        self.config = SessionConfig(
            download_dir=Path("/data"),
            state_dir=Path("/state"),
            torrent=TorrentConfig(seed_ratio=2.0, max_peers=40),
        )

    def add_torrent(self, metainfo: Any, **options: Any) -> Any:
        priorities = options.pop("file_priorities", None)
        added = super().add_torrent(metainfo, **options)
        if priorities is not None:
            self.calls.append(("file_priorities", list(priorities)))
        return added


class Live:
    """Details as the live session would give them; records reannounces and preferences."""

    def __init__(self) -> None:
        self.reannounced: list[bytes] = []
        self.prefs: dict[bytes, dict[str, Any]] = {}
        self.session_prefs: list[dict[str, Any]] = []
        self.peers: tuple[PeerDetails, ...] = ()

    def details(self, info_hash: bytes, *, peers: bool = False, pieces: bool = False) -> Details:
        return Details(
            added=1_700_000_000.5,
            trackers=(TrackerDetails("http://t.example:6969/announce", 0, errors=1),),
            peers=self.peers if peers else (),
            seed_ratio=self.prefs.get(info_hash, {}).get("own_ratio"),
            ratio_mode=self.prefs.get(info_hash, {}).get("ratio_mode", 0),
            labels=tuple(self.prefs.get(info_hash, {}).get("labels", ())),
            magnet=f"magnet:?xt=urn:btih:{info_hash.hex()}",
        )

    def reannounce(self, info_hash: bytes) -> None:
        self.reannounced.append(info_hash)

    def set_prefs(self, info_hash: bytes, **changes: Any) -> None:
        self.prefs.setdefault(info_hash, {}).update(changes)

    def set_session_prefs(self, **changes: Any) -> defer.Deferred[None]:
        if str(changes.get("download_dir", "/")).startswith("/nowhere"):
            return defer.fail(ValueError("download-dir: '/nowhere' is not writable"))
        self.session_prefs.append(changes)
        return defer.succeed(None)


def two_files() -> tuple[FileStatus, ...]:
    return (
        FileStatus(0, "example/a", 30_000, FilePriority.NORMAL, 16_384),
        FileStatus(1, "example/b", 10_000, FilePriority.SKIP, 0),
    )


@pytest.fixture
def session() -> Session:
    fake = Session()
    fake.torrents[bytes.fromhex(HASH_A)] = make_status(HASH_A, "alpha", files=two_files())
    fake.torrents[bytes.fromhex(HASH_B)] = make_status(
        HASH_B, "beta", state=TorrentState.SEEDING, done=40_000, progress=1.0, eta=None
    )
    return fake


@pytest.fixture
def clock() -> Clock:
    clock = Clock()
    clock.advance(1_700_000_100)
    return clock


@pytest.fixture
def live() -> Live:
    return Live()


@pytest.fixture
def rpc(session: Session, clock: Clock, live: Live, tmp_path: Path) -> Rpc:
    closed: list[bool] = []
    rpc = Rpc(
        session,
        clock=clock,
        live=live,
        run_blocking=defer.maybeDeferred,
        close=lambda: closed.append(True),
    )
    rpc.closed = closed  # type: ignore[attr-defined]
    return rpc


def call(rpc: Rpc, method: str, arguments: Any = None, tag: Any = 7) -> dict[str, Any]:
    request: dict[str, Any] = {"method": method, "tag": tag}
    if arguments is not None:
        request["arguments"] = arguments
    results: list[Any] = []
    rpc.dispatcher.handle(json.dumps(request).encode()).addBoth(results.append)
    assert results, f"{method} did not answer at once"
    reply = results[0]
    assert isinstance(reply, dict), reply
    assert json.loads(json.dumps(reply)) == reply  # plain JSON
    return reply


def ok(rpc: Rpc, method: str, arguments: Any = None) -> dict[str, Any]:
    reply = call(rpc, method, arguments)
    assert reply["result"] == "success", reply
    assert reply["tag"] == 7
    return reply["arguments"]


def failed(rpc: Rpc, method: str, arguments: Any, *fragments: str) -> str:
    reply = call(rpc, method, arguments)
    assert reply["result"] != "success"
    assert reply["tag"] == 7 and isinstance(reply["arguments"], dict)
    for fragment in fragments:
        assert fragment in reply["result"]
    return str(reply["result"])


# -- the dispatcher --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{nope", "request is not valid JSON"),
        (b"[1]", "request must be a JSON object"),
        (b'{"arguments": {}}', "no method name"),
        (b'{"method": "torrent-explode"}', "method name not recognized"),
        (b'{"method": "torrent-get", "arguments": [1]}', "arguments must be a JSON object"),
    ],
)
def test_bad_requests_get_transmissions_error_shape(rpc: Rpc, body: bytes, message: str) -> None:
    results: list[Any] = []
    rpc.dispatcher.handle(body).addBoth(results.append)
    assert results == [{"result": message, "arguments": {}}]


def test_the_tag_is_echoed_and_a_non_integer_tag_is_dropped(rpc: Rpc) -> None:
    assert call(rpc, "session-stats", tag=12)["tag"] == 12
    assert "tag" not in call(rpc, "session-stats", tag="x")


def test_a_bug_is_a_result_naming_the_method_not_a_traceback(rpc: Rpc, session: Session) -> None:
    session.fail["status"] = ZeroDivisionError("boom")
    message = failed(rpc, "session-stats", {}, "internal error in session-stats")
    assert "Traceback" not in message and "boom" not in message


# -- ids ---------------------------------------------------------------------------------


def test_ids_are_stable_and_hash_strings_work_wherever_ids_do(rpc: Rpc, session: Session) -> None:
    got = ok(rpc, "torrent-get", {"fields": ["id", "hashString"]})["torrents"]
    assert got == [{"id": 1, "hashString": HASH_A}, {"id": 2, "hashString": HASH_B}]
    by_hash = ok(rpc, "torrent-get", {"ids": [HASH_B.upper()], "fields": ["id"]})
    assert by_hash["torrents"] == [{"id": 2}]
    assert ok(rpc, "torrent-get", {"ids": 1, "fields": ["name"]})["torrents"] == [{"name": "alpha"}]
    ok(rpc, "torrent-remove", {"ids": [1]})
    session.add_torrent(parse_metainfo(torrent_bytes("gamma")))
    got = ok(rpc, "torrent-get", {"fields": ["id", "name"]})["torrents"]
    assert got == [{"id": 2, "name": "beta"}, {"id": 3, "name": "gamma"}]  # 1 never reused
    assert ok(rpc, "torrent-get", {"ids": [1, 99], "fields": ["id"]})["torrents"] == []


def test_bad_ids_are_the_clients_error(rpc: Rpc) -> None:
    failed(rpc, "torrent-get", {"ids": [True], "fields": ["id"]}, "ids")
    failed(rpc, "torrent-stop", {"ids": "not-a-hash"}, "ids", "hashString")


def test_recently_active_lists_what_changed_and_what_was_removed(
    rpc: Rpc, session: Session, clock: Clock
) -> None:
    first = ok(rpc, "torrent-get", {"ids": "recently-active", "fields": ["id"]})
    assert first == {"torrents": [{"id": 1}, {"id": 2}], "removed": []}
    ok(rpc, "torrent-remove", {"ids": [2]})
    for info_hash, status in session.torrents.items():  # nothing moves any more
        session.torrents[info_hash] = replace(status, download_rate=0.0, upload_rate=0.0)
    clock.advance(61)
    quiet = ok(rpc, "torrent-get", {"ids": "recently-active", "fields": ["id"]})
    assert quiet == {"torrents": [], "removed": []}
    ok(rpc, "torrent-remove", {"ids": [1]})
    assert ok(rpc, "torrent-get", {"ids": "recently-active", "fields": ["id"]})["removed"] == [1]


# -- torrent-get -------------------------------------------------------------------------

INTEGER_FIELDS = [
    "id", "status", "totalSize", "sizeWhenDone", "leftUntilDone", "rateDownload",
    "rateUpload", "uploadedEver", "downloadedEver", "eta", "peersConnected",
    "peersSendingToUs", "peersGettingFromUs", "error", "addedDate", "doneDate",
    "pieceCount", "pieceSize", "haveValid", "corruptEver", "downloadLimit", "uploadLimit",
    "queuePosition", "activityDate", "startDate",
]  # fmt: skip


def test_sizes_rates_dates_and_codes_are_integers_as_in_transmission(rpc: Rpc) -> None:
    torrents = ok(rpc, "torrent-get", {"fields": [*INTEGER_FIELDS, "percentDone"]})["torrents"]
    for torrent in torrents:
        for name in INTEGER_FIELDS:
            assert type(torrent[name]) is int, (name, torrent[name])
    alpha, beta = torrents
    assert alpha["status"] == 4 and beta["status"] == 6
    assert alpha["rateDownload"] == 1500 and alpha["leftUntilDone"] == 40_000 - 16_384
    assert alpha["eta"] == 16 and beta["eta"] == -1
    assert alpha["percentDone"] == 0.4096 and beta["percentDone"] == 1
    assert type(beta["percentDone"]) is int
    assert alpha["addedDate"] == 1_700_000_000


def test_files_priorities_and_wanted_in_transmissions_shape(rpc: Rpc) -> None:
    fields = ["files", "fileStats", "priorities", "wanted", "file-count"]
    (alpha,) = ok(rpc, "torrent-get", {"ids": [1], "fields": fields})["torrents"]
    assert alpha["files"] == [
        {"bytesCompleted": 16_384, "length": 30_000, "name": "example/a"},
        {"bytesCompleted": 0, "length": 10_000, "name": "example/b"},
    ]
    assert alpha["fileStats"] == [
        {"bytesCompleted": 16_384, "wanted": True, "priority": 0},
        {"bytesCompleted": 0, "wanted": False, "priority": 0},
    ]
    assert alpha["wanted"] == [1, 0] and alpha["priorities"] == [0, 0]
    assert alpha["file-count"] == 2


def test_trackers_peers_and_errors(rpc: Rpc, live: Live, session: Session) -> None:
    live.peers = (
        PeerDetails("127.0.0.2", 51413, "lt0D10", 0.5, 2000.0, 0.0, True, True, True, False, False),
    )
    session.torrents[bytes.fromhex(HASH_A)] = replace(
        session.torrents[bytes.fromhex(HASH_A)], state=TorrentState.ERROR, error="disk full"
    )
    fields = ["trackers", "trackerStats", "peers", "peersSendingToUs", "error", "errorString"]
    (alpha,) = ok(rpc, "torrent-get", {"ids": [1], "fields": fields})["torrents"]
    assert alpha["trackers"] == [
        {
            "announce": "http://t.example:6969/announce",
            "id": 0,
            "scrape": "http://t.example:6969/scrape",
            "sitename": "t",
            "tier": 0,
        }
    ]
    assert alpha["trackerStats"][0]["host"] == "http://t.example:6969"
    assert alpha["trackerStats"][0]["lastAnnounceSucceeded"] is False
    assert alpha["peers"][0]["address"] == "127.0.0.2" and alpha["peers"][0]["rateToClient"] == 2000
    assert alpha["peers"][0]["flagStr"] == "DI" and alpha["peersSendingToUs"] == 1
    assert (alpha["error"], alpha["errorString"]) == (3, "disk full")


def test_table_format_names_the_fields_once(rpc: Rpc) -> None:
    table = ok(rpc, "torrent-get", {"format": "table", "fields": ["id", "name", "nonsense"]})
    assert table["torrents"] == [["id", "name"], [1, "alpha"], [2, "beta"]]


def test_every_field_answers_for_a_torrent_and_a_magnet(rpc: Rpc, session: Session) -> None:
    magnet = "cc" * 20
    session.torrents[bytes.fromhex(magnet)] = make_status(
        magnet, state=MagnetState.FETCHING_METADATA, files=(), size=0, wanted=0, done=0
    )
    torrents = ok(rpc, "torrent-get", {"fields": sorted(FIELDS)})["torrents"]
    assert len(torrents) == 3 and all(set(t) == set(FIELDS) for t in torrents)
    assert torrents[2]["metadataPercentComplete"] == 0 and torrents[2]["status"] == 4


def test_torrent_get_needs_fields_and_a_known_format(rpc: Rpc) -> None:
    failed(rpc, "torrent-get", {}, "fields")
    failed(rpc, "torrent-get", {"fields": ["id"], "format": "csv"}, "format")


# -- torrent-add ---------------------------------------------------------------------------


def test_add_by_base64_with_options_and_file_choices(rpc: Rpc, session: Session) -> None:
    data = torrent_bytes("multi", (20_000, 20_000, 20_000))
    added = ok(
        rpc,
        "torrent-add",
        {
            "metainfo": base64.b64encode(data).decode(),
            "paused": True,
            "download-dir": "/srv/x",
            "files-unwanted": [1],
            "priority-high": [2],
        },
    )
    info_hash = parse_metainfo(data).info_hash.hex()
    assert added == {"torrent-added": {"id": 3, "name": "multi", "hashString": info_hash}}
    assert ("add_torrent", "multi", True, Path("/srv/x")) in session.calls
    assert ("file_priorities", ["normal", "skip", "high"]) in session.calls
    again = ok(rpc, "torrent-add", {"metainfo": base64.b64encode(data).decode()})
    assert again == {"torrent-duplicate": {"id": 3, "name": "multi", "hashString": info_hash}}


def test_add_by_path_and_by_magnet(rpc: Rpc, session: Session, tmp_path: Path) -> None:
    path = tmp_path / "x.torrent"
    path.write_bytes(torrent_bytes("frompath"))
    assert ok(rpc, "torrent-add", {"filename": str(path)})["torrent-added"]["name"] == "frompath"
    magnet = "magnet:?xt=urn:btih:" + "dd" * 20 + "&dn=mag"
    added = ok(rpc, "torrent-add", {"filename": magnet, "paused": False})["torrent-added"]
    assert added["hashString"] == "dd" * 20 and added["name"] == "mag"


@pytest.mark.parametrize(
    ("arguments", "fragment"),
    [
        ({}, "filename"),
        ({"metainfo": "%%%"}, "base64"),
        ({"metainfo": base64.b64encode(b"junk").decode()}, "not a valid .torrent"),
        ({"filename": "relative.torrent"}, "absolute"),
        ({"filename": "/nonexistent/x.torrent"}, "cannot read"),
        ({"filename": "magnet:?xt=urn:btih:zz"}, "magnet"),
        ({"filename": "http://127.0.0.1:1/x.torrent"}, "URL"),
        ({"metainfo": base64.b64encode(torrent_bytes()).decode(), "paused": "yes"}, "paused"),
        ({"metainfo": base64.b64encode(torrent_bytes()).decode(), "files-wanted": [5]}, "index"),
    ],
)
def test_bad_adds_say_what_is_wrong(rpc: Rpc, arguments: dict[str, Any], fragment: str) -> None:
    failed(rpc, "torrent-add", arguments, fragment)


def test_add_by_url_uses_the_fetcher(session: Session, clock: Clock, live: Live) -> None:
    fetched: list[str] = []

    def fetch(url: str) -> defer.Deferred[bytes]:
        fetched.append(url)
        return defer.succeed(torrent_bytes("byurl"))

    rpc = Rpc(session, clock=clock, live=live, run_blocking=defer.maybeDeferred, fetch=fetch)
    added = ok(rpc, "torrent-add", {"filename": "https://example.org/a.torrent"})
    assert fetched == ["https://example.org/a.torrent"]
    assert added["torrent-added"]["name"] == "byurl"


# -- actions -------------------------------------------------------------------------------


def test_stop_start_verify_reannounce_remove(rpc: Rpc, session: Session, live: Live) -> None:
    a, b = bytes.fromhex(HASH_A), bytes.fromhex(HASH_B)
    ok(rpc, "torrent-stop", {"ids": [1]})
    ok(rpc, "torrent-stop", {"ids": [1]})  # stopping a stopped torrent does nothing
    ok(rpc, "torrent-start", {"ids": [HASH_A]})
    ok(rpc, "torrent-start-now", {})  # every torrent; the running ones are left alone
    ok(rpc, "torrent-verify", {"ids": [2]})
    ok(rpc, "torrent-reannounce", {})
    ok(rpc, "torrent-remove", {"ids": [2], "delete-local-data": True})
    assert [c for c in session.calls if c[0] != "set_limits"] == [
        ("pause_torrent", a),
        ("resume_torrent", a),
        ("recheck_torrent", b),
        ("remove_torrent", b, True),
    ]
    assert live.reannounced == [a, b]


def test_a_session_error_in_an_action_is_the_result(rpc: Rpc, session: Session) -> None:
    session.fail["torrent_status"] = ValueError("no can do")
    failed(rpc, "torrent-verify", {"ids": [1]}, "no can do")


def test_torrent_set_files_priorities_limits_and_ratio(
    rpc: Rpc, session: Session, live: Live
) -> None:
    a = bytes.fromhex(HASH_A)
    ok(rpc, "torrent-set", {"ids": [1], "files-wanted": [1], "priority-high": [0]})
    assert ("set_file_priorities", a, {0: FilePriority.HIGH, 1: FilePriority.NORMAL}) in (
        session.calls
    )
    ok(rpc, "torrent-set", {"ids": [1], "files-unwanted": [0], "priority-low": [1]})
    assert session.calls[-1] == ("set_file_priorities", a, {0: FilePriority.SKIP})
    ok(rpc, "torrent-set", {"ids": [1], "downloadLimit": 300, "downloadLimited": True})
    assert session.torrents[a].download_limit == 300_000
    ok(rpc, "torrent-set", {"ids": [1], "downloadLimited": False})
    assert session.torrents[a].download_limit is None
    ok(rpc, "torrent-set", {"ids": [1], "downloadLimited": True})  # the kept 300 kB/s again
    assert session.torrents[a].download_limit == 300_000
    ok(rpc, "torrent-set", {"ids": [1], "seedRatioLimit": 1.5, "seedRatioMode": 1})
    ok(rpc, "torrent-set", {"ids": [2], "seedRatioMode": 2})
    assert live.prefs == {
        a: {"own_ratio": 1.5, "ratio_mode": 1},
        bytes.fromhex(HASH_B): {"ratio_mode": 2},
    }
    ok(rpc, "torrent-set", {"ids": [1], "labels": ["tv", "hd", "tv"]})
    assert live.prefs[a]["labels"] == ("tv", "hd")
    got = ok(
        rpc, "torrent-get", {"ids": [1], "fields": ["labels", "seedRatioLimit", "seedRatioMode"]}
    )
    assert got["torrents"] == [{"labels": ["tv", "hd"], "seedRatioLimit": 1.5, "seedRatioMode": 1}]


@pytest.mark.parametrize(
    ("arguments", "fragment"),
    [
        ({"files-wanted": [9]}, "files-wanted"),
        ({"priority-high": "all"}, "priority-high"),
        ({"downloadLimit": -5}, "downloadLimit"),
        ({"uploadLimited": "yes"}, "uploadLimited"),
        ({"seedRatioMode": 7}, "seedRatioMode"),
        ({"seedRatioLimit": -1}, "seedRatioLimit"),
        ({"labels": "tv"}, "labels"),
        ({"labels": ["a,b"]}, "labels[0]"),
        ({"labels": ["ok", ""]}, "labels[1]"),
        ({"labels": ["x" * 257]}, "labels[0]"),
        ({"labels": [str(n) for n in range(65)]}, "at most 64"),
        ({"trackerAdd": ["http://x/announce"]}, "trackerAdd"),
    ],
)
def test_bad_torrent_set_changes_nothing(
    rpc: Rpc, session: Session, live: Live, arguments: dict[str, Any], fragment: str
) -> None:
    failed(rpc, "torrent-set", {"ids": [1], "downloadLimit": 5, **arguments}, fragment)
    assert session.calls == [] and live.prefs == {}


def test_session_set_download_dir_and_seed_ratio(rpc: Rpc, live: Live) -> None:
    """Sonarr and friends set these; bt keeps them (bt.sessionprefs saves them)."""
    ok(rpc, "session-set", {"download-dir": "/data"})  # unchanged: nothing to do
    ok(rpc, "session-set", {"seedRatioLimit": 2.0, "seedRatioLimited": True})  # as shown
    assert live.session_prefs == []
    ok(rpc, "session-set", {"download-dir": "/srv/new", "seedRatioLimit": 0.5})
    ok(rpc, "session-set", {"seedRatioLimited": False})
    assert live.session_prefs == [
        {"download_dir": "/srv/new", "seed_ratio": 0.5},
        {"seed_ratio_limited": False},
    ]


@pytest.mark.parametrize(
    ("arguments", "fragment"),
    [
        ({"download-dir": "relative/dir"}, "absolute"),
        ({"download-dir": "/nowhere"}, "not writable"),
        ({"seedRatioLimit": "2"}, "seedRatioLimit"),
        ({"seedRatioLimited": "yes"}, "seedRatioLimited"),
    ],
)
def test_bad_session_set_changes_nothing(
    rpc: Rpc, session: Session, live: Live, arguments: dict[str, Any], fragment: str
) -> None:
    failed(
        rpc,
        "session-set",
        {"speed-limit-up": 10, "speed-limit-up-enabled": True, **arguments},
        fragment,
    )
    assert live.session_prefs == [] and session.limits.get("upload") is None


def test_set_location_moves_the_chosen_torrents_and_answers_when_done(
    rpc: Rpc, session: Session
) -> None:
    """transmission-remote --move sends move: true; --find (and the default) false."""
    session.hold = True
    answers: list[Any] = []
    request = {
        "method": "torrent-set-location",
        "arguments": {"ids": [2], "location": "/elsewhere", "move": True},
        "tag": 3,
    }
    rpc.dispatcher.handle(json.dumps(request).encode()).addBoth(answers.append)
    assert answers == []  # not before the data is moved
    assert session.calls == [("move_torrent", bytes.fromhex(HASH_B), Path("/elsewhere"), True)]
    session.held.pop().callback(None)
    assert answers == [{"result": "success", "arguments": {}, "tag": 3}]
    got = ok(rpc, "torrent-get", {"ids": [2], "fields": ["downloadDir"]})
    assert got["torrents"] == [{"downloadDir": "/elsewhere"}]
    session.hold = False
    session.calls.clear()
    ok(rpc, "torrent-set-location", {"ids": [1], "location": "/found"})
    assert session.calls == [("move_torrent", bytes.fromhex(HASH_A), Path("/found"), False)]


@pytest.mark.parametrize(
    ("arguments", "fragment"),
    [
        ({"location": "relative/dir"}, "not an absolute path"),
        ({"location": ""}, "location: expected the folder"),
        ({"location": 5}, "location: expected the folder"),
        ({"location": "/x", "move": "yes"}, "move: expected true or false"),
    ],
)
def test_a_bad_set_location_moves_nothing(
    rpc: Rpc, session: Session, arguments: dict[str, Any], fragment: str
) -> None:
    failed(rpc, "torrent-set-location", {"ids": [1], **arguments}, fragment)
    assert session.calls == []


def test_a_failed_move_is_named_in_the_result(rpc: Rpc, session: Session) -> None:
    session.fail["move_torrent"] = MoveError("cannot move /data/x to /full/x: No space left")
    failed(rpc, "torrent-set-location", {"ids": [1], "location": "/full"}, "No space left")


# -- the session ---------------------------------------------------------------------------


def test_session_get_speaks_rpc_17_with_bts_settings(rpc: Rpc, session: Session) -> None:
    session.limits["download"] = 250_000.0
    got = ok(rpc, "session-get")
    assert got["rpc-version"] == 17 and got["rpc-version-minimum"] == 14
    assert got["download-dir"] == "/data" and got["peer-port"] == 6881
    assert got["speed-limit-down"] == 250 and got["speed-limit-down-enabled"] is True
    assert got["speed-limit-up-enabled"] is False
    assert got["seedRatioLimit"] == 2.0 and got["seedRatioLimited"] is True
    assert got["session-id"] == rpc.session_id
    assert got["units"]["speed-bytes"] == 1000
    assert ok(rpc, "session-get", {"fields": ["version", "peer-port"]}) == {
        "version": got["version"],
        "peer-port": 6881,
    }


def test_session_set_limits_and_refuses_what_bt_cannot_set(rpc: Rpc, session: Session) -> None:
    ok(rpc, "session-set", {"speed-limit-up": 40, "speed-limit-up-enabled": True})
    assert session.limits["upload"] == 40_000
    ok(rpc, "session-set", {"speed-limit-up-enabled": False})
    assert session.limits["upload"] is None
    assert ok(rpc, "session-get")["speed-limit-up"] == 40  # kept while disabled
    current = ok(rpc, "session-get")
    ok(rpc, "session-set", current)  # writing back session-get's answer is fine
    message = failed(rpc, "session-set", {"peer-port": 1, "dht-enabled": True}, "peer-port")
    assert "dht-enabled" in message
    failed(rpc, "session-set", {"speed-limit-down": "fast"}, "speed-limit-down")


def test_session_stats_counts_and_totals(rpc: Rpc, session: Session) -> None:
    ok(rpc, "torrent-stop", {"ids": [2]})
    stats = ok(rpc, "session-stats")
    assert (stats["torrentCount"], stats["activeTorrentCount"], stats["pausedTorrentCount"]) == (
        2,
        1,
        1,
    )
    assert stats["current-stats"]["downloadedBytes"] == 123_456
    assert stats["cumulative-stats"]["downloadedBytes"] == 40_000
    assert stats["downloadSpeed"] == 3000  # both torrents


def test_free_space_port_test_and_session_close(rpc: Rpc, clock: Clock, tmp_path: Path) -> None:
    free = ok(rpc, "free-space", {"path": str(tmp_path)})
    assert free["path"] == str(tmp_path) and free["size-bytes"] > 0
    failed(rpc, "free-space", {"path": "relative"}, "absolute")
    failed(rpc, "free-space", {"path": str(tmp_path / "missing")}, "no such folder")
    reply = call(rpc, "port-test", {})
    assert reply["arguments"] == {"port-is-open": False}
    assert "cannot test" in reply["result"]
    ok(rpc, "session-close")
    clock.advance(1)
    assert rpc.closed == [True]  # type: ignore[attr-defined]


def test_a_torrent_removed_elsewhere_is_reported_removed_too(rpc: Rpc, session: Session) -> None:
    ok(rpc, "torrent-get", {"fields": ["id"]})
    del session.torrents[bytes.fromhex(HASH_A)]  # bt's own API or the CLI removed it
    recent = ok(rpc, "torrent-get", {"ids": "recently-active", "fields": ["id"]})
    assert recent["removed"] == [1] and recent["torrents"] == [{"id": 2}]


def test_a_magnet_cannot_take_limits_before_its_metadata(
    rpc: Rpc, session: Session, live: Live
) -> None:
    magnet = "cc" * 20
    session.torrents[bytes.fromhex(magnet)] = make_status(
        magnet, "mag", state=MagnetState.FETCHING_METADATA, files=()
    )
    failed(rpc, "torrent-set", {"ids": [magnet], "uploadLimited": True}, "mag", "metadata")
    ok(rpc, "torrent-set", {"ids": [magnet], "labels": ["tv"]})  # kept for the torrent
    assert live.prefs[bytes.fromhex(magnet)] == {"labels": ("tv",)}
    ok(rpc, "torrent-stop", {"ids": [magnet]})  # left alone until it is a torrent
    assert session.calls == []
