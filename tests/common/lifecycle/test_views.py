"""The read model's parsed definitions: parsed once per content, never stale."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from common.definitions.node import NodeCapabilities
from common.definitions.states import Phase
from common.lifecycle import views
from common.live import NodeLease
from common.models import Restream
from common.restreams.repository import Listed

SOURCE = {"input_type": "INPUT_TYPE_RTMP_URL", "input_stream_url": "rtmp://10.0.0.1/live/a"}


def stored(url: str) -> dict[str, object]:
    return {"input": SOURCE, "outputs": [{"output_type": "OUTPUT_TYPE_UDP_URL",
                                          "output_stream_url": url}]}  # fmt: skip


def test_a_definition_is_parsed_once_and_read_anew_when_it_changes() -> None:
    row = Restream(id="a" * 24, definition=stored("udp://10.0.0.2:5000"))
    first = views.shown(row)
    again = views.shown(Restream(id=row.id, definition=stored("udp://10.0.0.2:5000")))
    assert again is first  # the same content, loaded again: not parsed again
    row.definition = stored("udp://10.0.0.3:5000")
    changed = views.shown(row)
    assert changed.outputs[0]["output_stream_url"] == "udp://10.0.0.3:5000"
    assert changed.restream_type == "RESTREAM_TYPE_RTMP_TO_UDP"
    other = views.shown(Restream(id="b" * 24, definition=stored("udp://10.0.0.2:5000")))
    assert other is not first  # kept per restream


def listed(restream_id: str, definition: dict[str, object]) -> Listed:
    """A list's row of an idle restream, its definition as PostgreSQL's text of it."""
    now = datetime.now(UTC)
    return Listed(
        restream_id, "p" * 24, "r", False, 0, 0, None, Phase.IDLE, None, now, None, None, None,
        None, None, now, now, None, None, None, json.dumps(definition), 1,
    )  # fmt: skip


def test_a_list_compares_the_text_and_shares_what_a_read_of_the_row_parsed() -> None:
    row = Restream(id="c" * 24, definition=stored("udp://10.0.0.2:5000"))
    first = views.shown(row)
    assert views.shown(listed(row.id, stored("udp://10.0.0.2:5000"))) is first
    assert views.shown(listed(row.id, stored("udp://10.0.0.2:5000"))) is first
    assert views.shown(row) is first  # and the other way round
    changed = views.shown(listed(row.id, stored("udp://10.0.0.4:5000")))
    assert changed.outputs[0]["output_stream_url"] == "udp://10.0.0.4:5000"
    assert views.shown(row).outputs[0]["output_stream_url"] == "udp://10.0.0.2:5000"


def test_playback_is_where_the_node_serves_hls_and_dash_while_placed() -> None:
    outputs = [
        {"output_type": "OUTPUT_TYPE_HLS", "id": "a" * 24},
        {"output_type": "OUTPUT_TYPE_DASH", "id": "b" * 24},
        {"output_type": "OUTPUT_TYPE_UDP_URL", "output_stream_url": "udp://10.0.0.2:5000"},
    ]
    definition = {
        "input": {"input_type": "INPUT_TYPE_GENERATE_TEST_VIDEO"},
        "transcoding": {"video_transcoding": "libx264"},
        "outputs": outputs,
    }
    row = Restream(id="c" * 24, definition=definition, node_name="n1", phase=Phase.PLACED)
    lease = NodeLease(
        node="n1", renewed_at=0, capabilities=NodeCapabilities(playback_base_url="http://n1:8090")
    )
    shown = views.shown(row).definition
    assert views.Live(leases={"n1": lease}).playback(row, shown) == {
        "a" * 24: f"http://n1:8090/live/{'c' * 24}/{'a' * 24}/index.m3u8",
        "b" * 24: f"http://n1:8090/live/{'c' * 24}/{'b' * 24}/manifest.mpd",
    }
    assert views.Live().playback(row, shown) == {}  # no lease: nowhere to play
    row.phase = Phase.STOPPING
    assert views.Live(leases={"n1": lease}).playback(row, shown) == {}
