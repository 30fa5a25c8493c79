"""The mainline DHT (BEP 5, BEP 32, BEP 42).

The pure modules here (krpc, nodeid, routing, lookup, tokens, store, ratelimit)
hold every rule of the protocol with the clock and randomness passed in, so they
are tested without sockets; one DatagramProtocol adapter does the I/O.
"""
