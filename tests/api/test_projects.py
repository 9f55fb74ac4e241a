"""Projects and their keys: `/v1/projects`, roles, revocation, and the CLI that makes them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from common.cli.main import main
from common.db import Database
from common.models import ApiKey

RESTREAM = {
    "name": "r1",
    "input": {"input_type": "INPUT_TYPE_RTMP_URL", "input_stream_url": "rtmp://src/live/a"},
    "outputs": [{"output_type": "OUTPUT_TYPE_UDP_URL", "output_stream_url": "udp://127.0.0.1:5"}],
}


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def new_project(client: TestClient, admin: dict[str, str], name: str) -> str:
    response = client.post("/v1/projects", json={"name": name}, headers=admin)
    assert response.status_code == 201, response.text
    project_id: str = response.json()["id"]
    return project_id


def new_key(client: TestClient, admin: dict[str, str], project: str, role: str) -> dict[str, Any]:
    response = client.post(
        f"/v1/projects/{project}/keys", json={"name": f"{role} key", "role": role}, headers=admin
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def test_projects_are_created_listed_and_deleted_when_empty(
    client: TestClient, bearer: dict[str, str]
) -> None:
    project = new_project(client, bearer, "acme")
    assert client.post("/v1/projects", json={"name": "acme"}, headers=bearer).status_code == 409
    assert "acme" in [p["name"] for p in client.get("/v1/projects", headers=bearer).json()]
    assert client.get(f"/v1/projects/{project}", headers=bearer).json()["name"] == "acme"

    operator = bearer_of(new_key(client, bearer, project, "operator"))
    assert client.post("/v1/restreams", json=RESTREAM, headers=operator).status_code == 201
    refused = client.delete(f"/v1/projects/{project}", headers=bearer)
    assert refused.status_code == 409
    assert "still has 1 restreams" in refused.json()["error"]["message"]

    restream = client.get("/v1/restreams", headers=operator).json()["items"][0]["id"]
    assert client.delete(f"/v1/restreams/{restream}", headers=operator).status_code == 204
    assert client.delete(f"/v1/projects/{project}", headers=bearer).status_code == 204
    assert client.get(f"/v1/projects/{project}", headers=bearer).status_code == 404


def bearer_of(key: dict[str, Any]) -> dict[str, str]:
    return bearer(key["key"])


def test_keys_are_shown_once_stored_hashed_and_record_their_use(
    client: TestClient, bearer: dict[str, str], db: Database
) -> None:
    project = new_project(client, bearer, "acme")
    created = new_key(client, bearer, project, "viewer")
    assert created["key"].startswith(created["prefix"]) and created["key"].startswith("sf_")
    assert created["last_used_at"] is None
    listed = client.get(f"/v1/projects/{project}/keys", headers=bearer).json()
    assert [k["id"] for k in listed] == [created["id"]]
    assert "key" not in listed[0]  # never shown again
    with db.transaction() as session:
        stored = session.get(ApiKey, created["id"])
        assert stored is not None and created["key"] not in stored.secret_hash

    assert client.get("/v1/restreams", headers=bearer_of(created)).status_code == 200
    used = client.get(f"/v1/projects/{project}/keys", headers=bearer).json()[0]
    assert used["last_used_at"] is not None


def test_revocation_takes_effect_on_the_next_request(
    client: TestClient, bearer: dict[str, str]
) -> None:
    project = new_project(client, bearer, "acme")
    created = new_key(client, bearer, project, "operator")
    assert client.get("/v1/restreams", headers=bearer_of(created)).status_code == 200
    revoked = client.delete(f"/v1/projects/{project}/keys/{created['id']}", headers=bearer)
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
    refused = client.get("/v1/restreams", headers=bearer_of(created))
    assert refused.status_code == 401
    assert refused.json()["error"]["message"] == "unknown or revoked API key"


def test_roles(client: TestClient, bearer: dict[str, str]) -> None:
    project = new_project(client, bearer, "acme")
    admin = bearer_of(new_key(client, bearer, project, "admin"))
    operator = bearer_of(new_key(client, bearer, project, "operator"))
    viewer = bearer_of(new_key(client, bearer, project, "viewer"))

    # A project admin manages the project's keys; operators and viewers do not.
    assert new_key(client, admin, project, "viewer")["role"] == "viewer"
    for lesser in (operator, viewer):
        response = client.get(f"/v1/projects/{project}/keys", headers=lesser)
        assert response.status_code == 403
    # Only farm-wide admins create or delete projects, or see nodes.
    for scoped in (admin, operator, viewer):
        assert client.post("/v1/projects", json={"name": "x"}, headers=scoped).status_code == 403
        assert client.delete(f"/v1/projects/{project}", headers=scoped).status_code == 403
        assert client.get("/v1/nodes", headers=scoped).status_code == 403
        assert client.post("/v1/nodes/n1/drain", headers=scoped).status_code == 403
    # Operators change restreams; viewers only read them.
    created = client.post("/v1/restreams", json=RESTREAM, headers=operator)
    assert created.status_code == 201
    restream = created.json()["id"]
    assert client.get(f"/v1/restreams/{restream}", headers=viewer).status_code == 200
    assert client.post("/v1/restreams", json=RESTREAM, headers=viewer).status_code == 403
    for verb, path in [
        ("PATCH", f"/v1/restreams/{restream}"),
        ("POST", f"/v1/restreams/{restream}/start"),
        ("POST", f"/v1/restreams/{restream}/stop"),
        ("DELETE", f"/v1/restreams/{restream}"),
    ]:
        body = {"name": "renamed"} if verb == "PATCH" else None
        response = client.request(verb, path, json=body, headers=viewer)
        assert response.status_code == 403, (verb, path, response.text)
        assert "a viewer credential cannot do this" in response.json()["error"]["message"]
    # A project's list holds its restreams only; the farm admin sees every project's.
    assert client.post("/v1/restreams", json={**RESTREAM, "name": "farm"}, headers=bearer)
    seen = client.get("/v1/restreams", headers=viewer).json()["items"]
    assert [(r["id"], r["project_id"]) for r in seen] == [(restream, project)]
    everything = client.get("/v1/restreams", headers=bearer).json()["items"]
    assert {r["name"] for r in everything} == {"r1", "farm"}
    assert client.get(f"/v1/projects/{project}", headers=viewer).status_code == 200
    assert [p["id"] for p in client.get("/v1/projects", headers=viewer).json()] == [project]


def test_a_key_of_another_project_sees_no_project_of_others(
    client: TestClient, bearer: dict[str, str]
) -> None:
    mine, theirs = new_project(client, bearer, "mine"), new_project(client, bearer, "theirs")
    admin = bearer_of(new_key(client, bearer, mine, "admin"))
    for path in (f"/v1/projects/{theirs}", f"/v1/projects/{theirs}/keys"):
        other = client.get(path, headers=admin)
        missing = client.get(path.replace(theirs, "0" * 24), headers=admin)
        assert other.status_code == missing.status_code == 404
        assert other.json()["error"]["code"] == missing.json()["error"]["code"]
    assert (
        client.post(f"/v1/projects/{theirs}/keys", json={"name": "x"}, headers=admin).status_code
        == 404
    )


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, database_url: str, committing_db: Database) -> None:
    """The CLI on the test database; what it commits is emptied afterwards."""
    monkeypatch.setenv("DATABASE_URL", database_url)


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert main(list(argv)) == 0
    last: str = capsys.readouterr().out.strip().splitlines()[-1]
    return last


@pytest.mark.usefixtures("cli_env")
def test_cli_creates_a_project_and_a_scoped_key(
    client: TestClient, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    data_dir = str(tmp_path / "farm")
    project = run_cli(capsys, "admin", "create-project", "--name", "cli", "--data-dir", data_dir)
    key = run_cli(
        capsys, "admin", "create-key", "--name", "ci", "--project", project,
        "--role", "viewer", "--data-dir", data_dir,
    )  # fmt: skip
    assert [p["id"] for p in client.get("/v1/projects", headers=bearer(key)).json()] == [project]
    created = client.post("/v1/restreams", json=RESTREAM, headers=bearer(key))
    assert created.status_code == 403

    with pytest.raises(SystemExit, match="project nope not found"):
        main(["admin", "create-key", "--name", "x", "--project", "nope", "--data-dir", data_dir])
    with pytest.raises(SystemExit, match="a project named 'cli' already exists"):
        main(["admin", "create-project", "--name", "cli", "--data-dir", data_dir])
