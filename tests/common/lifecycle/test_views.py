"""The read model's parsed definitions: parsed once per content, never stale."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from common.definitions.states import Phase
from common.lifecycle import views
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
