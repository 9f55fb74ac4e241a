"""The reconciler's plan: desired + observed -> actions, as a table of situations."""

from __future__ import annotations

import pytest

from common.definitions.states import NodeState, Phase
from common.live import NodeLease
from common.nodes.capabilities import Requirements
from common.nodes.capacity import Cost, Reservation
from common.reconcile.plan import (
    Assign,
    Evacuate,
    FinishStop,
    KeepWaiting,
    Lose,
    MarkNodeActive,
    MarkNodeOffline,
    NodeView,
    Recover,
    RestreamView,
    Resume,
    Sync,
    plan,
)

P = Phase
X264 = Requirements(frozenset({"libx264"}))
NONE = Requirements(frozenset())


def lease(
    name: str,
    running: dict[str, int] | None = None,
    encoders: tuple[str, ...] = ("libx264",),
    millicores: int = 4000,
) -> NodeLease:
    return NodeLease(
        node=name,
        renewed_at=0,
        capabilities={"ffmpeg": {"encoders": list(encoders)}, "cpu": {"millicores": millicores}},
        running=running or {},
    )


def live(name: str, state: NodeState = NodeState.ACTIVE, **kwargs: object) -> NodeView:
    return NodeView(name, state, lease(name, **kwargs))  # type: ignore[arg-type]


def dead(name: str, state: NodeState = NodeState.ACTIVE) -> NodeView:
    return NodeView(name, state, None)


def restream(
    rid: str,
    phase: Phase,
    node: str | None = None,
    *,
    active: bool = True,
    generation: int = 1,
    needs: Requirements = NONE,
    age: float = 10.0,
    millicores: int = 0,
) -> RestreamView:
    return RestreamView(
        rid, phase, active, node, generation, age, Reservation(millicores), needs=needs
    )


def test_a_quiet_farm_needs_nothing() -> None:
    """Every node already runs what it should: no message at all."""
    actions = plan(
        [live("a", running={"r1": 3}), live("b")], [restream("r1", P.PLACED, "a", generation=3)]
    )
    assert actions == []


def test_a_node_missing_a_restream_is_synced() -> None:
    """A lost start message: the node's lease does not show the generation it should run."""
    actions = plan(
        [live("a", running={"r1": 2, "old": 1})], [restream("r1", P.PLACED, "a", generation=3)]
    )
    assert actions == [Sync("a", {"r1": 3})]


def test_dead_node_goes_offline_and_its_restreams_move() -> None:
    actions = plan(
        [dead("a"), live("b")],
        [
            restream("r1", P.PLACED, "a", generation=3),
            restream("r2", P.PLACED, "a", generation=1),
            restream("r3", P.PLACED, "b", generation=7),
        ],
    )
    assert actions == [
        MarkNodeOffline("a", "lease expired: no heartbeat"),
        Recover("r1", "node a lost: its lease lapsed"),
        Recover("r2", "node a lost: its lease lapsed"),
        Assign("r1", "b"),
        Assign("r2", "b"),
        Sync("b", {"r3": 7, "r1": 4, "r2": 2}),
    ]


def test_offline_node_with_a_lease_returns() -> None:
    actions = plan([live("a", NodeState.OFFLINE)], [])
    assert actions == [MarkNodeActive("a", "lease renewed")]


def test_pending_is_placed_when_capacity_appears_and_spread() -> None:
    needs = Requirements(frozenset({"libx264"}), Cost(1000))
    actions = plan(
        [live("a"), live("b")],
        [
            restream("p1", P.PENDING, needs=needs),
            restream("p2", P.PENDING, needs=needs),
            restream("r", P.PLACED, "a", millicores=1000),
        ],
    )
    # b starts empty so takes p1; then both have one, and the tie goes to a by name.
    assert actions == [
        Assign("p1", "b"),
        Assign("p2", "a"),
        Sync("a", {"r": 1, "p2": 2}),
        Sync("b", {"p1": 2}),
    ]


def test_nothing_fits_keeps_waiting_with_the_reason() -> None:
    actions = plan(
        [live("a")], [restream("p", P.PENDING, needs=Requirements(frozenset({"mpsoc_vcu_h264"})))]
    )
    assert actions == [KeepWaiting("p", "no live node's FFmpeg has the encoder mpsoc_vcu_h264")]


def test_inactive_pending_is_left_alone() -> None:
    assert plan([live("a")], [restream("p", P.PENDING, active=False)]) == []


def test_draining_node_takes_nothing_new() -> None:
    actions = plan([live("a", NodeState.DRAINING)], [restream("p", P.PENDING)])
    assert actions[0] == KeepWaiting(
        "p", "no live worker node: start one with `streamfleet worker`"
    )


@pytest.mark.parametrize(
    ("node_view", "age", "expected"),
    [
        (dead("a"), 0.0, [FinishStop("r", "node a lost while stopping")]),
        (live("a", running={"r": 1}), 10.0, []),  # still running there: wait for the worker
        (live("a"), 0.5, []),  # just asked: give the worker time to confirm
        (live("a"), 10.0, [FinishStop("r", "no FFmpeg left on a")]),
    ],
)
def test_stopping_finishes_when_the_ffmpeg_is_certainly_gone(
    node_view: NodeView, age: float, expected: list[object]
) -> None:
    actions = plan([node_view], [restream("r", P.STOPPING, "a", active=False, age=age)])
    assert [a for a in actions if not isinstance(a, Sync | MarkNodeOffline)] == expected


def test_stopping_restream_is_not_in_the_desired_set() -> None:
    actions = plan([live("a", running={"r": 1})], [restream("r", P.STOPPING, "a", active=False)])
    assert actions == [Sync("a", {})]


def test_a_draining_node_is_evacuated_and_takes_nothing() -> None:
    actions = plan(
        [live("a", NodeState.DRAINING, running={"r": 1}), live("b")],
        [restream("r", P.PLACED, "a"), restream("p", P.PENDING)],
    )
    assert actions == [
        Evacuate("r", "node a is draining: moving"),
        Assign("p", "b"),
        Sync("a", {}),
        Sync("b", {"p": 2}),
    ]


def test_a_draining_node_without_lease_stays_draining() -> None:
    assert plan([dead("a", NodeState.DRAINING)], []) == []


def test_a_moving_restream_is_placed_once_stopped() -> None:
    """STOPPING but still wanted (evacuated): once its FFmpeg is gone, placed elsewhere."""
    actions = plan(
        [live("a", NodeState.DRAINING), live("b")],
        [restream("r", P.STOPPING, "a", active=True, generation=4)],
    )
    assert actions == [
        FinishStop("r", "no FFmpeg left on a"),
        Assign("r", "b"),
        Sync("b", {"r": 5}),
    ]


def test_capacity_bounds_a_round_of_placements() -> None:
    """Placements in one round see each other: 1500-millicore restreams on two 4000-millicore
    nodes, one of which already holds 1000: four fit, the fifth waits."""
    heavy = Requirements(frozenset(), Cost(1500))
    actions = plan(
        [live("a"), live("b")],
        [restream(f"p{i}", P.PENDING, needs=heavy) for i in range(5)]
        + [restream("r", P.PLACED, "a", millicores=1000)],
    )
    assigned = [a for a in actions if isinstance(a, Assign)]
    waiting = [a for a in actions if isinstance(a, KeepWaiting)]
    assert [a.node for a in assigned] == ["b", "a", "b", "a"]  # spread, by utilisation
    assert [w.restream_id for w in waiting] == ["p4"]
    assert waiting[0].reason == (
        "not enough free CPU on any node: need 1500 millicores, the most free is 1000 on b"
    )


def follower(
    rid: str, phase: Phase, node: str | None = None, *, source: str = "live"
) -> RestreamView:
    return RestreamView(rid, phase, True, node, 1, 10.0, Reservation(0), None, NONE, source)


def test_a_restream_fed_by_a_relay_goes_where_its_source_is() -> None:
    actions = plan(
        [live("a"), live("b")],
        [restream("live", P.PLACED, "b", generation=2), follower("dest", P.PENDING)],
    )
    assert Assign("dest", "b") in actions  # b, although a is emptier


def test_when_the_source_moves_its_destinations_follow() -> None:
    actions = plan(
        [dead("a"), live("b"), live("c")],
        [
            restream("live", P.PLACED, "a"),
            restream("busy", P.PLACED, "b", millicores=3000),
            follower("dest", P.PLACED, "a"),
        ],
    )
    assert Recover("live", "node a lost: its lease lapsed") in actions
    assert Assign("live", "c") in actions
    assert Recover("dest", "node a lost: its lease lapsed") in actions
    assert Assign("dest", "c") in actions


def test_a_destination_on_a_live_node_its_source_left_is_stopped_there_first() -> None:
    actions = plan(
        [live("a"), live("b")],
        [restream("live", P.PLACED, "b", generation=2), follower("dest", P.PLACED, "a")],
    )
    assert Evacuate("dest", "its source moved to b") in actions
    assert not [a for a in actions if isinstance(a, Assign) and a.restream_id == "dest"]


def test_a_destination_waits_for_its_source() -> None:
    actions = plan(
        [live("a")], [restream("live", P.PENDING, active=False), follower("dest", P.PENDING)]
    )
    assert actions == [KeepWaiting("dest", "its source live is not running yet")]


def silent(name: str, state: NodeState = NodeState.ACTIVE, **kwargs: object) -> NodeView:
    """A node whose lease has not lapsed, but whose worker stopped answering."""
    return NodeView(name, state, lease(name, **kwargs), "its worker's connection closed")  # type: ignore[arg-type]


def test_a_node_that_stops_answering_is_offline_and_its_restreams_recovering_there() -> None:
    """Within a round of the worker's death, before its lease lapses: the truth is shown, but
    nothing moves yet (its copies may still be stopping)."""
    actions = plan(
        [silent("a", running={"r1": 3, "r2": 1}), live("b")],
        [
            restream("r1", P.PLACED, "a", generation=3),
            restream("r2", P.STOPPING, "a", generation=1, active=False),  # waits for its end
        ],
    )
    assert actions == [
        MarkNodeOffline("a", "stopped answering: its worker's connection closed"),
        Lose("r1", "node a stopped answering (its worker's connection closed)"),
    ]


def test_recovering_on_a_node_waits_for_it_then_moves_or_resumes() -> None:
    """RECOVERING with its node kept: nothing while that node is silent; placed elsewhere
    once its lease lapsed; placed there again when it answers (which starts it again, unless
    its FFmpeg kept running)."""
    waiting = restream("r1", P.RECOVERING, "a", generation=3)
    assert plan([silent("a", NodeState.OFFLINE), live("b")], [waiting]) == []
    assert plan([dead("a", NodeState.OFFLINE), live("b")], [waiting]) == [
        Recover("r1", "node a lost: its lease lapsed"),
        Assign("r1", "b"),
        Sync("b", {"r1": 4}),
    ]
    kept_running = plan([live("a", NodeState.OFFLINE, running={"r1": 3})], [waiting])
    assert kept_running == [
        MarkNodeActive("a", "lease renewed"),
        Resume("r1", "node a answers again; FFmpeg kept running"),
    ]
    fenced = plan([live("a", NodeState.OFFLINE)], [waiting])
    assert fenced == [  # placed there again by the control plane; the node starts it
        MarkNodeActive("a", "lease renewed"),
        Resume("r1", "node a answers again; it starts FFmpeg there again"),
        Sync("a", {"r1": 3}),
    ]


def test_while_redis_has_just_lost_its_data_no_node_is_judged() -> None:
    """Every lease is gone with Redis's data: a node without one may well be alive. What
    waits is placed on the nodes that renewed already; nothing is taken from the others."""
    actions = plan(
        [dead("a"), live("b")],
        [
            restream("r1", P.PLACED, "a", generation=3),
            restream("r2", P.RECOVERING, "a", generation=2),
            restream("r3", P.STOPPING, "a", generation=1),
            restream("r4", P.PENDING),
        ],
        judge_nodes=False,
    )
    assert actions == [Assign("r4", "b"), Sync("b", {"r4": 2})]


def test_a_server_input_goes_beside_its_server_and_follows_it() -> None:
    servers = [("server:s1", "b", "9000/UDP")]
    placed = plan(
        [live("a"), live("b")], [follower("r", P.PENDING, source="server:s1")], servers=servers
    )
    assert next(a for a in placed if isinstance(a, Assign)).node == "b"
    moved = plan(
        [live("a", running={"r": 1}), live("b")],
        [follower("r", P.PLACED, "a", source="server:s1")],
        servers=servers,
    )
    assert Evacuate("r", "its source moved to b") in moved
    waiting = plan([live("a")], [follower("r", P.PENDING, source="server:s2")])
    assert waiting == [KeepWaiting("r", "its server s2 is not running on any node yet")]


def test_a_servers_port_is_not_given_to_a_listen_input() -> None:
    listens = Requirements(frozenset(), listen_port="9000/UDP")
    actions = plan(
        [live("a")],
        [restream("r", P.PENDING, needs=listens)],
        servers=[("server:s1", "a", "9000/UDP")],
    )
    assert actions == [
        KeepWaiting(
            "r", "port 9000/UDP is taken on every node that could run this (server s1 on a)"
        )
    ]
