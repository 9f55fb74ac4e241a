"""Looking at processes from the tests."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from tests.support.wait import wait_for
from worker.served import ServedProcess


def alive(pid: int) -> bool:
    """True while `pid` runs (a zombie, exited but not yet reaped, counts as dead)."""
    try:
        os.kill(pid, 0)
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (ProcessLookupError, FileNotFoundError):
        return False
    return state != "Z"


def check_supervised(server: ServedProcess) -> None:
    """A server the worker runs (`worker.served`): killed, it is started again; stopped, it
    leaves no process and no directory behind."""
    assert server.process is not None and server.prefix is not None
    first, prefix = server.process.pid, server.prefix
    os.kill(first, signal.SIGKILL)
    wait_for(lambda: server.restarts == 1 and server.answers(), what=f"{server.name} again")
    again = server.process.pid
    assert again != first
    server.stop()
    assert not alive(again) and not prefix.exists()
