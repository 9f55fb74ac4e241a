"""The FFmpeg commands of a restream with continuity (a backup input, a slate). Pure.

Each input runs in a stage of its own that sends MPEG-TS over loopback UDP to the node's input
switch (`worker.continuity`); the slate is one more stage, a card at the output's size; the
restream's own FFmpeg (the output stage) reads what the switch puts on air. Inputs are copied,
not encoded (a test signal is encoded, as always), so a stage costs little; the switch moves to
another stage at one of its key frames. The output stage stamps what it reads with the time it
arrives and encodes at a constant rate, so that its timestamps run on across a switch, and
resamples its audio to them: a receiver sees one stream.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from common.definitions.kinds import InputType
from common.definitions.restream import InputSpec, RestreamDefinition
from common.ffmpeg.argv import RELAY_READ_OPTIONS, build_argv, open_args
from common.ffmpeg.placement import Placement

# Where a stage sends: the switch fills in the loopback port it owns for that stage.
PORT = "{port}"
STAGE_OUTPUT = f"udp://127.0.0.1:{PORT}?pkt_size=1316"
STAGE_LOG = ["-hide_banner", "-nostats", "-loglevel", "level+warning"]
# A stage that checks its picture and sound logs what its filters see (`worker.continuity`).
CHECKING_LOG = ["-hide_banner", "-nostats", "-loglevel", "level+info"]
BLACK = "blackdetect=d=0:pic_th=0.98:pix_th=0.10"  # marks the first black frame: timed by us
SILENCE_DB = -50
# What the output stage reads: the switch's loopback port, stamped with arrival times.
SWITCHED_INPUT = ["-fflags", "+genpts+discardcorrupt", "-use_wallclock_as_timestamps", "1"]
SLATE_TEXT_FILE = "{slate_text_file}"  # the runner writes the slate's text there
SLATE_IMAGE_FILE = "{slate_image_file}"  # and the slate's image, once fetched


def stage_argv(
    spec: InputSpec, placement: Placement, checks: dict[str, int] | None = None
) -> list[str]:
    """An input's stage: its first video and audio, as they come (a test signal encoded); with
    `checks` (`ContinuitySpec.checks`) also decoded, to a null output whose filters log when
    the picture turns black or still, or the sound silent."""
    video, audio = (
        ("0:v:0", "1:a:0")
        if spec.input_type is InputType.GENERATE_TEST_VIDEO
        else ("0:v:0?", "0:a:0?")
    )
    argv = [*(CHECKING_LOG if checks else STAGE_LOG), *open_args(spec, placement)]
    if checks:
        argv += checking_output(checks, video, audio)
    argv += ["-map", video, "-map", audio]
    if spec.input_type is InputType.GENERATE_TEST_VIDEO:
        argv += [
            "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency",
            "-g", str(spec.encoding_rate), "-pix_fmt", "yuv420p", "-c:a", "aac",
        ]  # fmt: skip
    else:
        argv += ["-c", "copy"]
    return [*argv, "-f", "mpegts", STAGE_OUTPUT]


def checking_output(checks: dict[str, int], video: str, audio: str) -> list[str]:
    """The null output that watches an input: `blackdetect` marks where black starts and ends
    (the runner times it), `freezedetect` and `silencedetect` report once it lasted."""
    pictures = [BLACK] if "black" in checks else []
    if "frozen" in checks:
        pictures.append(f"freezedetect=n=0.001:d={checks['frozen'] / 1000:g}")
    argv = []
    if pictures:
        argv += ["-map", video, "-filter:v", ",".join([*pictures, "metadata=print"])]
    if "silent" in checks:
        argv += [
            "-map", audio,
            "-filter:a", f"silencedetect=n={SILENCE_DB}dB:d={checks['silent'] / 1000:g}",
        ]  # fmt: skip
    return [*argv, "-f", "null", "-"]


def slate_argv(
    definition: RestreamDefinition, text_file: str | None, image_file: str | None = None
) -> list[str]:
    """The slate's stage: a black card — or the operator's image in `image_file`, fitted over
    black — at the output's size and rate, with the operator's text (read from `text_file`, so
    that no text is ever part of a filter's syntax) and silence; a key frame a second (the
    switch cuts to it from its last one), encoded without frame delay."""
    transcoding = definition.transcoding
    assert transcoding is not None  # the definition's own check
    width, height = transcoding.frame_width, transcoding.frame_height
    fps = transcoding.filter_fps or 25
    if image_file is None:
        picture = ["-f", "lavfi", "-i", f"color=c=black:s={width}x{height}:r={fps:g}"]
        filters = []
    else:
        picture = ["-f", "image2", "-loop", "1", "-framerate", f"{fps:g}", "-i", image_file]
        filters = [
            f"scale={width}:{height}:force_original_aspect_ratio=decrease",
            f"pad={width}:{height}:-1:-1:color=black", "setsar=1",
        ]  # fmt: skip
    if text_file is not None:
        filters.append(
            f"drawtext=textfile={text_file}:fontcolor=white:fontsize=h/12"
            ":x=(w-text_w)/2:y=(h-text_h)/2"
        )
    return [
        *STAGE_LOG, "-re", *picture,
        "-re", "-f", "lavfi", "-i", "anullsrc=r=48000:cl=stereo",
        "-map", "0:v:0", "-map", "1:a:0",
        *(["-filter:v", ",".join(filters)] if filters else []),
        "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency",
        "-g", str(max(1, round(fps))), "-pix_fmt", "yuv420p", "-c:a", "aac",
        "-f", "mpegts", STAGE_OUTPUT,
    ]  # fmt: skip


def output_argv(
    definition: RestreamDefinition, placement: Placement, *, progress_period_s: float
) -> list[str]:
    """The restream's own FFmpeg, reading what the switch puts on air at {port}."""
    assert definition.transcoding is not None
    switched = InputSpec(input_type=InputType.RELAY, input_relay_id=placement.restream_id)
    transcoding = definition.transcoding.model_copy(update={"audio_sync": True})
    reading = definition.model_copy(
        update={
            "input": switched,
            "backup_input": None,
            "continuity": None,
            "transcoding": transcoding,
        }
    )
    # Built as a relay input ("-f mpegts -i udp://…"), then given the switch's port.
    argv = build_argv(
        reading, replace(placement, relay_port=0), progress_period_s=progress_period_s
    )
    where = argv.index("-i") - 2
    argv[where:where] = SWITCHED_INPUT
    argv[argv.index("-i") + 1] = f"udp://127.0.0.1:{PORT}?{RELAY_READ_OPTIONS}"
    return argv


def with_port(argv: list[str], port: int) -> list[str]:
    """`argv` with the switch's `port` where it was left open: a stage's output (its last
    argument) or the output stage's input (after its arrival-time flags). Only there: a
    client's URL elsewhere in it is never touched."""
    if argv[-1] == STAGE_OUTPUT:
        at = len(argv) - 1
    else:
        at = argv.index("-i", argv.index("-use_wallclock_as_timestamps")) + 1
    placed = list(argv)
    placed[at] = placed[at].replace(PORT, str(port), 1)
    return placed


def runner_spec(
    definition: RestreamDefinition,
    placement: Placement,
    *,
    ffmpeg: str,
    progress_period_s: float,
    allow_private: bool = False,
) -> dict[str, Any]:
    """What `python -m worker.continuity` is given: every stage's command, the output stage's,
    the switch's settings and the slate's text and image (which it writes and fetches)."""
    continuity = definition.continuity
    assert continuity is not None  # the caller's choice
    inputs = [("primary", definition.input)]
    if definition.backup_input is not None:
        inputs.append(("backup", definition.backup_input))
    checks = continuity.checks()
    text_file = SLATE_TEXT_FILE if continuity.slate_text else None
    return {
        "ffmpeg": ffmpeg,
        "inputs": [[name, stage_argv(spec, placement, checks)] for name, spec in inputs],
        "checks": checks,
        "slate": slate_argv(definition, text_file),
        "slate_image": slate_argv(definition, text_file, SLATE_IMAGE_FILE),
        "slate_image_url": continuity.slate_image_url,
        "allow_private": allow_private,  # where the image may be fetched from
        "slate_text": continuity.slate_text,
        "output": output_argv(definition, placement, progress_period_s=progress_period_s),
        "loss_ms": continuity.input_loss_ms,
        "failback_s": continuity.failback_s if continuity.failback else None,
    }
