"""Which FFmpeg to run: `FFMPEG_BINARY`, else the first real `ffmpeg` on PATH, else
imageio-ffmpeg's build."""

from __future__ import annotations

import os
import shutil
from pathlib import Path


class FfmpegNotFound(RuntimeError):
    pass


def resolve_ffmpeg(configured: str | None = None) -> str:
    """The path of the FFmpeg binary this node runs."""
    if configured:
        found = shutil.which(configured)
        if found is None:
            raise FfmpegNotFound(f"FFMPEG_BINARY={configured} is not an executable")
        return found
    for directory in os.get_exec_path():
        candidate = Path(directory) / "ffmpeg"
        if _executable(candidate) and not _python_wrapper(candidate):
            return str(candidate)
    try:
        import imageio_ffmpeg
    except ImportError as error:
        raise FfmpegNotFound(
            "no ffmpeg on PATH: install one (Debian: ffmpeg) or the `local` extra "
            "(pip install 'streamfleet[local]', which brings imageio-ffmpeg's)"
        ) from error
    return str(imageio_ffmpeg.get_ffmpeg_exe())


def _executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def _python_wrapper(path: Path) -> bool:
    """A Python script named `ffmpeg` (some wheels install one into a virtualenv's bin/): it
    runs FFmpeg as a grandchild, out of reach of our signals. Skipped for a real FFmpeg later
    on the PATH."""
    try:
        with path.open("rb") as handle:
            first = handle.readline(200)
    except OSError:
        return False
    return first.startswith(b"#!") and b"python" in first
