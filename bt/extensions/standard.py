"""The peer extensions and peer sources every torrent of a session gets.

The one place that decides which BEP 10 extensions a torrent speaks and which
extra peer sources it uses (PEX, ut_metadata, ...), so neither the torrent nor
the swarm changes when one is added. A private torrent (BEP 27) gets none
that would find peers outside its trackers.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

from bt.extensions.metadata import MetadataServer
from bt.extensions.pex import PeerExchange
from bt.extensions.upload_only import UploadOnly
from bt.swarm.hashes import hash_exchange_for

if TYPE_CHECKING:
    from bt.dht.service import DHTService
    from bt.torrent import Torrent

__all__ = ["install_standard_extensions"]


def install_standard_extensions(torrent: Torrent, dht: DHTService | None = None) -> None:
    """Register the standard extensions with ``torrent``'s swarm (before it starts).

    ``dht``: the session's DHT, a peer source of every public torrent (BEP 5).
    """
    # Each BEP's extension registers here: torrent.swarm.extensions.register(...),
    # and a peer source with torrent.sources.register(...).
    # BEP 9: private torrents serve their metadata too (it finds no peers).
    torrent.swarm.extensions.register(MetadataServer(torrent.metainfo.raw_info))
    torrent.swarm.extensions.register(UploadOnly(lambda: torrent.picker.is_finished))
    swarm = torrent.swarm
    if torrent.metainfo.info_hash_v2 is not None:  # BEP 52: hash requests both ways
        swarm.hashes = hash_exchange_for(torrent)
        # a failed piece's real leaf hashes, for its bad blocks (bt.swarm.badblocks)
        swarm.block_hashes = swarm.hashes.block_hashes
    if not torrent.metainfo.private:  # BEP 27: a private torrent's peers come from its trackers
        torrent.swarm.extensions.register(PeerExchange.of(torrent.swarm))
        if dht is not None:  # BEP 5: the DHT finds peers; PORT tells peers our node's port
            torrent.swarm.factory.dht = dht.advert
            for info_hash in torrent.metainfo.info_hashes:  # a hybrid under both (BEP 52)
                found = torrent.add_candidates
                if info_hash != torrent.info_hash:  # dialled with the hash they came under
                    found = partial(torrent.add_candidates, info_hash=info_hash)
                torrent.sources.register(dht.source_for(info_hash, found, lambda: torrent.port))
