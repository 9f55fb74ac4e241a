"""ObjectId-like identifiers: 24 lowercase hex characters, roughly time-ordered.

Callaba Engine clients expect MongoDB ObjectIds; ours have the same shape (4 bytes of Unix
time, 5 random bytes, a 3-byte counter) without a MongoDB dependency.
"""

from __future__ import annotations

import itertools
import os
import re
import secrets
import threading
import time

_OBJECT_ID = re.compile(r"^[0-9a-f]{24}$")
_lock = threading.Lock()
_counter = itertools.count(secrets.randbelow(0xFFFFFF))
_process_random = os.urandom(5)


def _reseed() -> None:
    """A forked child (a pre-forking server's worker) gets its own random part and counter:
    with its parent's, both would mint the same ids in the same second."""
    global _counter, _process_random, _lock  # noqa: PLW0603
    _lock = threading.Lock()
    _counter = itertools.count(secrets.randbelow(0xFFFFFF))
    _process_random = os.urandom(5)


os.register_at_fork(after_in_child=_reseed)


def new_id() -> str:
    """A fresh 24-hex id, unique across processes and sortable by creation second."""
    with _lock:
        count = next(_counter) & 0xFFFFFF
    raw = int(time.time()).to_bytes(4, "big") + _process_random + count.to_bytes(3, "big")
    return raw.hex()


def random_id() -> str:
    """A 24-hex id of 96 random bits, of the same shape as `new_id`'s but not derivable from
    any other id: for what names a public path (an output's playback directory)."""
    return secrets.token_hex(12)


def is_object_id(value: str) -> bool:
    """True when `value` has the shape of an id made by `new_id`."""
    return bool(_OBJECT_ID.match(value))
