"""Magnet links (BEP 9): ``magnet:?xt=urn:btih:...`` as a :class:`MagnetLink` value.

A magnet names a torrent by its info-hash and may add a display name (``dn``),
trackers (``tr``) and peer addresses (``x.pe``). Everything in it comes from
whoever wrote the link, so :func:`parse_magnet` is strict about what bt acts
on (the hash, the addresses, the tracker URLs) and names the parameter that is
wrong; parameters bt does not use (``ws``, ``xl``, ``so``, ...) are ignored, as
other clients do. Pure: no Twisted, no I/O.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
from dataclasses import dataclass
from urllib.parse import parse_qsl, quote

from bt.errors import MagnetError
from bt.untrusted import shown

__all__ = ["MAX_MAGNET_LENGTH", "MagnetLink", "parse_magnet"]

#: Longer links are refused before parsing: real ones are a few hundred bytes.
MAX_MAGNET_LENGTH = 64 * 1024
#: Trackers and peers kept from one link (more is not a link a person wrote).
MAX_TRACKERS = 100
MAX_PEERS = 200
#: BEP 52 multihash prefix of a SHA-256 digest (``urn:btmh:1220<64 hex>``).
_SHA256_MULTIHASH = b"\x12\x20"
_TRACKER_SCHEMES = ("http://", "https://", "udp://")


@dataclass(frozen=True)
class MagnetLink:
    """What a magnet link says about a torrent, checked.

    ``info_hash`` is the v1 (SHA-1) info-hash, ``info_hash_v2`` the BEP 52
    SHA-256 one; a link has at least one. ``trackers`` keeps the link's order;
    each tracker is its own tier, as libtorrent treats ``tr`` parameters.
    """

    info_hash: bytes | None
    info_hash_v2: bytes | None = None
    name: str | None = None
    trackers: tuple[str, ...] = ()
    peers: tuple[tuple[str, int], ...] = ()

    @property
    def key(self) -> bytes:
        """The 20-byte hash the session knows the magnet by: the v1 info-hash, else the
        truncated v2 one (BEP 52), as for a torrent's ``info_hash``."""
        if self.info_hash is not None:
            return self.info_hash
        assert self.info_hash_v2 is not None
        return self.info_hash_v2[:20]

    @property
    def info_hashes(self) -> tuple[bytes, ...]:
        """Every 20-byte hash peers may know the torrent by (a hybrid magnet's two)."""
        v2 = self.info_hash_v2[:20] if self.info_hash_v2 is not None else None
        return tuple(h for h in (self.info_hash, v2) if h is not None)

    @property
    def tiers(self) -> tuple[tuple[str, ...], ...]:
        return tuple((url,) for url in self.trackers)

    @property
    def display_name(self) -> str:
        """``dn`` if given, else the info-hash in hex (what status shows before metadata)."""
        if self.name:
            return self.name
        digest = self.info_hash if self.info_hash is not None else self.info_hash_v2
        assert digest is not None
        return digest.hex()

    def uri(self) -> str:
        """The link written back out (hex hash), e.g. for the state dir or an API reply."""
        parts = []
        if self.info_hash is not None:
            parts.append(f"xt=urn:btih:{self.info_hash.hex()}")
        if self.info_hash_v2 is not None:
            parts.append(f"xt=urn:btmh:1220{self.info_hash_v2.hex()}")
        if self.name:
            parts.append(f"dn={quote(self.name, safe='')}")
        parts += [f"tr={quote(url, safe='')}" for url in self.trackers]
        parts += [f"x.pe={_format_peer(peer)}" for peer in self.peers]
        return "magnet:?" + "&".join(parts)


def is_magnet(text: str) -> bool:
    """True when ``text`` looks like a magnet link (so callers choose a parser)."""
    return text[:8].lower() == "magnet:?"


def parse_magnet(text: str) -> MagnetLink:
    """Parse a magnet link; a :class:`MagnetError` says which parameter is wrong."""
    if len(text) > MAX_MAGNET_LENGTH:
        raise MagnetError(f"magnet link is {len(text)} characters, over {MAX_MAGNET_LENGTH}")
    text = text.strip()
    if not is_magnet(text):
        raise MagnetError(f"not a magnet link (it must start with 'magnet:?'): {shown(text, 60)}")
    try:
        params = parse_qsl(text[8:], keep_blank_values=True, strict_parsing=False)
    except ValueError as error:  # pragma: no cover - parse_qsl is lenient
        raise MagnetError(f"magnet link does not parse: {error}") from None
    v1: bytes | None = None
    v2: bytes | None = None
    name: str | None = None
    trackers: list[str] = []
    peers: list[tuple[str, int]] = []
    for raw_key, value in params:
        key = _base_key(raw_key)
        if key == "xt":
            found_v1, found_v2 = _parse_exact_topic(value)
            v1 = _one(v1, found_v1, "urn:btih")
            v2 = _one(v2, found_v2, "urn:btmh")
        elif key == "dn":
            name = value.strip() or None
        elif key == "tr":
            url = _parse_tracker(value)
            if url not in trackers and len(trackers) < MAX_TRACKERS:
                trackers.append(url)
        elif key == "x.pe":
            peer = _parse_peer(value)
            if peer not in peers and len(peers) < MAX_PEERS:
                peers.append(peer)
    if v1 is None and v2 is None:
        raise MagnetError("magnet link has no 'xt=urn:btih:' (or 'urn:btmh:') info-hash")
    return MagnetLink(v1, v2, name, tuple(trackers), tuple(peers))


def _base_key(key: str) -> str:
    """``xt.1`` and ``tr.2`` (numbered variants some writers use) count as ``xt`` and ``tr``."""
    head, dot, tail = key.rpartition(".")
    if dot and tail.isdigit() and head in ("xt", "tr", "dn", "x.pe"):
        return head
    return key


def _one(old: bytes | None, new: bytes | None, what: str) -> bytes | None:
    if new is None:
        return old
    if old is not None and old != new:
        raise MagnetError(f"magnet link names two different {what} info-hashes")
    return new


def _parse_exact_topic(value: str) -> tuple[bytes | None, bytes | None]:
    """One ``xt`` value: a v1 ``urn:btih`` or a v2 ``urn:btmh`` hash; other URNs are ignored."""
    lowered = value.lower()
    if lowered.startswith("urn:btih:"):
        return _parse_btih(value[9:]), None
    if lowered.startswith("urn:btmh:"):
        return None, _parse_btmh(value[9:])
    return None, None  # urn:sha1:, urn:ed2k: ... name the same file elsewhere; not ours


def _parse_btih(digest: str) -> bytes:
    if len(digest) == 40:
        try:
            return bytes.fromhex(digest)
        except ValueError:
            raise MagnetError(
                f"xt=urn:btih: hash {shown(digest, 60)} is 40 characters but not hex"
            ) from None
    if len(digest) == 32:
        try:
            return base64.b32decode(digest.upper())
        except binascii.Error:
            raise MagnetError(
                f"xt=urn:btih: hash {shown(digest, 60)} is 32 characters but not base32"
            ) from None
    raise MagnetError(
        f"xt=urn:btih: hash {shown(digest, 60)} must be 40 hex or 32 base32 characters,"
        f" not {len(digest)}"
    )


def _parse_btmh(multihash: str) -> bytes:
    try:
        raw = bytes.fromhex(multihash)
    except ValueError:
        raise MagnetError(f"xt=urn:btmh: hash {shown(multihash, 80)} is not hex") from None
    if len(raw) != 34 or raw[:2] != _SHA256_MULTIHASH:
        raise MagnetError(
            f"xt=urn:btmh: hash {shown(multihash, 80)} is not a SHA-256 multihash"
            " ('1220' and 64 hex characters)"
        )
    return raw[2:]


def _parse_tracker(value: str) -> str:
    url = value.strip()
    if not url.lower().startswith(_TRACKER_SCHEMES):
        raise MagnetError(f"tr={shown(url, 80)} is not an http(s):// or udp:// tracker URL")
    if any(ord(char) < 0x21 for char in url):
        raise MagnetError(f"tr={shown(url, 80)} holds spaces or control characters")
    return url


def _parse_peer(value: str) -> tuple[str, int]:
    """``x.pe``: ``host:port``, ``[v6]:port``; the host is an IP address (no name lookups)."""
    text = value.strip()
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        if not bracket or not rest.startswith(":"):
            raise MagnetError(f"x.pe={shown(text, 80)} is not [IPv6]:port")
        port_text = rest[1:]
    else:
        host, colon, port_text = text.rpartition(":")
        if not colon:
            raise MagnetError(f"x.pe={shown(text, 80)} has no port (host:port)")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise MagnetError(
            f"x.pe={shown(text, 80)}: {shown(host, 60)} is not an IP address"
        ) from None
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise MagnetError(f"x.pe={shown(text, 80)}: port must be 1-65535")
    return str(address), int(port_text)


def _format_peer(peer: tuple[str, int]) -> str:
    host, port = peer
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
