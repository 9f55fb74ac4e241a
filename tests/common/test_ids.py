"""Ids minted in forked processes (pre-forking servers fork after importing everything)."""

from __future__ import annotations

import os

from common.ids import is_object_id, new_id


def test_a_forked_child_mints_ids_of_its_own() -> None:
    new_id()  # the parent has minted before it forks, as a server that imported and started
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover  (the child)
        os.write(write, new_id().encode())
        os._exit(0)
    os.close(write)
    theirs = os.read(read, 64).decode()
    os.waitpid(child, 0)
    os.close(read)
    mine = new_id()
    assert is_object_id(theirs) and is_object_id(mine)
    # Same second, same shape: the 5 random bytes after the time must differ.
    assert theirs[8:18] != mine[8:18]
