"""Why an FFmpeg process ended: one pure classifier used by the supervisor and its tests."""

from __future__ import annotations

import re
import signal
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum


class Outcome(StrEnum):
    STOPPED = "stopped"  # we asked it to stop (whatever the exit code or the signal it took)
    FAILED = "failed"  # it exited on its own: an error, or its input ended
    KILLED = "killed"  # a signal we did not send (the OOM killer, an operator's kill -9)
    STALLED = "stalled"  # we killed it: no progress for stall_timeout_s
    FENCED = "fenced"  # we killed it: the node lost its lease
    # Its pulled source is not there (refused, timed out, ended, no media): not the
    # definition's fault; the restream waits for the source rather than fail.
    SOURCE_LOST = "source lost"


@dataclass(frozen=True)
class ExitReport:
    outcome: Outcome
    reason: str  # one line an operator can act on


# FFmpeg run with `-loglevel level+...` tags each line with its level.
_LEVEL_TAGS = ("[fatal]", "[panic]", "[error]")
_ERROR_WORDS = ("error", "failed", "refused", "invalid", "not found", "timed out")


def error_line(stderr_tail: Sequence[str]) -> str | None:
    """The most telling line of FFmpeg's stderr: the last error-level line, else the last line
    that reads like an error, else the last line."""
    lines = [line.strip() for line in stderr_tail if line.strip()]
    for markers in (_LEVEL_TAGS, _ERROR_WORDS):
        for line in reversed(lines):
            if any(marker in line.lower() for marker in markers):
                return line
    return lines[-1] if lines else None


def logged_error(stderr_tail: Sequence[str]) -> str | None:
    """The last line FFmpeg logged at error level or worse: what a process that still runs has
    to say that is an error. Its warnings are not (a deprecated pixel format, a timestamp
    fixed up), nor is a line that merely contains an error word."""
    for line in reversed(stderr_tail):
        if any(tag in line.lower() for tag in _LEVEL_TAGS):
            return line.strip()
    return None


# What FFmpeg says when a network source is not there, for now: it may come back.
_SOURCE_LOSS = (
    "connection refused",
    "timed out",
    "timeout",
    "input/output error",
    "no route to host",
    "network is unreachable",
    "host is unreachable",
    "connection reset",
    "end of file",
    "stream ends prematurely",
    "404 not found",
    "5xx server error",
    "name resolution",
)
# How FFmpeg names a failure of its input rather than of an output (FFmpeg 7+; before, the
# line starts with the input's URL).
_INPUT_MARKERS = ("error opening input", "error during demuxing", "in#0")


def classify_exit(
    returncode: int,
    *,
    stop_requested: bool = False,
    stalled: bool = False,
    fenced: bool = False,
    stderr_tail: Sequence[str] = (),
    source: str | None = None,
) -> ExitReport:
    """Classify one exit. `returncode` is Popen's: negative means killed by that signal.
    `source`: the URL the restream pulls from, if it pulls one: an exit that says that source
    is not there (refused, timed out, ended its stream, sent nothing) is SOURCE_LOST, unlike a
    broken definition (bad credentials, an unknown option), which FAILED."""
    if fenced:
        return ExitReport(Outcome.FENCED, "killed: the node could not renew its lease")
    if stop_requested:
        return ExitReport(Outcome.STOPPED, "stopped on request")
    if stalled:
        if source is not None:
            return ExitReport(Outcome.SOURCE_LOST, "no media within the stall timeout")
        return ExitReport(Outcome.STALLED, "killed: no progress within the stall timeout")
    if returncode < 0:
        name = _signal_name(-returncode)
        return ExitReport(Outcome.KILLED, f"killed by {name}")
    return _exited(returncode, stderr_tail, source)


def _exited(returncode: int, stderr_tail: Sequence[str], source: str | None) -> ExitReport:
    """An exit FFmpeg chose: its input ended, its source is not there, or it failed."""
    line = error_line(stderr_tail)
    if returncode == 0:
        ended = f"input ended{': ' + line if line else ''}"
        return ExitReport(Outcome.SOURCE_LOST if source else Outcome.FAILED, ended)
    lost = _source_loss(stderr_tail, source) if source else None
    if lost is not None:
        return ExitReport(Outcome.SOURCE_LOST, lost)
    return ExitReport(Outcome.FAILED, line or f"exited with code {returncode}")


def _source_loss(stderr_tail: Sequence[str], source: str) -> str | None:
    """The line saying the source is not there, if one of FFmpeg's errors about its input
    says so."""
    url = source.lower()
    for line in reversed(stderr_tail):
        text = line.lower()
        if not any(tag in text for tag in _LEVEL_TAGS):
            continue
        about_input = url in text or any(marker in text for marker in _INPUT_MARKERS)
        if about_input and any(word in text for word in _SOURCE_LOSS):
            return line.strip()
    return None


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


# FFmpeg's lines below warning level (it runs at `level+info`): what it tells, not what fails.
_CHATTER = re.compile(r"^(?:\[[^\]]* @ [^\]]*\] )?\[(?:info|verbose|debug|trace)\] ")
# Printed as an output's header is written: its streams are set up and media is on its way.
_OUTPUT_HEADER = re.compile(r"^\[info\] Output #\d+, [^,]+, to '")


def chatter(line: str) -> bool:
    """A line FFmpeg logged below warning level: kept out of what is shown as its errors."""
    return _CHATTER.match(line) is not None


def output_header(line: str) -> bool:
    """The line FFmpeg logs when an output's header is written: the first sign that media
    flows, before its first progress report (which FFmpeg 7 and later make wait a period)."""
    return _OUTPUT_HEADER.match(line) is not None


_TEE_FAILURE = re.compile(
    r"Slave muxer #(\d+) failed: (.*?)(?:, continuing with \d+/\d+ slaves)?\.?$"
)


def failed_output(line: str) -> tuple[int, str] | None:
    """(index, error) when a stderr line says one output of the tee muxer failed."""
    match = _TEE_FAILURE.search(line)
    return (int(match.group(1)), match.group(2)) if match else None


# FFmpeg's RTMP and RTSP listeners warn about a publisher with the wrong stream key (the path)
# and then take its stream anyway.
_WRONG_PUBLISHER = re.compile(
    r"Unexpected stream (\S+), expecting|WARNING: Path (\S+) differs from expected"
)


def wrong_publisher(line: str) -> str | None:
    """The stream name a publisher used, when a stderr line says it is not the expected one."""
    match = _WRONG_PUBLISHER.search(line)
    return (match.group(1) or match.group(2)) if match else None
