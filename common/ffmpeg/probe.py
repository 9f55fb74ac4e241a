"""What a node's FFmpeg can do: version and encoders (parsers pure, `probe` runs the binary)."""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass, field

_VERSION = re.compile(r"ffmpeg version (\S+)")
_MAJOR = re.compile(r"(\d+)\.(\d+)")
_CODEC_LINE = re.compile(r"^\s*([VAS][A-Z.]{5})\s+(\S+)\s")
PROBE_TIMEOUT_S = 20.0
# FFmpeg 7 moved to a threaded architecture whose main loop wakes (to report progress, and to
# notice "q" or SIGINT) once per -stats_period: a shorter period keeps stops prompt.
THREADED_MAJOR = 7
DEFAULT_PROGRESS_PERIOD_S = 1.0
THREADED_PROGRESS_PERIOD_S = 0.25


@dataclass(frozen=True)
class FfmpegCapabilities:
    binary: str
    version: str
    major: int | None
    encoders: frozenset[str] = field(default_factory=frozenset)

    def progress_period_s(self) -> float:
        """The -stats_period that suits this build (see THREADED_MAJOR)."""
        threaded = self.major is None or self.major >= THREADED_MAJOR  # git builds are recent
        return THREADED_PROGRESS_PERIOD_S if threaded else DEFAULT_PROGRESS_PERIOD_S

    def as_dict(self) -> dict[str, object]:
        return {
            "binary": self.binary,
            "version": self.version,
            "major": self.major,
            "encoders": sorted(self.encoders),
        }


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


def _run(binary: str, *args: str) -> str:
    result = subprocess.run(
        [binary, "-hide_banner", *args],
        capture_output=True,
        text=True,
        timeout=PROBE_TIMEOUT_S,
        check=False,
    )
    return result.stdout + result.stderr


def probe(binary: str) -> FfmpegCapabilities:
    """Ask `binary` what it is and what it can encode."""
    version, major = parse_version(_run(binary, "-version"))
    return FfmpegCapabilities(
        binary=binary,
        version=version,
        major=major,
        encoders=parse_codecs(_run(binary, "-encoders")),
    )
