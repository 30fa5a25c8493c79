"""bt: a BitTorrent engine and daemon on Twisted."""

__version__ = "0.1.0"
