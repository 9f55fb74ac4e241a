"""The OpenAPI document as client generators need it, checked by one: `openapi-python-client`
generates a client from `/openapi.json` of a real server, and the test drives a restream
through it (create with an Idempotency-Key, read its ETag, PATCH with If-Match, filter the
list, start, stop, remove). And the pages that show the document work without internet."""

from __future__ import annotations

import importlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.api.test_native import BODY

GENERATOR = shutil.which("openapi-python-client", path=str(Path(sys.executable).parent))


def document(client: TestClient) -> dict[str, Any]:
    found: dict[str, Any] = client.get("/openapi.json").json()
    return found


def test_every_operation_says_how_to_authenticate_and_has_a_stable_unique_id(
    client: TestClient,
) -> None:
    doc = document(client)
    assert set(doc["components"]["securitySchemes"]) == {
        "bearer", "accessToken", "projectKey", "cdnKey",
    }  # fmt: skip
    ids = []
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            ids.append(operation["operationId"])
            names = {p["name"].lower() for p in operation.get("parameters", [])}
            assert not names & {"authorization", "x-access-token", "x-api-key"}, (method, path)
            wanted = {"/v1/": "bearer", "/v2/": "cdnKey", "/api/v1/": "projectKey"}
            scheme = next((s for p, s in wanted.items() if path.startswith(p)), None)
            if path.startswith("/api/") and not path.startswith(("/api/v1/", "/api/auth/login")):
                scheme = "accessToken"
            assert operation.get("security") == ([{scheme: []}] if scheme else None), path
            assert "HTTPValidationError" not in json.dumps(operation)  # never answered
    assert len(ids) == len(set(ids))
    assert "native_create_restream" in ids and "callaba_create" in ids
    assert "cdn_create_stream" in ids and "gjirafa_create_live_video" in ids


def test_states_are_enums_schema_names_unique_and_creates_have_examples(
    client: TestClient,
) -> None:
    schemas = document(client)["components"]["schemas"]
    for model in ("RestreamIn", "WebhookIn"):
        assert schemas[model]["examples"], model
    assert not [name for name in schemas if "__" in name]  # a module path: a clash resolved
    assert schemas["RestreamOut"]["properties"]["state"] == {
        "$ref": "#/components/schemas/RestreamState",
        "description": "What it shows (README: Restream states).",
    }
    assert "running" in schemas["RestreamState"]["enum"]
    assert schemas["NodeOut"]["properties"]["state"]["$ref"].endswith("/NodeState")


def test_docs_and_redoc_use_the_assets_the_api_serves(client: TestClient) -> None:
    for page in ("/docs", "/redoc"):
        html = client.get(page).text
        assert "cdn.jsdelivr.net" not in html and "fonts.googleapis.com" not in html
        assets = [a for a in html.split('"') if a.startswith("/docs-assets/")]
        assert assets
        for asset in assets:
            served = client.get(asset)
            assert served.status_code == 200 and len(served.content) > 1000, asset


@pytest.fixture
def generated(served: str, tmp_path: Path) -> Iterator[Any]:
    """The client openapi-python-client makes of the served document, imported."""
    if GENERATOR is None:
        pytest.skip("openapi-python-client is not installed (the dev extra has it)")
    spec = tmp_path / "openapi.json"
    spec.write_text(httpx.get(f"{served}/openapi.json").text)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    made = subprocess.run(
        [GENERATOR, "generate", "--path", str(spec), "--output-path", str(tmp_path / "client")],
        capture_output=True, text=True, env=env, timeout=120, check=False,
    )  # fmt: skip
    assert made.returncode == 0, made.stdout + made.stderr
    assert "Warning" not in made.stdout, made.stdout  # every operation and model generated
    sys.path.insert(0, str(tmp_path / "client"))
    try:
        yield importlib.import_module("streamfleet_client")
    finally:
        sys.path.remove(str(tmp_path / "client"))
        for name in [m for m in sys.modules if m.startswith("streamfleet_client")]:
            del sys.modules[name]


def test_a_generated_client_drives_a_restream(
    generated: Any, served: str, admin: dict[str, str]
) -> None:
    models = importlib.import_module("streamfleet_client.models")
    key = admin["Authorization"].removeprefix("Bearer ")
    client = generated.AuthenticatedClient(base_url=served, token=key)
    body = models.RestreamIn.from_dict({**BODY, "name": "generated"})
    create = importlib.import_module("streamfleet_client.api.native.native_create_restream")
    made = create.sync_detailed(client=client, body=body, idempotency_key="k-1")
    again = create.sync_detailed(client=client, body=body, idempotency_key="k-1")
    assert made.status_code == again.status_code == 201
    assert made.parsed.id == again.parsed.id  # the same restream, not a second
    assert again.headers["Idempotent-Replayed"] == "true"
    other = models.RestreamIn.from_dict({**BODY, "name": "other"})
    reused = create.sync_detailed(client=client, body=other, idempotency_key="k-1")
    assert reused.status_code == 409 and "Idempotency-Key" in reused.parsed.error.message

    restream_id = made.parsed.id
    get = importlib.import_module("streamfleet_client.api.native.native_get_restream")
    read = get.sync_detailed(restream_id, client=client)
    assert read.parsed.state == models.RestreamState.IDLE
    etag = read.headers["ETag"]
    patch = importlib.import_module("streamfleet_client.api.native.native_patch_restream")
    renamed = patch.sync_detailed(
        restream_id, client=client, body=models.RestreamPatch(name="renamed"), if_match=etag
    )
    assert renamed.status_code == 200 and renamed.parsed.name == "renamed"
    assert renamed.headers["ETag"] != etag
    stale = patch.sync_detailed(
        restream_id, client=client, body=models.RestreamPatch(name="lost"), if_match=etag
    )
    assert stale.status_code == 412 and stale.parsed.error.code == "precondition_failed"

    listing = importlib.import_module("streamfleet_client.api.native.native_list_restreams")
    assert [r.id for r in listing.sync(client=client, name="RENAM").items] == [restream_id]
    assert listing.sync(client=client, state=models.RestreamState.RUNNING).items == []
    start = importlib.import_module("streamfleet_client.api.native.native_start_restream")
    assert start.sync(restream_id, client=client).state == models.RestreamState.PENDING
    pending = listing.sync(client=client, state=models.RestreamState.PENDING)
    assert [r.id for r in pending.items] == [restream_id]
    stop = importlib.import_module("streamfleet_client.api.native.native_stop_restream")
    assert stop.sync(restream_id, client=client).state == models.RestreamState.IDLE
    delete = importlib.import_module("streamfleet_client.api.native.native_delete_restream")
    assert delete.sync_detailed(restream_id, client=client).status_code == 204
