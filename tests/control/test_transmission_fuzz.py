"""Whatever a client sends, every method answers in Transmission's shape, never a bug."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.internet import defer
from twisted.internet.task import Clock

from bt.control.transmission.rpc import Rpc
from control import make_status
from control.test_transmission_rpc import HASH_A, Live, Session, two_files

KEYS = [
    "ids", "fields", "format", "filename", "metainfo", "paused", "download-dir",
    "files-wanted", "files-unwanted", "priority-high", "priority-low", "priority-normal",
    "downloadLimit", "downloadLimited", "uploadLimit", "uploadLimited", "seedRatioLimit",
    "seedRatioMode", "labels", "location", "delete-local-data", "path", "speed-limit-down",
    "speed-limit-down-enabled", "start-added-torrents", "peer-port",
]  # fmt: skip
VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from(["recently-active", HASH_A, "1", "", "/tmp", "magnet:?xt=urn:btih:x"])
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=8,
)
ARGUMENTS = st.dictionaries(st.sampled_from(KEYS), VALUES, max_size=6)


def fresh() -> Rpc:
    session = Session()
    info_hash = bytes.fromhex(HASH_A)
    session.torrents[info_hash] = make_status(HASH_A, "alpha", files=two_files())
    return Rpc(session, clock=Clock(), live=Live(), run_blocking=defer.maybeDeferred)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(method=st.sampled_from(sorted(fresh().dispatcher.methods)), arguments=ARGUMENTS)
def test_any_arguments_get_an_answer_and_never_an_internal_error(
    method: str, arguments: dict[str, Any]
) -> None:
    if method == "session-close":
        return  # stops the daemon: tested on its own
    rpc = fresh()
    body = json.dumps({"method": method, "arguments": arguments, "tag": 1}).encode()
    results: list[Any] = []
    rpc.dispatcher.handle(body).addBoth(results.append)
    (reply,) = results
    assert isinstance(reply, dict) and isinstance(reply["result"], str), reply
    assert "internal error" not in reply["result"], (method, arguments, reply)
    assert isinstance(reply["arguments"], dict) and reply["tag"] == 1
    json.dumps(reply, allow_nan=False)
