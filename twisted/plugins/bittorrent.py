"""twistd plugin glue: ``twistd bittorrent`` runs :mod:`bt.tap`. Nothing else lives here."""

from twisted.application.service import ServiceMaker

bittorrent = ServiceMaker(
    "bt BitTorrent daemon",
    "bt.tap",
    "Download and seed torrents (bt, a BitTorrent engine on Twisted)",
    "bittorrent",
)
