"""`streamfleet up` watches its children without polling: a child's exit or a stop wakes it."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

from common.cli.up import Farm, UpOptions, _watch


def _farm(tmp_path: Path) -> Farm:
    return Farm(UpOptions("127.0.0.1", 0, tmp_path, flower=False, flower_port=0, node=None))


def _child(seconds: float) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", f"import time; time.sleep({seconds})"])


def test_a_child_that_exits_stops_the_farm(tmp_path: Path) -> None:
    farm = _farm(tmp_path)
    farm.watch("beat", _child(60))
    farm.watch("worker", _child(0.2))
    try:
        assert _watch(farm) == 1  # returns only once a child exited
        assert farm.children["worker"].returncode == 0
        assert farm.children["beat"].poll() is None
    finally:
        farm.children["beat"].kill()


def test_a_stop_ends_the_watch(tmp_path: Path) -> None:
    farm = _farm(tmp_path)
    farm.watch("worker", _child(60))
    threading.Timer(0.2, farm.stop_soon).start()
    try:
        assert _watch(farm) == 0
    finally:
        farm.children["worker"].kill()
