"""The exit classifier: one table of cases."""

from __future__ import annotations

import pytest

from common.ffmpeg.outcome import (
    Outcome,
    chatter,
    classify_exit,
    error_line,
    logged_error,
    output_header,
)

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


# Lines FFmpeg 5.1 and 9.0 logged at `level+info` (captured from real runs): which are chatter
# kept out of the errors shown, and which says an output's header is written.
INFO_LINES = {
    "[info] Input #0, lavfi, from 'testsrc2=size=160x90:rate=10':": (True, False),
    "[libx264 @ 0x55edc83f30c0] [info] profile High, level 1.0, 4:2:0, 8-bit": (True, False),
    "[info] Output #0, mpegts, to 'udp://127.0.0.1:5999':": (True, True),
    "[info] Output #1, flv, to 'rtmp://127.0.0.1/live/k':": (True, True),
    "[info]   Stream #0:0: Video: h264, yuv420p(progressive), 160x90": (True, False),
    "[out#0/mpegts @ 0x558edd689640] [info] video:10KiB audio:9KiB": (True, False),
    "[hls @ 0x1] [verbose] Opening 'a0.ts' for writing": (True, False),
    "[warning] Output #0, mpegts, to 'x':": (False, False),
    "[tcp @ 0x5614] [error] Connection to tcp://127.0.0.1:1999 failed: Connection refused": (
        False,
        False,
    ),
    "Output #0, mpegts, to 'x':": (False, False),  # not at info level: not FFmpeg's header
}


@pytest.mark.parametrize(("line", "expected"), INFO_LINES.items(), ids=range(len(INFO_LINES)))
def test_info_lines_are_chatter_and_one_says_the_header_is_written(
    line: str, expected: tuple[bool, bool]
) -> None:
    assert (chatter(line), output_header(line)) == expected


# What FFmpeg 5.1 (Debian) and 9.0 (imageio-ffmpeg) wrote when their source was not there, or
# refused them, or an output was (captured from real runs against real and absent servers).
RTMP_IN = "rtmp://127.0.0.1:1999/live/x"
HTTP_IN = "http://127.0.0.1:1990/x.m3u8"
SRT_IN = "srt://127.0.0.1:1998?connect_timeout=1000"
LOST = {
    "5.1 refused": (
        RTMP_IN,
        [
            "[tcp @ 0x5614] [error] Connection to tcp://127.0.0.1:1999?tcp_nodelay=0 failed: "
            "Connection refused",
            "[rtmp @ 0x5614] [error] Cannot open connection tcp://127.0.0.1:1999?tcp_nodelay=0",
            f"[error] {RTMP_IN}: Connection refused",
        ],
    ),
    "5.1 srt caller, no listener": (
        SRT_IN,
        [
            f"[srt @ 0x5640] [error] Connection to {SRT_IN} failed: Input/output error",
            f"[error] {SRT_IN}: Input/output error",
        ],
    ),
    "5.1 playlist not published yet": (
        HTTP_IN,
        [
            "[http @ 0x55b7] [warning] HTTP error 404 Not Found",
            f"[error] {HTTP_IN}: Server returned 404 Not Found",
        ],
    ),
    "5.1 origin down": (HTTP_IN, [f"[error] {HTTP_IN}: Server returned 5XX Server Error reply"]),
    "5.1 mid-stream": (RTMP_IN, [f"[error] {RTMP_IN}: Input/output error"]),
    "9.0 refused": (
        RTMP_IN,
        [
            "[rtmp @ 0x55ac] [error] Cannot open connection tcp://127.0.0.1:1999?tcp_nodelay=0",
            "[in#0 @ 0x55ac] [error] Error opening input: Connection refused",
            f"[error] Error opening input file {RTMP_IN}.",
            "[fatal] Error opening input files: Connection refused",
        ],
    ),
    "9.0 playlist not published yet": (
        HTTP_IN,
        [
            "[in#0 @ 0x5626] [error] Error opening input: Server returned 404 Not Found",
            f"[error] Error opening input file {HTTP_IN}.",
            "[fatal] Error opening input files: Server returned 404 Not Found",
        ],
    ),
    "9.0 mid-stream": (
        RTMP_IN,
        ["[in#0/flv @ 0x5574] [error] Error during demuxing: Input/output error"],
    ),
}
BROKEN = {
    "credentials refused (5.1)": (
        HTTP_IN,
        [f"[error] {HTTP_IN}: Server returned 401 Unauthorized (authorization failed)"],
    ),
    "forbidden (9.0)": (
        HTTP_IN,
        [
            "[in#0 @ 0x5646] [error] Error opening input: Server returned 403 Forbidden "
            "(access denied)",
            "[fatal] Error opening input files: Server returned 403 Forbidden (access denied)",
        ],
    ),
    "an output refused (5.1)": (
        RTMP_IN,
        [
            "[tcp @ 0x55c3] [error] Connection to tcp://127.0.0.1:1935?tcp_nodelay=0 failed: "
            "Connection refused",
            "[error] rtmp://127.0.0.1:1935/live/out: Connection refused",
        ],
    ),
    "an output refused (9.0)": (
        RTMP_IN,
        [
            "[out#0/flv @ 0x5583] [fatal] Error opening output rtmp://127.0.0.1:1935/live/out: "
            "Connection refused",
            "[fatal] Error opening output files: Connection refused",
        ],
    ),
}


@pytest.mark.parametrize(("source", "tail"), LOST.values(), ids=list(LOST))
def test_a_source_that_is_not_there_is_lost_not_failed(source: str, tail: list[str]) -> None:
    report = classify_exit(1, stderr_tail=tail, source=source)
    assert report.outcome is Outcome.SOURCE_LOST, report
    assert report.reason == tail[-1]


@pytest.mark.parametrize(("source", "tail"), BROKEN.values(), ids=list(BROKEN))
def test_refused_credentials_and_failing_outputs_are_failures(source: str, tail: list[str]) -> None:
    assert classify_exit(1, stderr_tail=tail, source=source).outcome is Outcome.FAILED


def test_an_ended_stream_or_no_media_is_a_lost_source_only_for_a_pull() -> None:
    """A pulled stream that ends (its publisher stopped: FFmpeg exits 0) or sends nothing
    until the stall timeout: its source is lost. Without a pulled source, the same exits are
    failures and stalls, as before."""
    assert classify_exit(0, source=RTMP_IN).outcome is Outcome.SOURCE_LOST
    assert classify_exit(1, stalled=True, source=RTMP_IN).outcome is Outcome.SOURCE_LOST
    assert classify_exit(0).outcome is Outcome.FAILED
    assert classify_exit(1, stalled=True).outcome is Outcome.STALLED
    assert classify_exit(1, stderr_tail=LOST["5.1 refused"][1]).outcome is Outcome.FAILED
    stopped = classify_exit(0, stop_requested=True, source=RTMP_IN)
    assert stopped.outcome is Outcome.STOPPED
