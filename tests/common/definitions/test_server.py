"""Server modules' settings, stream ids and URLs."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from common.definitions.server import (
    Route,
    ServerKind,
    ServerSpec,
    ingest_url,
    input_stream,
    input_url,
    play_url,
    route,
)

SRT = ServerSpec(kind=ServerKind.SRT, name="studio", port=9000, latency_ms=120)


@pytest.mark.parametrize(
    ("streamid", "expected"),
    [
        ("publisher/studio/cam1", Route("publisher", "studio", "cam1")),
        ("receiver/studio/cam1", Route("player", "studio", "cam1")),
        ("player/studio/cam1", Route("player", "studio", "cam1")),
        ("receiver/studio/", Route("player", "studio", "")),
        ("#!::r=studio/cam1,m=publish", Route("publisher", "studio", "cam1")),
        ("#!::r=studio/cam1", Route("player", "studio", "cam1")),
        ("#!::m=request,r=studio/cam1", Route("player", "studio", "cam1")),
        ("publisher/studio/", None),  # a publisher names its stream
        ("publisher/studio/cam1/x", None),
        ("publisher/studio", None),
        ("admin/studio/cam1", None),
        ("#!::r=studio/cam1,m=bidirectional", None),
        ("receiver/../cam1", None),
        ("receiver/studio/cam 1", None),
    ],
)
def test_stream_ids(streamid: str, expected: Route | None) -> None:
    assert route(streamid) == expected


def test_an_input_stream_id_names_a_stream_of_its_server() -> None:
    srt, rtmp = ServerKind.SRT, ServerKind.RTMP
    assert input_stream(srt, "studio", "publisher/studio/cam1") == "cam1"
    assert input_stream(srt, "studio", "cam1") == "cam1"
    assert input_stream(srt, "studio", "") == input_stream(srt, "studio", None) == ""
    bad = ("publisher/studio/cam1/x", "publisher/other/cam1", "a b", "receiver/studio/cam1")
    for text in bad:
        with pytest.raises(ValueError, match=r"."):
            input_stream(srt, "studio", text)
    # An RTMP publisher sends only its key: the Callaba doc's own RTMP example names an SRT
    # server in it, and means the key.
    assert input_stream(rtmp, "ingest", "publisher/srt-server-name/srt-stream-01") == (
        "srt-stream-01"
    )


def test_urls() -> None:
    assert ingest_url(SRT, "10.0.0.2", "cam1") == (
        "srt://10.0.0.2:9000?streamid=publisher/studio/cam1"
    )
    assert play_url(SRT, "::1") == "srt://[::1]:9000?streamid=receiver/studio/<stream>"
    secret = SRT.model_copy(update={"passphrase": "0123456789"})
    assert input_url(secret, "cam1") == (
        "srt://127.0.0.1:9000?streamid=receiver/studio/cam1&latency=120000&passphrase=0123456789"
    )
    assert "<passphrase>" in ingest_url(secret, "h") and "0123456789" not in ingest_url(secret, "h")
    rtmp = ServerSpec(kind=ServerKind.RTMP, name="ingest", port=1936)
    assert ingest_url(rtmp, "h", "k") == play_url(rtmp, "h", "k") == "rtmp://h:1936/live/k"
    assert input_url(rtmp, "k") == "rtmp://127.0.0.1:1936/live/k"
    assert SRT.port_key == "9000/UDP" and rtmp.port_key == "1936/TCP"


@pytest.mark.parametrize(
    "fields",
    [
        {"kind": "rtmp", "name": "x", "port": 1936, "passphrase": "0123456789"},
        {"kind": "srt", "name": "x", "port": 9000, "passphrase": "0123456789&x=1"},
        {"kind": "srt", "name": "-x", "port": 9000},
        {"kind": "srt", "name": "x", "port": 9000, "latency_ms": 10},
        {"kind": "srt", "name": "x", "port": 70000},
    ],
)
def test_bad_settings(fields: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        ServerSpec.model_validate(fields)
