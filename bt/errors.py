"""Every exception type bt raises, in one place.

Each layer raises its own type so callers can tell a malformed file from a
misbehaving peer from a failing disk, and catch narrowly.
"""

from __future__ import annotations


class BtError(Exception):
    """Base of every error bt raises on purpose."""


class BencodeError(BtError, ValueError):
    """Bytes that are not strict bencode; ``offset`` is where decoding stopped."""

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(f"{message} at offset {offset}")
        self.reason = message
        self.offset = offset


class MetainfoError(BtError, ValueError):
    """A .torrent that decodes but does not describe a valid torrent."""


class MagnetError(BtError, ValueError):
    """A magnet link that cannot be used; the message names the parameter."""


class RemoteProtocolError(BtError):
    """A peer broke the wire protocol; closes that peer only."""


class TrackerError(BtError):
    """A tracker could not be reached, or answered with an error or garbage."""


class StorageError(BtError):
    """Reading or writing torrent data failed (disk full, permissions, ...)."""


class InconsistentHashesError(StorageError):
    """A hybrid torrent's two views disagree on a piece: its data passes one hash
    (SHA-1 or merkle) and fails the other.

    No peer can forge data for the hash it passes, so the .torrent itself is
    wrong and no download will ever complete the piece. The torrent stops with
    this error, as at a disk error (libtorrent: torrent_inconsistent_hashes),
    instead of blaming and banning every peer that sends the piece.
    """

    def __init__(self, index: int, passed: str) -> None:
        failed = "v1 SHA-1" if passed == "v2" else "v2 merkle"
        super().__init__(
            f"piece {index} passes its {passed} hash and fails its {failed} hash:"
            " the hybrid torrent's v1 and v2 views disagree"
        )
        self.index = index


class DataMissingError(StorageError):
    """Bytes a read needed are not on disk: a file shorter than the torrent says, or gone.

    Not a failing disk (that is a plain StorageError): the file was truncated,
    replaced or deleted under the torrent, so the pieces in it are no longer
    had and get checked again; the torrent keeps running.
    """

    def __init__(self, index: int, begin: int, length: int, got: int) -> None:
        super().__init__(f"piece {index}: {length} bytes at {begin} wanted, only {got} on disk")
        self.index = index
        self.begin = begin
        self.length = length
        self.got = got


class PieceHashError(BtError):
    """A piece's data did not match its hash in the metainfo.

    ``leaf_hashes`` (v2 and hybrid pieces) holds one entry per 16 KiB block of
    the data received: the SHA-256 of its file bytes, 32 zero bytes for a block
    of zero padding, ``b""`` for a block whose padding is not zero. Compared with
    the piece's real leaf hashes, they name the bad blocks (``bt.policy.blame``).
    """

    def __init__(self, index: int, leaf_hashes: tuple[bytes, ...] | None = None) -> None:
        super().__init__(f"piece {index} failed its hash check")
        self.index = index
        self.leaf_hashes = leaf_hashes


class BitfieldError(BtError, ValueError):
    """Bitfield bytes of the wrong length or with spare bits set."""


class ResumeError(BtError):
    """A resume file that cannot be used (corrupt, another torrent's, another version)."""


class ResumeSaveError(StorageError):
    """The resume state could not be written; the torrent's data itself is unaffected."""


class UnknownTorrentError(BtError):
    """No torrent with this info-hash in the session."""


class DuplicateTorrentError(BtError):
    """The session already holds a torrent with this info-hash."""


class CreateError(BtError):
    """Files that cannot be made into a torrent; the message says which and why."""


class LifecycleError(BtError):
    """An event the torrent's lifecycle refuses in its state (a bug in the caller)."""


class DHTError(BtError):
    """A DHT query failed: no reply, an error reply, or it could not be sent."""


class MoveError(StorageError):
    """A torrent's data could not be moved to another folder; the message names the
    file and why. Whatever had moved is back in the old folder."""
