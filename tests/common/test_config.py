"""Settings that would break a promise are refused when the process starts."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
from pydantic import ValidationError

from common.cli.main import main
from common.config import Settings


def test_a_worker_fences_before_its_lease_expires_and_survives_a_ttl_without_redis() -> None:
    settings = Settings(lease_ttl_s=5, fence_margin_s=1, lease_renew_interval_s=1)
    # The last renewal came at most an interval before an outage began: a TTL of outage from
    # there is survived, and the lease lives a margin past the fence.
    assert settings.fence_after_s - settings.lease_renew_interval_s == settings.lease_ttl_s
    assert settings.lease_key_ttl_s - settings.fence_after_s == settings.fence_margin_s
    with pytest.raises(ValidationError, match="fence_margin_s"):
        Settings(fence_margin_s=0)


@pytest.mark.parametrize("name", ["node-1", "gpu_2", "ip-10-0-0-1.ec2.internal", "a", "x" * 128])
def test_node_names_that_fit_a_queue_a_key_and_a_path(name: str) -> None:
    assert Settings(node_name=name).node_name == name


@pytest.mark.parametrize("name", ["", "a b", "a/b", "a,control", "-a", "a.", "é", "x" * 129])
def test_other_node_names_are_refused(name: str) -> None:
    with pytest.raises(ValidationError, match="is not a node name"):
        Settings(node_name=name)


def test_the_cli_names_each_refused_setting_without_a_traceback(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("STREAMFLEET_NODE_NAME", "unused")  # `worker --node` sets it
    monkeypatch.setenv("STREAMFLEET_NODE_LABELS", "region")
    with pytest.raises(SystemExit) as refused:
        main(["worker", "--node", "a b", "--data-dir", str(tmp_path)])
    assert str(refused.value).splitlines() == [
        "streamfleet worker: invalid configuration:",
        "  STREAMFLEET_NODE_NAME: 'a b' is not a node name: letters, digits, '.', '_' and '-', "
        "starting and ending with a letter or digit, at most 128 characters",
        "  STREAMFLEET_NODE_LABELS: labels are `key=value` pairs separated by commas",
    ]


def test_up_refuses_a_bad_configuration_before_it_starts_anything(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("STREAMFLEET_NODE_LABELS", "region")
    before = dict(os.environ)
    with pytest.raises(SystemExit) as refused:
        main(["up", "--data-dir", str(tmp_path), "--node", "local"])
    assert str(refused.value).startswith("streamfleet up: invalid configuration:\n")
    assert [p.name for p in tmp_path.iterdir()] == ["secrets.json"]  # no database, no Redis
    assert dict(os.environ) == before  # the check leaves no trace in `up`


def test_the_api_refuses_missing_secrets_in_one_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("STREAMFLEET_ADMIN_PASSWORD", raising=False)
    monkeypatch.delenv("STREAMFLEET_JWT_SECRET", raising=False)
    with pytest.raises(SystemExit) as refused:
        main(["api", "--data-dir", str(tmp_path)])
    assert str(refused.value).startswith("streamfleet api: set STREAMFLEET_ADMIN_PASSWORD")


@pytest.mark.parametrize(
    ("host", "name"),
    [("web-1.example.com", "web-1"), ("bad_host_", "bad_host"), ("héllo", "h-llo"), ("", "node")],
)
def test_the_default_node_name_is_the_host_name_made_valid(
    monkeypatch: pytest.MonkeyPatch, host: str, name: str
) -> None:
    monkeypatch.delenv("STREAMFLEET_NODE_NAME", raising=False)
    monkeypatch.setattr(socket, "gethostname", lambda: host)
    assert Settings().node_name == name
