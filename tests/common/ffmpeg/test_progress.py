"""The progress parser on real captured FFmpeg output (tests/fixtures)."""

from __future__ import annotations

from pathlib import Path

import pytest

from common.ffmpeg.progress import ProgressBlock, ProgressParser, RateWindow, advanced, flowing

FIXTURES = Path(__file__).parents[2] / "fixtures"


def blocks(name: str) -> list[ProgressBlock]:
    parser = ProgressParser()
    found = []
    for line in (FIXTURES / name).read_text().splitlines():
        block = parser.feed(line)
        if block is not None:
            found.append(block)
    return found


@pytest.mark.parametrize("fixture", ["progress_ffmpeg5.1.txt", "progress_ffmpeg9.0.txt"])
def test_real_output_parses_into_blocks(fixture: str) -> None:
    parsed = blocks(fixture)
    assert len(parsed) >= 4
    assert parsed[-1].ended
    assert not any(b.ended for b in parsed[:-1])
    last = parsed[-1]
    assert last.frame == 35  # 3.5 s at 10 fps
    assert last.out_time_us is not None and 3_400_000 <= last.out_time_us <= 3_600_000
    assert last.total_size_bytes is not None and last.total_size_bytes > 10_000
    assert last.speed is not None and 0.5 < last.speed < 1.5
    frames = [b.frame for b in parsed if b.frame is not None]
    assert frames == sorted(frames)


def test_ffmpeg51_first_block_has_no_output_yet() -> None:
    first = blocks("progress_ffmpeg5.1.txt")[0]
    assert first == ProgressBlock(
        frame=1,
        fps=0.0,
        bitrate_kbps=None,  # "N/A"
        total_size_bytes=0,
        out_time_us=0,
        dup_frames=0,
        drop_frames=0,
        speed=0.0,  # "   0x"
        ended=False,
    )
    assert not advanced(None, first)  # no output yet: the watchdog is not reset
    assert flowing(first)  # but a frame went through: inputs and outputs are open


@pytest.mark.parametrize(
    ("block", "expected"),
    [
        (ProgressBlock(0, None, None, 0, 0, 0, 0, None, False), False),
        (ProgressBlock(None, None, None, None, None, 0, 0, None, False), False),
        (ProgressBlock(0, None, None, 0, 128_000, 0, 0, None, False), True),  # FFmpeg 9 audio
        (ProgressBlock(1, None, None, 0, 0, 0, 0, None, False), True),
    ],
)
def test_flowing(block: ProgressBlock, expected: bool) -> None:
    assert flowing(block) is expected


def test_padded_values_and_units() -> None:
    parser = ProgressParser()
    for line in ["bitrate= 932.4kbits/s", "speed= 0.8x", "total_size=11656", "out_time_us=N/A"]:
        assert parser.feed(line) is None
    block = parser.feed("progress=continue")
    assert block is not None
    assert (block.bitrate_kbps, block.speed, block.total_size_bytes, block.out_time_us) == (
        932.4,
        0.8,
        11656,
        None,
    )


def test_noise_is_ignored() -> None:
    parser = ProgressParser()
    assert parser.feed("not a key value line") is None
    assert parser.feed("") is None


def _block(size: int | None, out_us: int | None, frame: int = 0) -> ProgressBlock:
    return ProgressBlock(frame, None, None, size, out_us, 0, 0, None, False)


@pytest.mark.parametrize(
    ("previous", "current", "expected"),
    [
        (None, _block(0, 0, frame=10), False),  # frames fed, nothing out yet
        (None, _block(0, 128_000), True),  # media time muxed
        (None, _block(100, None), True),
        (_block(100, 1000), _block(100, 1000, frame=99), False),  # stuck output
        (_block(100, 1000), _block(200, 1000), True),
        (_block(None, None), _block(None, None), False),  # counters not available
    ],
)
def test_advanced_looks_at_output_only(
    previous: ProgressBlock | None, current: ProgressBlock, expected: bool
) -> None:
    assert advanced(previous, current) is expected


def test_rate_window_measures_bitrate_in_media_time() -> None:
    window = RateWindow(window=3)
    assert window.bitrate_kbps() is None
    for second in range(6):  # 100 kB per media second = 800 kbit/s
        window.add(_block(100_000 * second, 1_000_000 * second))
    assert window.bitrate_kbps() == pytest.approx(800.0)


def test_rate_window_on_real_output() -> None:
    window = RateWindow()
    for block in blocks("progress_ffmpeg9.0.txt"):
        window.add(block)
    rate = window.bitrate_kbps()
    # 200 kbit/s video + 64 kbit/s audio + MPEG-TS overhead
    assert rate is not None and 200 < rate < 450


@pytest.mark.parametrize(
    ("major", "period"), [(5, 1.0), (6, 1.0), (7, 0.25), (9, 0.25), (None, 0.25)]
)
def test_progress_period_suits_the_ffmpeg_build(major: int | None, period: float) -> None:
    from common.ffmpeg.probe import FfmpegCapabilities

    assert FfmpegCapabilities("ffmpeg", "x", major).progress_period_s() == period
    # Killed at once when stopped (nothing to finish): no stop waits for a report.
    assert FfmpegCapabilities("ffmpeg", "x", major).progress_period_s(clean_end=False) == 1.0
