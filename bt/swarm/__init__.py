"""The swarm layer: the live peers of one torrent (see docs/architecture.rst).

``swarm.py`` holds the set and every per-peer decision; ``link.py`` is the one
face of a peer; ``upload.py`` serves a peer's requests; ``extension.py`` is
where peer extensions plug in.
"""
