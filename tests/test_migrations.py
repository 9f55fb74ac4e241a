"""Data migrations, run by Alembic on a real PostgreSQL from the revision before them."""

from __future__ import annotations

import json

from alembic import command
from sqlalchemy import create_engine, text

from common.definitions.restream import RestreamDefinition
from common.definitions.states import Phase, RunState, shown
from common.migrate import alembic_config
from tests.support.services import fresh_database, sqlalchemy_url

UNSAFE = {
    "input": {"id": "../in", "input_type": "INPUT_TYPE_GENERATE_TEST_VIDEO"},
    "outputs": [
        {"id": "0123456789abcdef01234567", "output_type": "OUTPUT_TYPE_HLS"},
        {"id": "../../victim", "output_type": "OUTPUT_TYPE_HLS"},
        {"id": "0123456789abcdef01234567", "output_type": "OUTPUT_TYPE_DASH"},
        {"output_type": "OUTPUT_TYPE_RELAY"},
    ],
}


def test_0004_gives_unsafe_and_repeated_ids_fresh_ones(pg_server_url: str) -> None:
    with fresh_database(pg_server_url, prefix="sf_migrate") as url:
        command.upgrade(alembic_config(url), "0003")
        engine = create_engine(sqlalchemy_url(url))
        with engine.begin() as connection:
            connection.execute(text("INSERT INTO projects (id, name) VALUES ('p1', 'p')"))
            connection.execute(
                text(
                    "INSERT INTO restreams (id, project_id, name, definition, active, generation,"
                    " state) VALUES ('r1', 'p1', 'r', CAST(:d AS jsonb), false, 0, 'idle')"
                ),
                {"d": json.dumps(UNSAFE)},
            )
        command.upgrade(alembic_config(url), "0004")
        with engine.connect() as connection:
            stored = connection.execute(text("SELECT definition FROM restreams")).scalar_one()
        engine.dispose()
    definition = RestreamDefinition.model_validate(stored)  # reads back under today's rule
    ids = [o.id for o in definition.outputs]
    assert ids[0] == "0123456789abcdef01234567"  # a safe id stays
    assert len(set(ids[:3])) == 3 and ids[3] is None
    assert definition.input.id is not None and definition.input.id != "../in"


def test_0006_moves_5centscdn_flags_into_holds_and_records_surfaces(pg_server_url: str) -> None:
    rows = {
        "cdn": {"surface": "5centscdn", "draft": True, "disabled": False,
                "deleted": "2026-12-01 10:00:00", "codec": "h264"},
        "cdn-plain": {"surface": "5centscdn", "draft": False, "disabled": False, "deleted": None},
        "video": {"title": "a live video"},
        "mine": {},
    }  # fmt: skip
    with fresh_database(pg_server_url, prefix="sf_migrate") as url:
        command.upgrade(alembic_config(url), "0005")
        engine = create_engine(sqlalchemy_url(url))
        with engine.begin() as connection:
            connection.execute(text("INSERT INTO projects (id, name) VALUES ('p1', 'p')"))
            for name, attributes in rows.items():
                connection.execute(
                    text(
                        "INSERT INTO restreams (id, project_id, name, definition, active, "
                        "generation, state, attributes) VALUES (:id, 'p1', :id, '{}', false, 0, "
                        "'idle', CAST(:a AS jsonb))"
                    ),
                    {"id": name, "a": json.dumps(attributes)},
                )
        command.upgrade(alembic_config(url), "0006")
        with engine.connect() as connection:
            found = {
                row.id: (row.surface, sorted(row.holds), row.attributes)
                for row in connection.execute(
                    text("SELECT id, surface, holds, attributes FROM restreams")
                )
            }
        engine.dispose()
    assert found["cdn"] == (
        "fivecents",
        ["deleted", "draft"],
        {"deleted": "2026-12-01 10:00:00", "codec": "h264"},
    )
    assert found["cdn-plain"] == ("fivecents", [], {"deleted": None})
    assert found["video"] == ("gjirafa", [], {"title": "a live video"})
    assert found["mine"] == ("native", [], {})


def test_0007_splits_state_into_phase_and_run_and_back(pg_server_url: str) -> None:
    """Every state of before carries over to the phase and run that show it again; a
    downgrade gives each row its state back."""
    states = ("idle", "pending", "starting", "running", "waiting", "retrying", "failed",
              "recovering", "stopping")  # fmt: skip
    with fresh_database(pg_server_url, prefix="sf_migrate") as url:
        command.upgrade(alembic_config(url), "0006")
        engine = create_engine(sqlalchemy_url(url))
        with engine.begin() as connection:
            connection.execute(text("INSERT INTO projects (id, name) VALUES ('p1', 'p')"))
            for state in states:
                connection.execute(
                    text(
                        "INSERT INTO restreams (id, project_id, name, definition, active, "
                        "generation, state, state_reason) VALUES (:id, 'p1', :id, '{}', "
                        ":active, 3, :id, :why)"
                    ),
                    {"id": state, "active": state != "idle", "why": f"why {state}"},
                )
        command.upgrade(alembic_config(url), "0007")
        with engine.connect() as connection:
            rows = connection.execute(
                text(
                    "SELECT id, phase, active, run_state, run_generation, generation, "
                    "phase_reason, run_reason FROM restreams"
                )
            ).all()
        command.downgrade(alembic_config(url), "0006")
        with engine.connect() as connection:
            back: dict[str, str] = dict(
                connection.execute(text("SELECT id, state FROM restreams")).all()
            )
        engine.dispose()
    for rid, phase, active, run, run_generation, generation, phase_reason, run_reason in rows:
        current = RunState(run) if run is not None and run_generation == generation else None
        assert shown(Phase(phase), active, current).value == rid
        assert (run_reason or phase_reason) == f"why {rid}"
    assert back == {state: state for state in states}
