"""Which FFmpeg to run: `FFMPEG_BINARY`, else `ffmpeg` on PATH, else imageio-ffmpeg's build."""

from __future__ import annotations

import shutil
import sys
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
    found = shutil.which("ffmpeg")
    if found is not None and not _is_own_console_script(Path(found)):
        return found
    import imageio_ffmpeg

    return str(imageio_ffmpeg.get_ffmpeg_exe())


def _is_own_console_script(path: Path) -> bool:
    """A Python wrapper script in this environment's bin/ (some wheels install one named
    `ffmpeg`): it runs FFmpeg as a grandchild, out of reach of our signals. Skip it."""
    try:
        in_own_env = path.resolve().parent == Path(sys.executable).parent.resolve()
        with path.open("rb") as handle:
            return in_own_env and handle.read(2) == b"#!"
    except OSError:
        return False
