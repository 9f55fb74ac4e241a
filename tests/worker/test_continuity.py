"""The input switch, on datagrams made here and a clock moved by hand; the stages' commands."""

from __future__ import annotations

import pytest

from common.definitions.restream import RestreamDefinition
from common.ffmpeg.continuity import output_argv, runner_spec, slate_argv, stage_argv, with_port
from common.ffmpeg.placement import Placement
from worker.continuity import Stage
from worker.switch import SLATE, Switch, key_frame

VIDEO, AUDIO = 0x100, 0x101


def ts_packet(pid: int, *, key: bool = False) -> bytes:
    """One 188-byte MPEG-TS packet; with `key`, an adaptation field saying random access."""
    header = bytes([0x47, (pid >> 8) & 0x1F, pid & 0xFF])
    if key:
        return header + bytes([0x30, 1, 0x40]) + bytes(182)
    return header + bytes([0x10]) + bytes(184)


def datagram(*, key: bool = False, pid: int = VIDEO) -> bytes:
    return ts_packet(AUDIO) + ts_packet(pid, key=key) + ts_packet(AUDIO)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def sent() -> list[bytes]:
    return []


def switch(sent: list[bytes], clock: Clock, failback_s: float | None = 2.0) -> Switch:
    return Switch(
        ["primary", "backup", SLATE], loss_s=0.5, failback_s=failback_s, send=sent.append,
        clock=clock,
    )  # fmt: skip


def test_key_frames_are_video_packets_with_random_access() -> None:
    assert key_frame(datagram(key=True))
    assert not key_frame(datagram())
    assert not key_frame(datagram(key=True, pid=AUDIO))  # audio says random access at every frame
    assert not key_frame(b"\x00" * 188)


def test_inputs_go_on_air_from_their_last_key_frame_and_the_slate_bridges(
    sent: list[bytes],
) -> None:
    clock = Clock()
    on = switch(sent, clock)
    on.received(SLATE, datagram(key=True))
    assert on.on_air == SLATE and sent == [datagram(key=True)]

    on.received("primary", datagram())
    on.tick()
    assert on.on_air == SLATE and on.pending == "primary"  # no key frame of it yet: waits
    on.received("primary", datagram(key=True))
    assert on.on_air == "primary" and sent[-1] == datagram(key=True)
    on.received("backup", datagram(key=True))
    on.received("backup", datagram(pid=AUDIO))
    on.tick()
    assert on.on_air == "primary" and len(sent) == 2  # the backup is not forwarded

    clock.now += 0.3
    on.received("backup", datagram())
    clock.now += 0.3  # the primary is silent for longer than the loss
    on.received("backup", datagram())
    sent.clear()
    on.tick()
    assert on.on_air == "backup" and on.pending is None  # at once, from its last key frame:
    assert sent == [datagram(key=True), datagram(pid=AUDIO), datagram(), datagram()]
    assert on.reason == "primary silent for over 500 ms"

    clock.now += 0.6  # both silent
    sent.clear()
    on.tick()
    assert on.on_air == SLATE and on.pending is None and sent == [datagram(key=True)]
    assert on.reason == (
        "no input delivers (primary silent for over 500 ms, backup silent for over 500 ms)"
    )
    clock.now += 0.1
    on.received("backup", datagram())  # back after a loss: what it kept before is stale
    on.tick()
    assert on.on_air == SLATE and on.pending == "backup"
    on.received("backup", datagram(key=True))
    assert on.on_air == "backup"
    assert [(old, new) for _, old, new in on.switches] == [
        (SLATE, "primary"), ("primary", "backup"), ("backup", SLATE), (SLATE, "backup"),
    ]  # fmt: skip


def test_a_source_without_video_does_not_deliver(sent: list[bytes]) -> None:
    """A stage whose FFmpeg found only the audio while it probed sends audio alone: of no use
    on air (the output would have no picture), so the slate stays."""
    clock = Clock()
    on = switch(sent, clock)
    on.received(SLATE, datagram(key=True))
    for _ in range(5):
        clock.now += 0.2
        on.received("primary", ts_packet(AUDIO) * 7)
        on.tick()
    assert on.on_air == SLATE and on.pending is None
    on.received("primary", datagram(key=True))
    on.tick()
    assert on.on_air == "primary"


def test_a_picture_group_too_long_to_keep_waits_for_the_next_key_frame(
    sent: list[bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("worker.switch.GOP_BYTES", 4 * len(datagram()))
    clock = Clock()
    on = switch(sent, clock)
    on.received("backup", datagram(key=True))
    for _ in range(4):
        on.received("backup", datagram())
    on.tick()
    assert on.on_air == SLATE and on.pending == "backup"
    on.received("backup", datagram(key=True))
    assert on.on_air == "backup"


def test_an_impaired_input_is_lost_until_it_is_well_again(sent: list[bytes]) -> None:
    clock = Clock()
    on = switch(sent, clock)
    on.received("primary", datagram(key=True))
    on.received("backup", datagram(key=True))
    on.tick()
    assert on.on_air == "primary"
    on.impair("primary", "black for 2 s")
    on.tick()
    assert on.on_air == "backup" and on.reason == "primary black for 2 s"
    for _ in range(3):
        clock.now += 0.4
        on.received("primary", datagram(key=True))
        on.received("backup", datagram())
        on.tick()
    assert on.on_air == "backup"  # still black, however long it delivers
    on.impair("primary", None)
    for _ in range(4):
        clock.now += 0.4
        on.received("primary", datagram(key=True))
        on.received("backup", datagram())
        on.tick()
    assert on.on_air == "backup"  # 1.6 s well: not yet
    clock.now += 0.4
    on.received("primary", datagram())
    on.tick()
    assert on.on_air == "primary" and on.reason == "primary has delivered again for 2 s"
    on.impair("primary", "frozen for 2 s")
    on.impair("backup", "silent (audio) for 3 s")
    on.received(SLATE, datagram(key=True))
    on.tick()
    assert on.on_air == SLATE
    assert on.reason == "no input delivers (primary frozen for 2 s, backup silent (audio) for 3 s)"


def test_back_to_the_primary_only_once_it_delivered_for_failback(sent: list[bytes]) -> None:
    clock = Clock()
    on = switch(sent, clock)
    on.received("backup", datagram(key=True))
    on.tick()
    assert on.on_air == "backup"  # the primary never came
    for _ in range(3):  # the primary returns; the backup keeps delivering
        clock.now += 0.4
        on.received("primary", datagram(key=True))
        on.received("backup", datagram())
        on.tick()
    assert on.on_air == "backup" and on.pending is None  # 0.8 s of it: not yet
    for _ in range(4):
        clock.now += 0.4
        on.received("primary", datagram())
        on.received("backup", datagram())
        on.tick()
    assert on.on_air == "primary"  # 2 s: from its last key frame, with no slate between
    assert on.reason == "primary has delivered again for 2 s"
    assert [new for _, _, new in on.switches] == ["backup", "primary"]


def test_without_failback_the_backup_stays(sent: list[bytes]) -> None:
    clock = Clock()
    on = switch(sent, clock, failback_s=None)
    on.received("backup", datagram(key=True))
    on.tick()
    on.received("backup", datagram(key=True))
    for _ in range(20):
        clock.now += 0.4
        on.received("primary", datagram(key=True))
        on.received("backup", datagram(key=True))
        on.tick()
    assert on.on_air == "backup"


DEFINITION = RestreamDefinition.model_validate(
    {
        "input": {"input_type": "INPUT_TYPE_RTMP_URL", "input_stream_url": "rtmp://a/{port}/x"},
        "backup_input": {"input_type": "INPUT_TYPE_SRT_URL", "input_stream_url": "srt://b:9000"},
        "continuity": {"slate_text": "Back soon"},
        "transcoding": {"video_transcoding": "libx264", "frame_width": 640, "frame_height": 360,
                        "filter_fps": 25},
        "outputs": [{"output_type": "OUTPUT_TYPE_OTHER_RTMP_URL", "output_stream_url": "rtmp://c/d"}],
    }
)  # fmt: skip


def test_the_stages_copy_the_slate_is_a_card_and_the_output_stamps_arrival() -> None:
    placement = Placement(node_name="n", restream_id="a" * 24)
    primary = with_port(stage_argv(DEFINITION.input, placement), 5000)
    assert primary[primary.index("-i") + 1] == "rtmp://a/{port}/x"  # a client's URL: untouched
    assert primary[-1] == "udp://127.0.0.1:5000?pkt_size=1316"
    assert "-c" in primary and primary[primary.index("-c") + 1] == "copy"
    slate = slate_argv(DEFINITION, "/tmp/t.txt")
    assert slate[slate.index("-i") + 1] == "color=c=black:s=640x360:r=25"
    assert slate[slate.index("-filter:v") + 1].startswith("drawtext=textfile=/tmp/t.txt:")
    assert "Back soon" not in " ".join(slate)  # the text is read from a file, never parsed
    assert slate[slate.index("-g") + 1] == "25"  # a key frame a second, the output's rate
    output = with_port(output_argv(DEFINITION, placement, progress_period_s=1), 6000)
    at = output.index("-i")
    assert output[at - 6 : at] == [
        "-fflags", "+genpts+discardcorrupt", "-use_wallclock_as_timestamps", "1", "-f", "mpegts",
    ]  # fmt: skip
    assert output[at + 1].startswith("udp://127.0.0.1:6000?")
    assert output[output.index("-vf") + 1] == "scale=640:360,fps=25"
    assert "aresample=async=1000" in output and output[-1] == "rtmp://c/d"


def test_a_slate_image_is_fitted_to_the_output_over_black() -> None:
    slate = slate_argv(DEFINITION, None, "/tmp/w/slate.png")
    at = slate.index("-i")
    assert slate[at - 6 : at + 2] == [
        "-f", "image2", "-loop", "1", "-framerate", "25", "-i", "/tmp/w/slate.png",
    ]  # fmt: skip
    assert slate[slate.index("-filter:v") + 1] == (
        "scale=640:360:force_original_aspect_ratio=decrease,pad=640:360:-1:-1:color=black,setsar=1"
    )


def test_a_stage_gone_silent_is_started_afresh() -> None:
    """FFmpeg left playing a source that went away and came back sends it in bursts: a stage
    that delivered and then stopped is ended, and started again after a pause."""
    stage = Stage("primary", ["sleep", "60"])
    try:
        stage.keep(delivering=False)
        first = stage.process
        assert first is not None and first.poll() is None
        stage.keep(delivering=False)  # not delivered yet: given time
        assert stage.process is first and first.poll() is None
        stage.keep(delivering=True)
        stage.keep(delivering=False)  # delivered, then went silent
        assert first.poll() is not None  # ended
        assert stage.process is None and stage.due > 0  # started again after the pause
    finally:
        stage.end()


def test_a_checking_stage_also_decodes_to_filters_that_watch() -> None:
    placement = Placement(node_name="n", restream_id="a" * 24)
    checks = {"black": 2000, "frozen": 3000, "silent": 1500}
    argv = stage_argv(DEFINITION.input, placement, checks)
    assert argv[argv.index("-loglevel") + 1] == "level+info"  # the filters log at info
    assert argv[argv.index("-filter:v") + 1] == (
        "blackdetect=d=0:pic_th=0.98:pix_th=0.10,freezedetect=n=0.001:d=3,metadata=print"
    )
    assert argv[argv.index("-filter:a") + 1] == "silencedetect=n=-50dB:d=1.5"
    assert argv[argv.index("null") + 1] == "-"
    assert argv[-1] == "udp://127.0.0.1:{port}?pkt_size=1316"  # the copy still goes last
    plain = stage_argv(DEFINITION.input, placement)
    assert "-filter:v" not in plain and "null" not in plain
    assert plain[plain.index("-loglevel") + 1] == "level+warning"


def test_a_stage_times_what_its_filters_saw() -> None:
    stage = Stage("primary", ["true"])
    checks = {"black": 2000, "frozen": 3000, "silent": 1500}
    stage.heard("[Parsed_metadata_2 @ 0x5] [info] lavfi.black_start=1.5", 10.0)
    assert stage.impairment(checks, 11.9) is None  # black, not yet for 2 s
    assert stage.impairment(checks, 12.0) == "black for over 2000 ms"
    stage.heard("[blackdetect @ 0x5] [info] black_start:1.5 black_end:4 black_duration:2.5", 12.5)
    assert stage.impairment(checks, 13.0) is None  # its summary says it ended
    stage.heard("[freezedetect @ 0x5] [info] lavfi.freezedetect.freeze_start: 1.5", 14.0)
    assert stage.impairment(checks, 14.0) == "frozen for over 3000 ms"  # its filter waited
    stage.heard("[freezedetect @ 0x5] [info] lavfi.freezedetect.freeze_end: 9", 15.0)
    stage.heard("[silencedetect @ 0x5] [info] silence_start: 3.02", 16.0)
    assert stage.impairment(checks, 16.0) == "without sound for over 1500 ms"
    assert stage.impairment({"black": 2000}, 16.0) is None  # not asked for: not a reason
    stage.heard("[silencedetect @ 0x5] [info] silence_end: 4.0 | silence_duration: 1", 17.0)
    assert stage.impairment(checks, 17.0) is None
    assert not stage.error  # none of it is an error
    stage.heard("[info] Stream mapping:", 18.0)
    stage.heard("[tcp @ 0x5] [error] Connection to tcp://a:1935 failed: Connection refused", 18.0)
    assert list(stage.error) == ["Connection to tcp://a:1935 failed: Connection refused"]


def test_the_runner_is_given_the_checks_the_slate_image_and_no_failback_if_so_asked() -> None:
    definition = DEFINITION.model_copy(
        update={
            "continuity": DEFINITION.continuity.model_copy(  # type: ignore[union-attr]
                update={"failback": False, "video_frozen_ms": 4000,
                        "slate_image_url": "https://img.example/s.png"}
            )
        }
    )  # fmt: skip
    placement = Placement(node_name="n", restream_id="a" * 24)
    spec = runner_spec(definition, placement, ffmpeg="/usr/bin/ffmpeg", progress_period_s=1)
    assert [name for name, _ in spec["inputs"]] == ["primary", "backup"]
    assert all("freezedetect=n=0.001:d=4" in " ".join(argv) for _, argv in spec["inputs"])
    assert spec["checks"] == {"frozen": 4000} and spec["failback_s"] is None
    assert spec["slate_image_url"] == "https://img.example/s.png"
    assert "{slate_image_file}" in spec["slate_image"] and "{slate_text_file}" in " ".join(
        spec["slate_image"]
    )
