"""A half-open flood: many TCP connections that connect and never say a word.

Each connection the target closes is opened again at once, as an attacker
would, so the target's accept queue stays busy for the whole flood. The
flood runs in one thread with non-blocking sockets, stops by itself after
``duration`` seconds, and closes every socket it opened when stopped.
"""

from __future__ import annotations

import errno
import selectors
import socket
import threading
import time


class HalfOpenFlood:
    """``connections`` silent sockets to ``address``, re-opened whenever they are closed."""

    def __init__(self, address: tuple[str, int], connections: int, duration: float) -> None:
        self.address = address
        self.connections = connections
        self.duration = duration
        #: Connects that completed, and sockets the target closed (or reset) afterwards.
        self.connected = 0
        self.closed_by_target = 0
        self._selector = selectors.DefaultSelector()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="half-open-flood", daemon=True)
        self._lock = threading.Lock()

    @property
    def open_now(self) -> int:
        """Sockets connected and not (yet) closed by the target."""
        with self._lock:
            return sum(1 for key in self._selector.get_map().values() if key.data == "open")

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
        assert not self._thread.is_alive(), "the flood thread did not stop"

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        deadline = time.monotonic() + self.duration
        try:
            for _ in range(self.connections):
                self._open()
            while not self._stop.is_set() and time.monotonic() < deadline:
                for key, _events in self._selector.select(timeout=0.1):
                    self._ready(key)
        finally:
            with self._lock:
                for key in list(self._selector.get_map().values()):
                    self._selector.unregister(key.fileobj)
                    key.fileobj.close()
            self._selector.close()

    def _open(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        code = sock.connect_ex(self.address)
        if code not in (0, errno.EINPROGRESS):
            sock.close()
            return
        with self._lock:
            self._selector.register(sock, selectors.EVENT_WRITE, "connecting")

    def _ready(self, key: selectors.SelectorKey) -> None:
        sock: socket.socket = key.fileobj  # type: ignore[assignment]
        if key.data == "connecting":
            if sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
                self.connected += 1
                with self._lock:
                    self._selector.modify(sock, selectors.EVENT_READ, "open")
                return
        else:
            try:
                if sock.recv(4096):
                    return  # the target spoke first; a silent flooder just listens on
            except OSError:
                pass
            self.closed_by_target += 1
        with self._lock:
            self._selector.unregister(sock)
        sock.close()
        self._open()
