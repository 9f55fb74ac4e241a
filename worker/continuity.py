"""`python -m worker.continuity SPEC`: one restream with continuity, run as one process.

The supervisor runs it as it runs an FFmpeg (its own process group, killed whole when fenced;
`q` on its stdin and SIGINT reach the output stage): it starts a stage per input and the slate
(`common.ffmpeg.continuity`), the input switch, and the output stage, whose progress it passes
on with three lines more per report — `on_air`, `on_air_since`, `on_air_reason` — and whose
stderr is its own. It exits as the output stage exits; the stages go with it.

The input switch (`worker.switch`) chooses what is on air. A stage that exits (its source
gone, say) is started again after a pause that grows to 2 s: trying a URL costs little, and a
primary that returns is on air again that much sooner; one that stops delivering is started
afresh. With checks, a stage's filters say when its picture is black or still or its sound
silent, and the switch counts that input as lost.
"""

from __future__ import annotations

import ctypes
import http.client
import json
import os
import re
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

from common import outbound
from common.ffmpeg.continuity import with_port
from common.ffmpeg.outcome import chatter
from worker.switch import SLATE, Switch

RESTART_S = (0.5, 1.0, 2.0)  # a stage tries its source again this soon (it costs little)
WAIT_S = 10.0  # a stage that has not delivered since it started is started afresh after this
PR_SET_PDEATHSIG = 1
IMAGE_BYTES = 10 << 20  # a slate image, at most
IMAGE_TIMEOUT_S = 10.0
IMAGE_KINDS = {b"\x89PNG\r\n\x1a\n": "png", b"\xff\xd8\xff": "jpg"}
# What a checking stage's filters log (`common.ffmpeg.continuity.checking_output`).
SIGNS = re.compile(r"\b(black|freeze|silence)_(start|end)\b")
CHECKED = {"black": "black", "freeze": "frozen", "silence": "silent"}
SAID = {"black": "black", "frozen": "frozen", "silent": "without sound"}
LEVEL = re.compile(r"^(?:\[[^\]]* @ [^\]]*\] )?\[(?:warning|error|fatal|panic)\] ")


class Stage:
    """One stage's FFmpeg, started again whenever it exits, and ended (to start afresh) when it
    stops delivering: FFmpeg left playing a source that went away and came back sends it in
    bursts, a fresh one at once. One that never delivered is given `WAIT_S` to."""

    def __init__(self, name: str, argv: list[str]) -> None:
        self.name = name
        self.argv = argv
        self.process: subprocess.Popen[bytes] | None = None
        self.failures = 0
        self.due = 0.0
        self.started = 0.0
        self.delivered = False  # by the process running now
        self.error = deque[str](maxlen=1)
        self.seen: dict[str, float] = {}  # "black"|"frozen"|"silent": since when (checks)
        self.held = False  # not to be started yet (the slate, while its image is fetched)

    def keep(self, delivering: bool) -> None:
        if self.held:
            return
        now = time.monotonic()
        if delivering:
            self.failures, self.delivered = 0, True
        running = self.process is not None and self.process.poll() is None
        if running and not delivering and (self.delivered or now - self.started > WAIT_S):
            self.end()  # gone silent: start afresh (after the pause below)
            running = False
        if running:
            return
        if self.process is not None:  # it exited: start again after a pause
            self.process = None
            self.due = now + RESTART_S[min(self.failures, len(RESTART_S) - 1)]
            self.failures += 1
        if now >= self.due:
            self.started, self.delivered, self.seen = now, False, {}
            self.process = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                preexec_fn=_die_with_parent,  # noqa: PLW1509  (only prctl: no locks taken)
            )
            threading.Thread(target=self._read_errors, args=(self.process,), daemon=True).start()

    def _read_errors(self, process: subprocess.Popen[bytes]) -> None:
        assert process.stderr is not None
        for line in process.stderr:
            self.heard(line.decode(errors="replace").strip(), time.monotonic())

    def heard(self, line: str, now: float) -> None:
        """A line of the stage's stderr: what its checks saw, or else an error worth showing."""
        signs = set(SIGNS.findall(line))
        for kind, what in CHECKED.items():
            if (kind, "end") in signs:  # blackdetect's summary line names both: it ended
                self.seen.pop(what, None)
            elif (kind, "start") in signs:
                self.seen.setdefault(what, now)
        if line and not signs and not chatter(line):
            self.error.append(LEVEL.sub("", line)[:300])

    def impairment(self, checks: dict[str, int], now: float) -> str | None:
        """What makes the input useless though it delivers ("black for over 2000 ms"), if
        anything. Black is timed here (`blackdetect` marks its start); frozen and silent are
        reported by their filters once they lasted."""
        for what, since in list(self.seen.items()):
            if what in checks and (what != "black" or now - since >= checks[what] / 1000):
                return f"{SAID[what]} for over {checks[what]} ms"
        return None

    def end(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


LIBC = ctypes.CDLL(None, use_errno=True)  # loaded here: a forked child must not load it


def _die_with_parent() -> None:
    """In the child, before exec: killed when this process dies (nothing else runs there, so
    no lock another thread held at the fork is taken)."""
    LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def fetch_image(url: str, work: Path, *, allow_private: bool) -> Path | str:
    """The slate's image, kept in `work`; or why it could not be (a PNG or a JPEG, over
    http(s), of at most `IMAGE_BYTES`, from an address `common.outbound` allows)."""
    try:
        reply = outbound.request(
            "GET",
            url,
            timeout_s=IMAGE_TIMEOUT_S,
            read_at_most=IMAGE_BYTES + 1,
            allow_private=allow_private,
        )
    except (outbound.Refused, OSError, http.client.HTTPException) as error:
        return str(error) or type(error).__name__
    if reply.status != 200:
        return f"HTTP {reply.status}"
    body = reply.body
    if len(body) > IMAGE_BYTES:
        return f"larger than {IMAGE_BYTES >> 20} MB"
    kind = next((k for magic, k in IMAGE_KINDS.items() if body.startswith(magic)), None)
    if kind is None:
        return "neither a PNG nor a JPEG"
    image = work / f"slate.{kind}"
    image.write_bytes(body)
    return image


def _with_image(spec: dict[str, Any], slate: Stage, work: Path, port: int) -> None:
    """The slate shows the operator's image once it is fetched; a black card if it cannot be."""
    try:
        image = fetch_image(
            spec["slate_image_url"], work, allow_private=bool(spec.get("allow_private"))
        )
        if isinstance(image, str):
            print(
                f"slate image {spec['slate_image_url']} not shown: {image}; a black card instead",
                file=sys.stderr,
                flush=True,
            )
        else:
            argv = _placed(spec["slate_image"], work, image)
            slate.argv = [spec["ffmpeg"], *with_port(argv, port)]
    finally:
        slate.held = False


def _placed(argv: list[str], work: Path, image: Path | None = None) -> list[str]:
    """`argv` with the files the runner keeps in `work` in place of their names."""
    files = {"{slate_text_file}": work / "slate.txt", "{slate_image_file}": image}
    placed = list(argv)
    for name, path in files.items():
        if path is not None:
            placed = [part.replace(name, str(path)) for part in placed]
    return placed


def run(spec: dict[str, Any]) -> int:
    ffmpeg = spec["ffmpeg"]
    names = [name for name, _ in spec["inputs"]] + [SLATE]
    work = Path(tempfile.mkdtemp(prefix="sf-continuity-"))
    if spec.get("slate_text"):
        (work / "slate.txt").write_text(spec["slate_text"])
    slate_argv = _placed(spec["slate"], work)
    sockets = {}
    for name in names:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        sock.bind(("127.0.0.1", 0))
        sock.setblocking(False)
        sockets[name] = sock
    out = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        output_port = probe.getsockname()[1]
    switch = Switch(
        names,
        loss_s=spec["loss_ms"] / 1000,
        failback_s=spec["failback_s"],
        send=lambda data: out.sendto(data, ("127.0.0.1", output_port)),
    )
    argvs = dict(spec["inputs"]) | {SLATE: slate_argv}
    stages = {
        name: Stage(name, [ffmpeg, *with_port(argvs[name], sockets[name].getsockname()[1])])
        for name in names
    }
    if spec.get("slate_image_url"):
        stages[SLATE].held = True
        threading.Thread(
            target=_with_image,
            args=(spec, stages[SLATE], work, sockets[SLATE].getsockname()[1]),
            daemon=True,
        ).start()
    output = subprocess.Popen(
        [ffmpeg, *with_port(spec["output"], output_port)],
        stdout=subprocess.PIPE,
        preexec_fn=_die_with_parent,  # noqa: PLW1509
    )
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda number, _frame: output.send_signal(number))
    stopping = threading.Event()
    checks = spec.get("checks") or {}
    threading.Thread(
        target=_forward, args=(switch, sockets, stages, checks, stopping), daemon=True
    ).start()
    progress = threading.Thread(target=_progress, args=(output, switch, stages), daemon=True)
    progress.start()
    code = output.wait()
    progress.join(2)
    stopping.set()
    for stage in stages.values():
        stage.end()
    shutil.rmtree(work, ignore_errors=True)
    return code


def _forward(
    switch: Switch,
    sockets: dict[str, socket.socket],
    stages: dict[str, Stage],
    checks: dict[str, int],
    stopping: threading.Event,
) -> None:
    selector = selectors.DefaultSelector()
    for name, sock in sockets.items():
        selector.register(sock, selectors.EVENT_READ, name)
    next_keep = 0.0
    while not stopping.is_set():
        for key, _ in selector.select(0.05):
            readable = sockets[key.data]
            while True:
                try:
                    datagram = readable.recv(65536)
                except BlockingIOError:
                    break
                switch.received(key.data, datagram)
        switch.tick()
        now = time.monotonic()
        if now >= next_keep:
            next_keep = now + 0.2
            for name, stage in stages.items():
                stage.keep(now - switch.last.get(name, -1e9) < switch.loss_s)
                if name != SLATE and checks:
                    switch.impair(name, stage.impairment(checks, now))


def _progress(output: subprocess.Popen[bytes], switch: Switch, stages: dict[str, Stage]) -> None:
    """The output stage's progress, passed on with what is on air before each report's end."""
    assert output.stdout is not None
    sink = sys.stdout.buffer
    for line in output.stdout:
        if line.startswith(b"progress="):
            reason = switch.reason
            silent = [s for n, s in stages.items() if n != switch.on_air and s.error]
            if switch.on_air == SLATE and silent:
                reason += f" ({silent[0].name}: {silent[0].error[-1]})"
            sink.write(
                f"on_air={switch.on_air}\non_air_since={switch.since:.3f}\n"
                f"on_air_reason={reason.replace(chr(10), ' ')}\n".encode()
            )
        sink.write(line)
        if line.startswith(b"progress="):
            sink.flush()


def main() -> None:
    code = run(json.loads(sys.argv[1]))
    if code < 0:  # killed by a signal: end the same way, as FFmpeg would have
        signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    sys.exit(code)


if __name__ == "__main__":
    main()
