"""The node's relay: one source's datagrams copied to each restream it feeds."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from tests.support.wait import wait_for
from worker.relay import RelayHub


@pytest.fixture
def hub() -> Iterator[RelayHub]:
    relay = RelayHub()
    yield relay
    relay.close()


def listener(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", port))
    sock.settimeout(2)
    return sock


def test_every_subscriber_gets_every_datagram_and_leaves_alone(hub: RelayHub) -> None:
    source = hub.source_port("live", 1)
    a, b = listener(hub.subscribe("live", "a", 1)), listener(hub.subscribe("live", "b", 1))
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sender.sendto(b"packet-1", ("127.0.0.1", source))
        assert (a.recv(100), b.recv(100)) == (b"packet-1", b"packet-1")
        hub.forget("a", 1)  # a's FFmpeg ended
        sender.sendto(b"packet-2", ("127.0.0.1", source))
        assert b.recv(100) == b"packet-2"
        a.settimeout(0.3)
        with pytest.raises(TimeoutError):
            a.recv(100)
    finally:
        sender.close()
        a.close()
        b.close()


def test_the_end_of_an_older_generation_keeps_the_relay_open(hub: RelayHub) -> None:
    port = hub.source_port("live", 1)
    assert hub.source_port("live", 2) == port  # the new generation writes to the same relay
    hub.forget("live", 1)  # the old one's end arrives after
    assert hub.source_port("live", 2) == port
    hub.forget("live", 2)
    fresh = wait_for(lambda: hub.source_port("live", 3) != port, timeout_s=2)
    assert fresh


def test_subscribers_are_fed_by_the_next_generation_of_their_source(hub: RelayHub) -> None:
    hub.source_port("live", 1)
    a = listener(hub.subscribe("live", "a", 1))
    hub.forget("live", 1)  # the source stopped; the destination keeps waiting
    fresh = wait_for(lambda: hub.source_port("live", 2), timeout_s=2)
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sender.sendto(b"after-restart", ("127.0.0.1", fresh))
        assert a.recv(100) == b"after-restart"
    finally:
        sender.close()
        a.close()


def test_a_relay_counts_what_its_source_sends(hub: RelayHub) -> None:
    port = hub.source_port("metered", 1)
    assert hub.kbps("metered") is None and hub.kbps("unknown") is None
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sent = 0
    try:
        started = time.monotonic()
        while time.monotonic() - started < 1.6:
            sender.sendto(b"\x47" * 1316, ("127.0.0.1", port))
            sent += 1
            time.sleep(0.01)
        expected = sent * 1316 * 8 / 1000 / (time.monotonic() - started)
    finally:
        sender.close()
    rate = wait_for(lambda: hub.kbps("metered"), timeout_s=2)
    assert abs(rate - expected) / expected < 0.35, (rate, expected)
