"""The peer extensions and peer sources every torrent of a session gets.

The one place that decides which BEP 10 extensions a torrent speaks and which
extra peer sources it uses (PEX, ut_metadata, ...), so neither the torrent nor
the swarm changes when one is added. A private torrent (BEP 27) gets none
that would find peers outside its trackers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bt.extensions.metadata import MetadataServer
from bt.extensions.pex import PeerExchange
from bt.extensions.upload_only import UploadOnly

if TYPE_CHECKING:
    from bt.torrent import Torrent

__all__ = ["install_standard_extensions"]


def install_standard_extensions(torrent: Torrent) -> None:
    """Register the standard extensions with ``torrent``'s swarm (before it starts)."""
    # Each BEP's extension registers here: torrent.swarm.extensions.register(...),
    # and a peer source with torrent.sources.register(...).
    # BEP 9: private torrents serve their metadata too (it finds no peers).
    torrent.swarm.extensions.register(MetadataServer(torrent.metainfo.raw_info))
    torrent.swarm.extensions.register(UploadOnly(lambda: torrent.picker.is_finished))
    if not torrent.metainfo.private:  # BEP 27: a private torrent's peers come from its trackers
        torrent.swarm.extensions.register(PeerExchange.of(torrent.swarm))
