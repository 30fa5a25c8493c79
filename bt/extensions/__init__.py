"""Peer extensions (BEP 10 and the BEPs built on it): their pure codecs and policies.

Each extension keeps its wire format in a ``*_messages`` module (layer 0); the
objects that plug into a torrent's swarm build on those.
"""
