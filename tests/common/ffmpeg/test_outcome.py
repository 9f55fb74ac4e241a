"""The exit classifier: one table of cases."""

from __future__ import annotations

import pytest

from common.ffmpeg.outcome import Outcome, classify_exit, error_line, logged_error

REFUSED_TAIL = [
    "[tcp @ 0x1] [error] Connection to tcp://127.0.0.1:1?tcp_nodelay=0 failed: Connection refused",
    "[rtmp @ 0x2] [error] Cannot open connection tcp://127.0.0.1:1?tcp_nodelay=0",
    "[in#0 @ 0x3] [error] Error opening input: Connection refused",
    "[error] Error opening input file rtmp://127.0.0.1:1/live/x.",
    "[fatal] Error opening input files: Connection refused",
]


@pytest.mark.parametrize(
    ("returncode", "flags", "outcome"),
    [
        (255, {"stop_requested": True}, Outcome.STOPPED),  # FFmpeg's exit after SIGINT
        (0, {"stop_requested": True}, Outcome.STOPPED),  # after "q"
        (-9, {"stop_requested": True}, Outcome.STOPPED),  # SIGKILL after the grace period
        (-9, {"stalled": True}, Outcome.STALLED),
        (-9, {"fenced": True}, Outcome.FENCED),
        (-9, {"fenced": True, "stop_requested": True}, Outcome.FENCED),
        (-9, {}, Outcome.KILLED),
        (1, {}, Outcome.FAILED),
        (145, {}, Outcome.FAILED),
        (0, {}, Outcome.FAILED),  # the input ended: a live restream should not
    ],
)
def test_classify(returncode: int, flags: dict[str, bool], outcome: Outcome) -> None:
    report = classify_exit(
        returncode,
        stop_requested=flags.get("stop_requested", False),
        stalled=flags.get("stalled", False),
        fenced=flags.get("fenced", False),
    )
    assert report.outcome is outcome


def test_failure_reason_is_ffmpegs_own_error_line() -> None:
    report = classify_exit(145, stop_requested=False, stderr_tail=REFUSED_TAIL)
    assert report.reason == "[fatal] Error opening input files: Connection refused"


def test_killed_names_the_signal() -> None:
    assert classify_exit(-9, stop_requested=False).reason == "killed by SIGKILL"


def test_ended_input_says_so() -> None:
    report = classify_exit(0, stop_requested=False, stderr_tail=["[warning] something"])
    assert report.reason.startswith("input ended")


@pytest.mark.parametrize(
    ("tail", "expected"),
    [
        ([], None),
        (["plain line"], "plain line"),
        (["x failed here", "[warning] later"], "x failed here"),
        (["[error] first", "Connection refused later"], "[error] first"),
        (["  ", "last"], "last"),
    ],
)
def test_error_line(tail: list[str], expected: str | None) -> None:
    assert error_line(tail) == expected


@pytest.mark.parametrize(
    ("tail", "expected"),
    [
        ([], None),
        (["[swscaler @ 0x1] [warning] deprecated pixel format used"], None),
        (["[mpegts @ 0x1] [warning] Non-monotonic DTS: error corrected"], None),
        (["[tee @ 0x2] [error] Slave muxer #1 failed: Broken pipe", "[warning] later"],
         "[tee @ 0x2] [error] Slave muxer #1 failed: Broken pipe"),
    ],
)  # fmt: skip
def test_a_running_process_reports_only_what_it_logged_as_an_error(
    tail: list[str], expected: str | None
) -> None:
    assert logged_error(tail) == expected
