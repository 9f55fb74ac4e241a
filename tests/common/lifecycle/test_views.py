"""The read model's parsed definitions: parsed once per content, never stale."""

from __future__ import annotations

from common.lifecycle import views
from common.models import Restream

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
