"""HTTPS trackers: certificates are verified by default, so a self-signed tracker is refused."""

from __future__ import annotations

import datetime

import pytest
import pytest_twisted
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from twisted.internet import task
from twisted.web import resource, server

from bt import bencode
from bt.errors import TrackerError
from bt.tracker.announce import AnnounceRequest
from bt.tracker.http import HTTPTracker, make_http_client


def self_signed_pem() -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM) + key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


class Announce(resource.Resource):
    isLeaf = True

    def render_GET(self, request: object) -> bytes:
        return bencode.encode({"interval": 1800, "peers": b""})


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest_twisted.ensureDeferred
async def test_self_signed_https_tracker_is_refused() -> None:
    from twisted.internet import reactor, ssl

    certificate = ssl.PrivateCertificate.loadPEM(self_signed_pem())
    site = server.Site(Announce(), timeout=None)
    port = reactor.listenSSL(0, site, certificate.options(), interface="127.0.0.1")
    client, pool = make_http_client(reactor)
    try:
        url = f"https://127.0.0.1:{port.getHost().port}/announce"
        tracker = HTTPTracker(url, client, reactor, timeout=10)
        request = AnnounceRequest(
            info_hash=b"\x01" * 20,
            peer_id=b"-BT0100-tlstlstlstls",
            port=6881,
            uploaded=0,
            downloaded=0,
            left=1,
            event="started",
            key="0",
        )
        with pytest.raises(TrackerError, match=r"https://127\.0\.0\.1:\d+/announce: .*"):
            await tracker.announce(request)
    finally:
        await pool.closeCachedConnections()
        await port.stopListening()
        # After the refused handshake Twisted keeps the TLS socket until its peer
        # closes; close both ends here so the test leaves nothing behind.
        for reader in list(reactor.getReaders()):
            if "TLS" in type(reader).__name__:
                reader.abortConnection()
        await task.deferLater(reactor, 0.05, lambda: None)
