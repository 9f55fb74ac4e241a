"""Log lines: JSON or text, with the restream context."""

from __future__ import annotations

import json
import logging

from common.logs import JsonFormatter, TextFormatter, about, configure_logging


def record(**extra: object) -> logging.LogRecord:
    entry = logging.LogRecord(
        "worker.supervisor", logging.WARNING, __file__, 1, "no progress: %s", ("x",), None
    )
    for key, value in extra.items():
        setattr(entry, key, value)
    return entry


def test_json_lines_carry_the_restream_context() -> None:
    line = json.loads(JsonFormatter().format(record(**about("r1", generation=4, node="n1"))))
    assert {k: line[k] for k in ("level", "logger", "message", "restream_id", "generation", "node")} == {
        "level": "WARNING", "logger": "worker.supervisor", "message": "no progress: x",
        "restream_id": "r1", "generation": 4, "node": "n1",
    }  # fmt: skip


def test_lines_about_nothing_in_particular_have_no_context() -> None:
    assert "restream_id" not in json.loads(JsonFormatter().format(record()))
    assert TextFormatter().format(record()).endswith("no progress: x")


def test_text_lines_append_the_context() -> None:
    line = TextFormatter().format(record(**about("r1", generation=4, node="n1")))
    assert line.endswith("no progress: x [restream_id=r1 node=n1 generation=4]")


def test_uvicorn_logs_through_ours_without_a_line_per_request() -> None:
    access = logging.getLogger("uvicorn.access")
    access.setLevel(logging.NOTSET)  # as uvicorn leaves it
    configure_logging("INFO", "json")
    assert access.propagate  # through our handler: what it logs is ours
    assert not access.isEnabledFor(logging.INFO)  # but not a line per request
