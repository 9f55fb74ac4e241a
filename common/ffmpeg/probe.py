"""What a node's FFmpeg can really do (parsers pure, `probe` runs the binary).

Version, encoders, decoders, protocols and hardware accelerations come from FFmpeg's own
listings; the encoders a restream can ask for are then each tried with a tiny real encode,
so that a build listing an encoder it cannot use (a U30 encoder without the card, a library
missing at run time) does not attract restreams it would fail.
"""

from __future__ import annotations

import re
import subprocess
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from common.ffmpeg.outcome import error_line

_VERSION = re.compile(r"ffmpeg version (\S+)")
_MAJOR = re.compile(r"(\d+)\.(\d+)")
_CODEC_LINE = re.compile(r"^\s*([VAS][A-Z.]{5})\s+(\S+)\s")
_VIDEO_STREAM = re.compile(r"Stream #\d+:\d+.*?: Video: (\w+)")
SOURCE_PROBE_TIMEOUT_S = 15.0
PROBE_TIMEOUT_S = 20.0
# FFmpeg 7 moved to a threaded architecture whose main loop wakes (to report progress, and to
# notice "q" or SIGINT) once per -stats_period: a shorter period keeps stops prompt where a
# stop asks FFmpeg to finish its outputs. Where it is killed at once (nothing to finish), the
# longer period spares the node three progress reports a second per FFmpeg.
THREADED_MAJOR = 7
DEFAULT_PROGRESS_PERIOD_S = 1.0
THREADED_PROGRESS_PERIOD_S = 0.25
# The encoders restreams can ask for, and how to try each (video or audio).
VERIFIED_ENCODERS = {
    "libx264": "video",
    "libx265": "video",
    "mpsoc_vcu_h264": "video",
    "mpsoc_vcu_hevc": "video",
    "aac": "audio",
    "libmp3lame": "audio",
}


@dataclass(frozen=True)
class FfmpegCapabilities:
    binary: str
    version: str
    major: int | None
    encoders: frozenset[str] = field(default_factory=frozenset)  # those that really work
    listed_encoders: frozenset[str] = field(default_factory=frozenset)
    decoders: frozenset[str] = field(default_factory=frozenset)
    protocols: frozenset[str] = field(default_factory=frozenset)
    hwaccels: frozenset[str] = field(default_factory=frozenset)
    failed_encoders: dict[str, str] = field(default_factory=dict)  # name -> why

    def progress_period_s(self, *, clean_end: bool = True) -> float:
        """The -stats_period that suits this build (see THREADED_MAJOR), for a restream
        whose stop lets FFmpeg finish its outputs (`clean_end`) or kills it at once."""
        threaded = self.major is None or self.major >= THREADED_MAJOR  # git builds are recent
        if threaded and clean_end:
            return THREADED_PROGRESS_PERIOD_S
        return DEFAULT_PROGRESS_PERIOD_S

    def as_dict(self) -> dict[str, object]:
        """What the node advertises. Full encoder and decoder lists are long: only the ones
        that matter to restreams (and to the U30) are listed."""
        return {
            "binary": self.binary,
            "version": self.version,
            "major": self.major,
            "encoders": sorted(self.encoders),
            "failed_encoders": dict(sorted(self.failed_encoders.items())),
            "decoders": sorted(d for d in self.decoders if d in _INTERESTING_DECODERS),
            "protocols": sorted(self.protocols),
            "hwaccels": sorted(self.hwaccels),
        }


_INTERESTING_DECODERS = frozenset(
    {"h264", "hevc", "aac", "mp3", "mpsoc_vcu_h264", "mpsoc_vcu_hevc", "vp8", "vp9", "av1"}
)


def parse_version(text: str) -> tuple[str, int | None]:
    """("5.1.9-0+deb12u1", 5) from `ffmpeg -version`; builds named after a git ref get None."""
    match = _VERSION.search(text)
    version = match.group(1) if match else "unknown"
    major_match = _MAJOR.search(version.lstrip("n"))
    major = int(major_match.group(1)) if major_match and version[0] in "n0123456789" else None
    return version, major


def parse_codecs(text: str) -> frozenset[str]:
    """Names from `ffmpeg -encoders` / `-decoders` output (lines like ` V....D libx264  ...`)."""
    names = set()
    for line in text.splitlines():
        match = _CODEC_LINE.match(line)
        if match and match.group(2) != "=":
            names.add(match.group(2))
    return frozenset(names)


def parse_protocols(text: str) -> frozenset[str]:
    """Protocols from `ffmpeg -protocols` that work both ways or for input or output."""
    names = set()
    for line in text.splitlines():
        word = line.strip()
        if word and not word.endswith(":") and " " not in word:
            names.add(word)
    return frozenset(names)


def with_rtsp(protocols: frozenset[str], binary: str) -> frozenset[str]:
    """`protocols`, with `rtsp` (and `rtsps` where TLS is) if FFmpeg has its RTSP demuxer:
    RTSP is a format in FFmpeg, not a protocol, so `-protocols` never lists it."""
    try:
        text = _run_for(5.0, binary, "-h", "demuxer=rtsp")[1]
    except subprocess.TimeoutExpired:
        return protocols
    if "Demuxer rtsp" not in text:
        return protocols
    return protocols | {"rtsp"} | ({"rtsps"} if "tls" in protocols else set())


def parse_hwaccels(text: str) -> frozenset[str]:
    lines = [line.strip() for line in text.splitlines()]
    if "Hardware acceleration methods:" not in lines:
        return frozenset()
    start = lines.index("Hardware acceleration methods:") + 1
    return frozenset(line for line in lines[start:] if line)


def _run(binary: str, *args: str) -> tuple[int, str]:
    return _run_for(PROBE_TIMEOUT_S, binary, *args)


def try_encoder(binary: str, name: str, kind: str) -> str | None:
    """Encode a fraction of a second with `name`; None if it worked, else FFmpeg's error."""
    source = (
        ["-f", "lavfi", "-i", "testsrc2=size=256x144:rate=10:duration=0.3"]
        if kind == "video"
        else ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=0.3"]
    )
    flag = "-c:v" if kind == "video" else "-c:a"
    # A U30 encoder is tried on device 0: the card must be there and usable.
    device = ["-xlnx_hwdev", "0"] if name.startswith("mpsoc_vcu_") else []
    try:
        code, output = _run(
            binary, "-loglevel", "error", *device, *source, flag, name, "-f", "null", "-"
        )
    except subprocess.TimeoutExpired:
        return "timed out"
    return None if code == 0 else (error_line(output.splitlines()) or f"exit code {code}")


def probe(binary: str) -> FfmpegCapabilities:
    """Ask `binary` what it is and what it can do, and try the encoders that matter."""
    version, major = parse_version(_run(binary, "-version")[1])
    listed = parse_codecs(_run(binary, "-encoders")[1])
    candidates = {name: kind for name, kind in VERIFIED_ENCODERS.items() if name in listed}
    with ThreadPoolExecutor(max_workers=4) as pool:
        tried = dict(
            zip(
                candidates,
                pool.map(lambda item: try_encoder(binary, *item), candidates.items()),
                strict=True,
            )
        )
    failed = {name: error for name, error in tried.items() if error is not None}
    return FfmpegCapabilities(
        binary=binary,
        version=version,
        major=major,
        encoders=frozenset(candidates) - frozenset(failed),
        listed_encoders=listed,
        decoders=parse_codecs(_run(binary, "-decoders")[1]),
        protocols=with_rtsp(parse_protocols(_run(binary, "-protocols")[1]), binary),
        hwaccels=parse_hwaccels(_run(binary, "-hwaccels")[1]),
        failed_encoders=failed,
    )


def parse_video_codec(text: str) -> str | None:
    """The codec of the first video stream FFmpeg lists for its input (h264, hevc, ...)."""
    match = _VIDEO_STREAM.search(text)
    return match.group(1) if match else None


def source_video_codec(
    binary: str, input_args: list[str], timeout_s: float = SOURCE_PROBE_TIMEOUT_S
) -> str | None:
    """Open the input as the restream would and read its video codec; None if it cannot be
    opened in time (the restream's own FFmpeg will then say why). FFmpeg lists the input's
    streams as soon as it has opened it: that line is all we wait for, so a live source that
    never ends (UDP, say) costs no more than its opening."""
    process = subprocess.Popen(
        [binary, "-hide_banner", "-nostdin", *input_args, "-f", "null", "-"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        errors="replace",
    )
    deadline = threading.Timer(timeout_s, process.kill)
    deadline.start()
    try:
        assert process.stderr is not None
        for line in process.stderr:
            codec = parse_video_codec(line)
            if codec is not None or line.startswith(("Output #", "Stream mapping:")):
                return codec
        return None
    finally:
        deadline.cancel()
        process.kill()
        process.wait()


def _run_for(timeout_s: float, binary: str, *args: str) -> tuple[int, str]:
    result = subprocess.run(
        [binary, "-hide_banner", *args],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    return result.returncode, result.stdout + result.stderr
