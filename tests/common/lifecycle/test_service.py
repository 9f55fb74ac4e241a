"""The restream service and worker reports on real PostgreSQL and Redis."""

from __future__ import annotations

import re
import threading
import time
from typing import Any

import pytest
import redis
from sqlalchemy import delete, func, select

from common.accounts.principal import Principal, Role
from common.accounts.service import ensure_project
from common.celery_app import TASK_RESTREAM_START, TASK_RESTREAM_STOP, node_queue
from common.config import Settings
from common.db import Database, database_now
from common.definitions.restream import RestreamDefinition
from common.definitions.server import ServerKind, ServerSpec
from common.definitions.states import Phase, RestreamState, RunState
from common.errors import Conflict, Forbidden, InvalidInput, RestreamNotFound
from common.ffmpeg.outcome import Outcome
from common.lifecycle import commands, reports, servers, service
from common.lifecycle.reports import Attempt
from common.lifecycle.service import place_now
from common.models import Event, Restream, Run
from common.outbox import ControlMessage
from common.restreams.repository import Summary
from tests.support.nodes import simulate_node

S = RestreamState
ADMIN = Principal("test", Role.ADMIN, None)
OUT = {"output_type": "OUTPUT_TYPE_UDP_URL", "output_stream_url": "udp://127.0.0.1:5000"}
TEST_VIDEO = {"input_type": "INPUT_TYPE_GENERATE_TEST_VIDEO"}


def definition(**transcoding: Any) -> RestreamDefinition:
    return RestreamDefinition.model_validate(
        {"input": TEST_VIDEO, "transcoding": transcoding or None, "outputs": [OUT]}
    )


@pytest.fixture
def farm(redis_client: redis.Redis, settings: Settings) -> service.Farm:
    return service.Farm(redis=redis_client, settings=settings)


def create(db: Database, farm: service.Farm, *, active: bool, name: str = "r1") -> Restream:
    with db.transaction() as session:
        return service.create(session, farm, ADMIN, name, definition(), active=active)


def load(db: Database, restream_id: str) -> Restream:
    with db.transaction() as session:
        restream = session.get(Restream, restream_id)
        assert restream is not None
        return restream


def states_of(db: Database, restream_id: str) -> list[str | None]:
    with db.transaction() as session:
        rows = session.execute(
            select(Event.to_state).where(Event.subject_id == restream_id).order_by(Event.id)
        ).scalars()
        return list(rows)


def test_create_inactive_is_idle_and_sends_nothing(
    db: Database, farm: service.Farm, sent: list[ControlMessage]
) -> None:
    restream = create(db, farm, active=False)
    assert (restream.state, restream.node_name, restream.generation) == (S.IDLE, None, 0)
    assert sent == []
    stored = load(db, restream.id).definition
    assert stored["input"]["id"] and stored["outputs"][0]["id"]  # entries get their own ids


def test_create_active_places_on_a_live_node_and_sends_after_commit(
    db: Database, farm: service.Farm, redis_client: redis.Redis, sent: list[ControlMessage]
) -> None:
    simulate_node(db, redis_client, "n1")
    with db.transaction() as session:
        restream = service.create(session, farm, ADMIN, "r1", definition(), active=True)
        assert sent == []  # nothing leaves before the commit
    assert (restream.state, restream.node_name, restream.generation) == (S.STARTING, "n1", 1)
    assert sent == [
        ControlMessage(
            TASK_RESTREAM_START, node_queue("n1"), {"restream_id": restream.id, "generation": 1}
        )
    ]
    assert states_of(db, restream.id) == ["pending", "starting"]


def test_no_live_node_leaves_it_pending_with_the_reason(
    db: Database, farm: service.Farm, redis_client: redis.Redis, sent: list[ControlMessage]
) -> None:
    simulate_node(db, redis_client, "dead", lease=False)
    restream = create(db, farm, active=True)
    assert restream.state is S.PENDING
    assert restream.state_reason == "no live worker node: start one with `streamfleet worker`"
    assert sent == []


def test_a_failed_request_writes_and_sends_nothing(
    db: Database, farm: service.Farm, redis_client: redis.Redis, sent: list[ControlMessage]
) -> None:
    simulate_node(db, redis_client, "n1")
    create(db, farm, active=False)
    sent.clear()
    with pytest.raises(Conflict, match="already exists"), db.transaction() as session:
        service.create(session, farm, ADMIN, "other", definition(), active=True)
        service.create(session, farm, ADMIN, "r1", definition(), active=True)
    assert sent == []
    with db.transaction() as session:
        assert session.execute(select(Restream.name)).scalars().all() == ["r1"]


def test_start_is_idempotent(
    db: Database, farm: service.Farm, redis_client: redis.Redis, sent: list[ControlMessage]
) -> None:
    simulate_node(db, redis_client, "n1")
    restream = create(db, farm, active=True)
    with db.transaction() as session:
        again = service.start(session, farm, ADMIN, restream.id)
    assert (again.state, again.generation, len(sent)) == (S.STARTING, 1, 1)


def test_worker_reports_drive_the_state_and_the_run(
    db: Database, farm: service.Farm, redis_client: redis.Redis
) -> None:
    simulate_node(db, redis_client, "n1")
    restream = create(db, farm, active=True)
    attempt = Attempt(restream.id, 1, "n1")
    with db.transaction() as session:
        reports.apply(session, attempt, reports.Starting(pid=42, restarts=0))
        reports.apply(session, attempt, reports.Running())
    assert load(db, restream.id).state is S.RUNNING
    with db.transaction() as session:
        reports.apply(session, attempt, reports.Retrying(error="[error] Connection refused", stderr_tail=["a", "b"], restarts=1, backoff_s=0.5, exit_code=1))  # fmt: skip
    current = load(db, restream.id)
    assert (current.state, current.last_error) == (S.RETRYING, "[error] Connection refused")
    with db.transaction() as session:
        reports.apply(session, attempt, reports.Failed(error="[error] Connection refused", stderr_tail=["a", "b"], exit_code=1, reason="5 failures within 120 s"))  # fmt: skip
        run = session.execute(select(Run).where(Run.restream_id == restream.id)).scalar_one()
        assert (run.outcome, run.exit_code, run.stderr_tail) == ("failed", 1, "a\nb")
        assert run.running_at is not None and run.ended_at is not None
    current = load(db, restream.id)
    assert (current.state, current.node_name) == (S.FAILED, None)
    assert current.state_reason == "5 failures within 120 s: [error] Connection refused"
    assert states_of(db, restream.id) == [
        "pending", "starting", "running", "retrying", "failed"
    ]  # fmt: skip


def test_reports_of_an_old_generation_change_nothing(
    db: Database, farm: service.Farm, redis_client: redis.Redis
) -> None:
    simulate_node(db, redis_client, "n1")
    restream = create(db, farm, active=True)
    with db.transaction() as session:
        reports.apply(session, Attempt(restream.id, 0, "n1"), reports.Running())  # stale generation
        reports.apply(session, Attempt(restream.id, 1, "n2"), reports.Running())  # another node
    assert load(db, restream.id).state is S.STARTING


def test_a_report_while_stopping_tells_of_its_run_and_changes_nothing_shown(
    db: Database, farm: service.Farm, redis_client: redis.Redis
) -> None:
    """A `running` that arrives after the stop was asked for: true of the run (its FFmpeg did
    run), so it is kept as such, but the restream still shows STOPPING and no event says
    otherwise."""
    simulate_node(db, redis_client, "n1")
    restream = create(db, farm, active=True)
    with db.transaction() as session:
        service.stop(session, ADMIN, restream.id)
    with db.transaction() as session:
        reports.apply(session, Attempt(restream.id, 1, "n1"), reports.Running())
    current = load(db, restream.id)
    assert (current.state, current.phase, current.run) == (
        S.STOPPING,
        Phase.STOPPING,
        RunState.RUNNING,
    )
    assert states_of(db, restream.id) == ["pending", "starting", "stopping"]


def test_a_report_out_of_order_is_ignored_logged_and_counted_not_skipped_in_silence(
    db: Database, farm: service.Farm, redis_client: redis.Redis
) -> None:
    """A run goes from RETRYING to RUNNING only through a new STARTING: a `running` straight
    after a `retrying` is refused by the run table, the restream keeps showing RETRYING, and
    the refusal is counted."""
    simulate_node(db, redis_client, "n1")
    restream = create(db, farm, active=True)
    attempt = Attempt(restream.id, 1, "n1")
    failure = reports.Retrying(error="boom", stderr_tail=[], restarts=1, backoff_s=1.0, exit_code=1)
    with db.transaction() as session:
        reports.apply(session, attempt, failure)
    before = commands.REFUSED[("retrying", "running")]
    with db.transaction() as session:
        reports.apply(session, attempt, reports.Running())
    assert load(db, restream.id).state is S.RETRYING
    assert states_of(db, restream.id) == ["pending", "starting", "retrying"]
    assert commands.REFUSED[("retrying", "running")] == before + 1


def test_stop_waits_for_the_worker_then_idles(
    db: Database, farm: service.Farm, redis_client: redis.Redis, sent: list[ControlMessage]
) -> None:
    simulate_node(db, redis_client, "n1")
    restream = create(db, farm, active=True)
    with db.transaction() as session:
        stopped = service.stop(session, ADMIN, restream.id)
    assert (stopped.state, stopped.active, stopped.node_name) == (S.STOPPING, False, "n1")
    assert sent[-1] == ControlMessage(
        TASK_RESTREAM_STOP, node_queue("n1"), {"restream_id": restream.id, "generation": 1}
    )
    with db.transaction() as session:
        reports.apply(
            session,
            Attempt(restream.id, 1, "n1"),
            reports.Ended(outcome=Outcome.STOPPED, exit_code=255),
        )
    current = load(db, restream.id)
    assert (current.state, current.node_name) == (S.IDLE, None)


def test_stop_of_a_pending_restream_needs_no_worker(
    db: Database, farm: service.Farm, sent: list[ControlMessage]
) -> None:
    restream = create(db, farm, active=True)
    with db.transaction() as session:
        assert service.stop(session, ADMIN, restream.id).state is S.IDLE
    assert sent == []


def test_changing_a_running_definition_restarts_it_as_a_new_generation(
    db: Database, farm: service.Farm, redis_client: redis.Redis, sent: list[ControlMessage]
) -> None:
    simulate_node(db, redis_client, "n1")
    restream = create(db, farm, active=True)
    with db.transaction() as session:
        reports.apply(session, Attempt(restream.id, 1, "n1"), reports.Running())
    sent.clear()
    with db.transaction() as session:
        service.update(
            session, farm, ADMIN, restream.id,
            service.Changes(definition=definition(video_transcoding="libx265")),
        )  # fmt: skip
    # Stopped where it runs first: generation 2 starts only once generation 1 has exited.
    current = load(db, restream.id)
    assert (current.state, current.generation, current.node_name) == (S.STOPPING, 1, "n1")
    assert [m.task for m in sent] == [TASK_RESTREAM_STOP]
    sent.clear()
    with db.transaction() as session:  # what the worker reports when generation 1 is gone
        moving = reports.apply(session, Attempt(restream.id, 1, "n1"), reports.Ended(outcome=Outcome.STOPPED, exit_code=0))  # fmt: skip
        assert moving is not None
        place_now(session, farm, moving)
    current = load(db, restream.id)
    assert (current.state, current.generation, current.node_name) == (S.STARTING, 2, "n1")
    assert [m.task for m in sent] == [TASK_RESTREAM_START]
    assert current.definition["transcoding"]["video_transcoding"] == "libx265"


def test_starting_a_stopping_restream_waits_for_its_ffmpeg_to_exit(
    db: Database, farm: service.Farm, redis_client: redis.Redis, sent: list[ControlMessage]
) -> None:
    simulate_node(db, redis_client, "n1")
    simulate_node(db, redis_client, "n2")
    restream = create(db, farm, active=True)
    with db.transaction() as session:
        service.stop(session, ADMIN, restream.id)
    sent.clear()
    with db.transaction() as session:
        service.start(session, farm, ADMIN, restream.id)
    current = load(db, restream.id)
    assert (current.state, current.active, sent) == (S.STOPPING, True, [])  # no second copy
    with db.transaction() as session:
        moving = reports.apply(session, Attempt(restream.id, 1, current.node_name or ""), reports.Ended(outcome=Outcome.STOPPED, exit_code=0))  # fmt: skip
    assert moving is not None and moving.state is S.PENDING  # placed again by the caller


def test_an_unchanged_definition_does_not_restart(
    db: Database, farm: service.Farm, redis_client: redis.Redis, sent: list[ControlMessage]
) -> None:
    simulate_node(db, redis_client, "n1")
    restream = create(db, farm, active=True)
    sent.clear()
    with db.transaction() as session:
        service.update(session, farm, ADMIN, restream.id, service.Changes(definition=definition()))
    assert (load(db, restream.id).generation, sent) == (1, [])


def test_remove_stops_the_ffmpeg_and_keeps_the_history(
    db: Database, farm: service.Farm, redis_client: redis.Redis, sent: list[ControlMessage]
) -> None:
    simulate_node(db, redis_client, "n1")
    restream = create(db, farm, active=True)
    with db.transaction() as session:
        service.remove(session, ADMIN, restream.id)
    assert sent[-1].task == TASK_RESTREAM_STOP
    with db.transaction() as session:
        assert session.get(Restream, restream.id) is None
    assert states_of(db, restream.id) == ["pending", "starting"]


def test_viewers_cannot_change_anything(db: Database, farm: service.Farm) -> None:
    viewer = Principal("v", Role.VIEWER, None)
    with pytest.raises(Forbidden, match="viewer"), db.transaction() as session:
        service.create(session, farm, viewer, "r", definition(), active=False)


def test_a_server_input_reads_only_a_server_of_its_own_project(
    db: Database, farm: service.Farm
) -> None:
    with db.transaction() as session:
        other = ensure_project(session, "other")
        outsider = Principal("o", Role.ADMIN, other.id)
        spec = ServerSpec(kind=ServerKind.RTMP, name="theirs", port=9100)
        theirs = servers.create(session, farm, outsider, spec, active=False).id
    module_input = RestreamDefinition.model_validate(
        {
            "input": {
                "input_type": "INPUT_TYPE_RTMP_SOFTWARE",
                "input_server_id": theirs,
                "input_stream_id": "key",
            },
            "outputs": [OUT],
        }
    )
    with pytest.raises(InvalidInput) as refused, db.transaction() as session:
        service.create(session, farm, ADMIN, "r", module_input, active=False)
    assert refused.value.problems[0].field == "input.input_server_id"
    with db.transaction() as session:
        assert service.count(session, ADMIN) == 0


def test_a_project_sees_only_its_own_restreams(db: Database, farm: service.Farm) -> None:
    restream = create(db, farm, active=False)
    with db.transaction() as session:
        other = ensure_project(session, "other")
        outsider = Principal("o", Role.ADMIN, other.id)
        with pytest.raises(RestreamNotFound):
            service.get(session, outsider, restream.id)
        assert service.list_all(session, outsider) == []


def test_local_files_only_when_the_operator_allows_them(
    db: Database, redis_client: redis.Redis, settings: Settings
) -> None:
    local = RestreamDefinition.model_validate(
        {
            "input": {"input_type": "INPUT_TYPE_OTHER", "input_stream_url": "file:///srv/loop.ts"},
            "outputs": [OUT],
        }
    )
    strict = service.Farm(redis_client, settings)
    with (
        pytest.raises(InvalidInput, match="reading local files is not allowed"),
        db.transaction() as session,
    ):
        service.create(session, strict, ADMIN, "local", local, active=False)
    lenient = service.Farm(redis_client, settings.model_copy(update={"allow_local_files": True}))
    with db.transaction() as session:
        assert service.create(session, lenient, ADMIN, "local", local, active=False).state is S.IDLE


def test_a_state_change_is_stamped_by_the_database_clock(db: Database, farm: service.Farm) -> None:
    """The reconciler measures time in a state with PostgreSQL's `now()`: a stamp from the
    host's clock (which may be off by seconds) would make it judge too early or too late."""
    restream = create(db, farm, active=True)
    with db.transaction() as session:
        before = session.execute(select(func.clock_timestamp())).scalar_one()
        service.stop(session, ADMIN, restream.id)
        after = session.execute(select(func.clock_timestamp())).scalar_one()
        assert database_now(session) == load(db, restream.id).state_changed_at
    assert before <= load(db, restream.id).state_changed_at <= after


def test_a_restream_its_silent_node_may_still_run_starts_nowhere_else_and_stops_there(
    db: Database, farm: service.Farm, redis_client: redis.Redis, sent: list[ControlMessage]
) -> None:
    """RECOVERING with its node kept (the node stopped answering; its copy may be stopping
    there): a start places it nowhere else, a stop is sent to that node and confirmed as any
    stop (never a quiet IDLE that a new start could run beside the old copy)."""
    simulate_node(db, redis_client, "a")
    restream = create(db, farm, active=True)
    simulate_node(db, redis_client, "b")
    with db.transaction() as session:
        lost = session.get(Restream, restream.id)
        assert lost is not None
        lost.phase = Phase.RECOVERING  # as the reconciler's Lose leaves it: still on "a"
    sent.clear()
    with db.transaction() as session:
        service.start(session, farm, ADMIN, restream.id)
    assert sent == [] and load(db, restream.id).node_name == "a"
    with db.transaction() as session:
        service.stop(session, ADMIN, restream.id)
    stopped = load(db, restream.id)
    assert (stopped.state, stopped.node_name) == (S.STOPPING, "a")
    assert [(m.task, m.queue) for m in sent] == [(TASK_RESTREAM_STOP, node_queue("a"))]


def test_summaries_read_by_postgresql_say_what_the_rows_say(
    db: Database, farm: service.Farm
) -> None:
    """Callaba's getAll reads summaries without loading rows: its times (formatted by
    PostgreSQL) and kinds (read from the stored definition) are those of the row itself."""
    created = [create(db, farm, active=False, name=f"r{i}") for i in range(3)]
    with db.transaction() as session:
        listed = service.summaries(session, ADMIN)
        rows = [session.get(Restream, r.id) for r in created]
        assert listed == [Summary.of(row) for row in rows if row is not None]
    assert listed[0].restream_type == "RESTREAM_TYPE_TEST_VIDEO_TO_UDP"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", listed[0].created)


def test_an_ended_report_and_a_delete_of_its_restream_do_not_deadlock(
    committing_db: Database, redis_client: redis.Redis, settings: Settings
) -> None:
    """A request deleting a restream locks its row, then its runs go with it; a worker's
    `ended` report for it at that moment must lock in the same order (row, then run), or
    PostgreSQL kills one of the two as a deadlock (the API answered 503)."""
    db, farm = committing_db, service.Farm(redis=redis_client, settings=settings)
    simulate_node(db, redis_client, "a")
    with db.transaction() as session:
        restream = service.create(session, farm, ADMIN, "r", definition(), active=True)
    attempt = Attempt(restream.id, restream.generation, "a")
    with db.transaction() as session:
        reports.apply(session, attempt, reports.Starting(pid=1, restarts=0))  # its run's row
    errors: list[BaseException] = []

    def report_ended() -> None:
        try:
            with db.transaction() as session:
                reports.apply(session, attempt, reports.Ended(Outcome.STOPPED, exit_code=0))
        except BaseException as error:
            errors.append(error)

    with db.transaction() as session:
        session.execute(select(Restream).where(Restream.id == restream.id).with_for_update())
        reporter = threading.Thread(target=report_ended)
        reporter.start()
        time.sleep(0.5)  # the report is under way, waiting for a lock
        session.execute(delete(Restream).where(Restream.id == restream.id))
    reporter.join(10)
    assert not errors, errors
