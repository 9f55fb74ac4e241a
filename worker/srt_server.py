"""An SRT server module on this node: the router (`worker.srt_router`, on libsrt) run and
supervised as a process of its own (`worker.served`)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from pydantic import ValidationError

from common.definitions.server import ServerSpec
from common.live import StreamStats
from worker import libsrt
from worker.served import ServedProcess

STATS_FILE = "stats.json"


class SrtServer(ServedProcess):
    name = "srt-router"
    transport = "UDP"

    def __init__(self, address: str, spec: ServerSpec) -> None:
        super().__init__(address, spec.port)
        self.spec = spec

    def missing(self) -> str | None:
        return libsrt.missing()

    def prepare(self, prefix: Path) -> list[str]:
        spec = self.spec
        argv = [
            sys.executable, "-m", "worker.srt_router",
            "--address", self.address,
            "--port", str(spec.port),
            "--name", spec.name,
            "--latency-ms", str(spec.latency_ms),
            "--maxbw", str(spec.maxbw),
            "--timeout-s", str(spec.timeout_s),
            "--stats", str(prefix / STATS_FILE),
        ]  # fmt: skip
        if spec.rcvbuf:
            argv += ["--rcvbuf", str(spec.rcvbuf)]
        return argv

    def spawning(self) -> dict[str, str] | None:
        """A fresh start: no statistics until it listens; its passphrase in its environment,
        not on its command line (which `ps` shows)."""
        if self.prefix is not None:
            (self.prefix / STATS_FILE).unlink(missing_ok=True)
        return {**os.environ, "SRT_PASSPHRASE": self.spec.passphrase or ""}

    def answers(self) -> bool:
        """It writes its first statistics once it listens."""
        return self.prefix is not None and (self.prefix / STATS_FILE).exists()

    def streams(self) -> list[StreamStats]:
        if self.prefix is None:
            return []
        try:
            document = json.loads((self.prefix / STATS_FILE).read_text())
            return [StreamStats.model_validate(s) for s in document["streams"]]
        except (OSError, ValueError, KeyError, ValidationError):
            return []
