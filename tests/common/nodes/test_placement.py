"""Requirements and placement: table tests."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from common.definitions.restream import RestreamDefinition
from common.nodes.capabilities import Requirements, requirements
from common.nodes.capacity import Capacity, Cost, U30Load, Usage
from common.nodes.placement import Candidate, Placed, Unplaced, Wanted, place, plan_placements

OUT = {"output_type": "OUTPUT_TYPE_UDP_URL", "output_stream_url": "udp://h:1"}
PULL = {"input_type": "INPUT_TYPE_RTMP_URL", "input_stream_url": "rtmp://src/live/k"}
FULL = frozenset({"libx264", "libx265", "aac", "libmp3lame", "mpsoc_vcu_h264"})
SLOT = U30Load(encoder=250_000)


def definition(
    input: dict[str, Any], transcoding: dict[str, Any] | None = None
) -> RestreamDefinition:
    return RestreamDefinition.model_validate(
        {"input": input, "transcoding": transcoding, "outputs": [OUT]}
    )


@pytest.mark.parametrize(
    ("input", "transcoding", "encoders"),
    [
        (PULL, None, set()),  # stream copy needs no encoder
        (PULL, {"video_transcoding": "libx265"}, {"libx265"}),
        (PULL, {"audio_trancoding": "mp3"}, {"libmp3lame"}),
        ({"input_type": "INPUT_TYPE_GENERATE_TEST_VIDEO"}, None, {"libx264", "aac"}),
        ({"input_type": "INPUT_TYPE_GENERATE_TEST_VIDEO"},
         {"video_transcoding": "mpsoc_vcu_h264", "audio_trancoding": "mp3"},
         {"mpsoc_vcu_h264", "libmp3lame"}),
    ],
)  # fmt: skip
def test_requirements(
    input: dict[str, Any], transcoding: dict[str, Any] | None, encoders: set[str]
) -> None:
    needs = requirements(definition(input, transcoding))
    assert needs.encoders == encoders
    assert needs.cost.cpu_millicores > 0
    assert needs.listen_port is None


def node(
    name: str,
    *,
    cpu: int = 2000,
    used: int = 0,
    devices: tuple[int, ...] = (),
    u30: dict[int, U30Load] | None = None,
    encoders: frozenset[str] = FULL,
    ports: dict[str, str] | None = None,
) -> Candidate:
    return Candidate(
        name,
        f"10.0.0.{len(name)}",
        encoders,
        Capacity(cpu, devices),
        Usage(used, u30 or {}),
        ports or {},
    )


def needs(
    cpu: int = 500,
    u30: U30Load | None = None,
    encoders: frozenset[str] = frozenset({"libx264"}),
    port: str | None = None,
) -> Requirements:
    return Requirements(encoders, Cost(cpu, u30), port)


@pytest.mark.parametrize(
    ("candidates", "policy", "expected"),
    [
        ([node("a", used=1500), node("b", used=500), node("c", used=1000)], "spread", "b"),
        ([node("a", used=1000), node("b", used=500), node("c", used=1400)], "pack", "c"),
        # utilisation, not raw usage: 1000 of 4000 is emptier than 600 of 2000
        ([node("big", cpu=4000, used=1000), node("small", used=600)], "spread", "big"),
        ([node("b", used=100), node("a", used=100)], "spread", "a"),  # ties by name
        ([node("a", encoders=frozenset({"aac"})), node("b", used=1400)], "spread", "b"),
        ([node("full", used=1600), node("b", used=1400)], "pack", "b"),  # full cannot take 500
    ],
)
def test_place_picks_by_policy_among_those_that_fit(
    candidates: list[Candidate], policy: Any, expected: str
) -> None:
    result = place(needs(), candidates, policy)
    assert isinstance(result, Placed) and result.node == expected


def test_u30_jobs_go_to_a_device_with_free_units() -> None:
    busy = {0: U30Load(encoder=1_000_000), 1: U30Load(encoder=500_000)}
    result = place(needs(100, SLOT), [node("cpu-only"), node("card", devices=(0, 1), u30=busy)])
    assert result == Placed("card", "10.0.0.4", u30_device=1)


@pytest.mark.parametrize(("policy", "device"), [("spread", 1), ("pack", 0)])
def test_device_choice_follows_the_policy(policy: Any, device: int) -> None:
    card = node("card", devices=(0, 1), u30={0: U30Load(encoder=500_000)})
    result = place(needs(100, SLOT), [card], policy)
    assert isinstance(result, Placed) and result.u30_device == device


@pytest.mark.parametrize(
    ("need", "candidates", "reason"),
    [
        (needs(), [], "no live worker node: start one with `streamfleet worker`"),
        (needs(encoders=frozenset({"mpsoc_vcu_hevc"})), [node("a")],
         "no live node's FFmpeg has the encoder mpsoc_vcu_hevc"),
        (needs(encoders=frozenset({"libx264", "libx265"})),
         [node("a", encoders=frozenset({"libx264"})), node("b", encoders=frozenset({"libx265"}))],
         "no single live node has all of libx264, libx265"),
        (needs(3000), [node("a", used=1500), node("b", used=900)],
         "not enough free CPU on any node: need 3000 millicores, the most free is 1100 on b"),
        (needs(100, SLOT), [node("a"), node("b")],
         "no live node has a U30 device: this restream uses mpsoc_vcu_* on the card"),
        (needs(100, SLOT), [node("card", devices=(0,), u30={0: U30Load(encoder=880_000)})],
         "no node has a free U30 device: need 250000 encoder units, best node has 120000 (card)"),
        (needs(port="2035/UDP"), [node("a", ports={"2035/UDP": "62275f1bccaa650032da2b53"})],
         "port 2035/UDP is taken on every node that could run this "
         "(restream 62275f1bccaa650032da2b53 on a)"),
    ],
)  # fmt: skip
def test_nothing_fits_says_why(
    need: Requirements, candidates: list[Candidate], reason: str
) -> None:
    result = place(need, candidates)
    assert isinstance(result, Unplaced)
    assert result.reason == reason


@pytest.mark.parametrize(
    ("features", "reason"),
    [
        (frozenset({"protocol:srt"}), "no live node's FFmpeg supports the protocol srt"),
        (frozenset({"local-rtmp", "protocol:rtmp"}),
         "no live node has a local RTMP server (nginx-rtmp: STREAMFLEET_RTMP_SERVER_PORT)"),
    ],
)  # fmt: skip
def test_missing_features_are_named(features: frozenset[str], reason: str) -> None:
    plain = node("a", encoders=frozenset({"libx264"}))
    result = place(Requirements(frozenset(), features=features), [plain])
    assert result == Unplaced(reason, "capability")


def test_a_taken_port_is_its_own_kind_of_refusal() -> None:
    result = place(needs(port="2035/UDP"), [node("a", ports={"2035/UDP": "r0"})])
    assert isinstance(result, Unplaced)
    assert result.kind == "port"


def test_a_free_port_elsewhere_is_used() -> None:
    taken = node("a", ports={"2035/UDP": "x"})
    result = place(needs(port="2035/UDP"), [taken, node("b", used=1900 - 500)])
    assert isinstance(result, Placed) and result.node == "b"


def test_taking_adds_usage_and_port() -> None:
    card = node("card", devices=(0,))
    after = card.taking(needs(100, SLOT, port="1935/TCP"), 0, "r1")
    assert after.usage.cpu_millicores == 100
    assert after.usage.u30 == {0: SLOT}
    assert after.ports == {"1935/TCP": "r1"}
    assert card.usage.cpu_millicores == 0  # the original is unchanged


def test_a_node_selector_narrows_the_candidates_first() -> None:
    eu, us = (
        replace(node("eu"), labels={"region": "eu"}),
        replace(node("us"), labels={"region": "us"}),
    )
    unlabelled = node("plain", used=0)
    selected = replace(needs(), node_selector=(("region", frozenset({"us", "ap"})),))
    assert place(selected, [eu, us, unlabelled]) == Placed("us", us.address)
    nowhere = replace(needs(), node_selector=(("region", frozenset({"mars"})),))
    assert place(nowhere, [eu, us]) == Unplaced(
        "no live node matches its node selector: region in (mars)", "selector"
    )
    # Selected, but full: the usual reason, about the selected nodes only.
    full = replace(node("us", used=2000), labels={"region": "us"})
    assert place(selected, [eu, full]).kind == "capacity"  # type: ignore[union-attr]


def test_requirements_carry_the_selector_and_playback_features() -> None:
    defined = RestreamDefinition.model_validate(
        {
            "input": PULL,
            "transcoding": {"audio_sync": True},
            "outputs": [
                {"output_type": "OUTPUT_TYPE_DASH"},
                {"output_type": "OUTPUT_TYPE_LOCAL_RTSP_URL"},
            ],
            "node_selector": {"server": ["211", "11", "11"]},
        }
    )
    found = requirements(defined)
    assert found.node_selector == (("server", frozenset({"11", "211"})),)
    assert defined.node_selector == {"server": ["11", "211"]}
    assert {"local-rtsp", "protocol:file", "protocol:rtsp"} <= found.features
    assert found.encoders == {"aac"}  # audio_sync re-encodes the audio


def test_the_planner_places_in_turn_each_seeing_the_last() -> None:
    """One plan of five 800-millicore restreams on two 2000-millicore nodes: each goes where
    the ones before it left the most room, and the fifth finds 400 free at most."""
    wanted = [Wanted(f"r{i}", needs(800)) for i in range(5)]
    decisions = plan_placements(wanted, [node("a"), node("b", used=100)], {}, "spread")
    placed = [d.result.node if isinstance(d.result, Placed) else None for d in decisions]
    assert placed == ["a", "b", "a", "b", None]
    last = decisions[4].result
    assert isinstance(last, Unplaced) and "need 800 millicores, the most free is 400" in last.reason


def test_the_planner_puts_a_follower_beside_its_source() -> None:
    """A restream fed by a relay goes where its source runs: already (`running`), or placed
    by the same plan, whatever order they come in; with its source nowhere it waits."""
    small = needs(100)
    candidates = [node("a"), node("b", used=1500)]  # spread would pick a
    decisions = plan_placements(
        [Wanted("f1", small, source="s1"), Wanted("f2", small, source="s2"),
         Wanted("f3", small, source="s3")],
        candidates, {"s1": "b"}, "spread",
    )  # fmt: skip
    by_id = {d.restream_id: d for d in decisions}
    assert by_id["f1"].result == Placed("b", "10.0.0.1", None)
    assert by_id["f1"].needs.colocate == "b"  # what it holds there says so
    assert isinstance(by_id["f2"].result, Unplaced) and by_id["f2"].result.kind == "source"
    # A source placed in the same plan, listed after its follower, still goes first.
    decisions = plan_placements(
        [Wanted("f", small, source="s"), Wanted("s", small)], candidates, {}, "spread"
    )
    assert [d.restream_id for d in decisions] == ["s", "f"]
    assert all(isinstance(d.result, Placed) and d.result.node == "a" for d in decisions)
