"""IDiskQueue: the disk queue's contract, kept by the real queue and by the tests' fake."""

from __future__ import annotations

import inspect

from test_torrent import FakeDisk
from torrents import handmade_info, handmade_torrent
from zope.interface.verify import verifyClass, verifyObject

from bt.interfaces import IDiskQueue
from bt.metainfo import parse_metainfo
from bt.storage.disk import DiskQueue
from bt.storage.layout import Layout
from bt.storage.memory import MemoryStorage
from bt.storage.verifier import V1Verifier


def public_methods(cls: type) -> set[str]:
    return {
        name
        for name, member in inspect.getmembers(cls, inspect.isfunction)
        if not name.startswith("_")
    }


def test_the_disk_queue_provides_the_interface() -> None:
    layout = Layout([32], piece_length=16)
    queue = DiskQueue(MemoryStorage(layout), V1Verifier([b"\0" * 20] * 2), layout.piece_size)
    assert verifyObject(IDiskQueue, queue)


def test_the_tests_fake_disk_provides_the_interface_with_matching_signatures() -> None:
    """verifyClass checks every method is there and takes the interface's arguments."""
    assert verifyClass(IDiskQueue, FakeDisk)
    assert verifyObject(IDiskQueue, FakeDisk(parse_metainfo(handmade_torrent(handmade_info()))))


def test_the_fake_has_no_method_the_interface_lacks() -> None:
    """A torrent that starts calling something new must put it in the interface first."""
    assert public_methods(FakeDisk) == set(IDiskQueue.names())


def test_the_interface_names_every_job_the_real_queue_offers_torrents() -> None:
    extra = public_methods(DiskQueue) - set(IDiskQueue.names())
    assert extra == set(), f"DiskQueue methods not in IDiskQueue: {sorted(extra)}"
