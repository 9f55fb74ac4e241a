"""The Helm chart's hook that makes its generated secrets once, against a fake Kubernetes API."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from common.cli.main import main
from tests.support.kube import FakeKubernetes as FakeApi

NAMESPACE = "streamfleet"


@pytest.fixture
def api() -> Iterator[FakeApi]:
    fake = FakeApi()
    yield fake
    fake.close()


def ensure(api: FakeApi, token: Path, *options: str) -> None:
    argv = [
        "admin", "ensure-secret", "--name", "sf-generated", "--namespace", NAMESPACE,
        "--api", api.url, "--token-file", str(token), *options,
        "--data-dir", str(token.parent / "no-farm"),  # no local farm's variables read
    ]  # fmt: skip
    assert main(argv) == 0


def test_values_are_made_once_and_only_missing_ones_are_added(api: FakeApi, tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("sa-token\n")
    url = "DATABASE_URL=postgresql://streamfleet:{POSTGRES_PASSWORD}@db:5432/streamfleet"
    ensure(api, token, "--key", "POSTGRES_PASSWORD=32", "--derived", url, "--label", "a=b")
    first = api.values("sf-generated")
    assert len(first["POSTGRES_PASSWORD"]) == 32 and first["POSTGRES_PASSWORD"].isalnum()
    assert first["DATABASE_URL"] == (
        f"postgresql://streamfleet:{first['POSTGRES_PASSWORD']}@db:5432/streamfleet"
    )
    assert api.secrets["sf-generated"]["metadata"]["labels"] == {"a": "b"}
    # Again, as every upgrade (and every Argo CD sync) runs it, with one key more.
    ensure(api, token, "--key", "POSTGRES_PASSWORD=32", "--key", "JWT=48", "--derived", url)
    second = api.values("sf-generated")
    assert {k: second[k] for k in first} == first  # nothing made before changes
    assert len(second["JWT"]) == 48
    ensure(api, token, "--key", "POSTGRES_PASSWORD=32", "--key", "JWT=48", "--derived", url)
    assert api.values("sf-generated") == second
    methods = [method for method, _, _ in api.calls]
    assert methods == ["GET", "POST", "GET", "PATCH", "GET"]  # the last run changed nothing
    assert {auth for _, _, auth in api.calls} == {"Bearer sa-token"}
    assert api.calls[0][1] == f"/api/v1/namespaces/{NAMESPACE}/secrets/sf-generated"
