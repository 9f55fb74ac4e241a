"""Starting FFmpeg and ending it: in its own process group, tied to this worker's life, with
the directories it writes into prepared before and removed after."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
from dataclasses import dataclass
from pathlib import Path

from common.processes import pdeathsig_prefix, set_parent_death_signal


@dataclass(frozen=True)
class Spawner:
    """Starts FFmpeg in its own process group, set to die with this process (see
    `common.processes`): through setpriv when available, else with a preexec_fn."""

    prefix: tuple[str, ...]

    @classmethod
    def detect(cls) -> Spawner:
        return cls(pdeathsig_prefix("KILL"))

    async def spawn(self, argv: list[str]) -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            *self.prefix,
            *argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,  # its own process group: we kill the whole group
            preexec_fn=None if self.prefix else set_parent_death_signal,
        )


def kill_group(process: asyncio.subprocess.Process) -> None:
    """SIGKILL the process and every process of its group (FFmpeg's children too)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


def prepare_workdirs(directories: tuple[str, ...]) -> None:
    """Empty and create them: no segment of an earlier run is served or left behind."""
    for directory in directories:
        shutil.rmtree(directory, ignore_errors=True)
        Path(directory).mkdir(parents=True)


def remove_workdirs(directories: tuple[str, ...]) -> None:
    """Remove them, and their parent when that leaves it empty."""
    for directory in directories:
        shutil.rmtree(directory, ignore_errors=True)
        with contextlib.suppress(OSError):
            Path(directory).parent.rmdir()
