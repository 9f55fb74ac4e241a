"""The Helm chart's hook that makes its generated secrets once, against a fake Kubernetes API
(an HTTP server holding Secrets in memory, as the API server's secrets endpoints answer)."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from common.cli.main import main

NAMESPACE = "streamfleet"


class FakeApi:
    def __init__(self) -> None:
        self.secrets: dict[str, dict[str, Any]] = {}
        self.calls: list[tuple[str, str, str | None]] = []
        api = self

        class Handler(BaseHTTPRequestHandler):
            def _reply(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _body(self) -> Any:
                return json.loads(self.rfile.read(int(self.headers["Content-Length"])))

            def _record(self) -> str:
                api.calls.append((self.command, self.path, self.headers.get("Authorization")))
                return self.path.rsplit("/", 1)[-1]

            def do_GET(self) -> None:
                name = self._record()
                if name in api.secrets:
                    self._reply(200, api.secrets[name])
                else:
                    self._reply(404, {"kind": "Status", "reason": "NotFound"})

            def do_POST(self) -> None:
                self._record()
                secret = self._body()
                api.secrets[secret["metadata"]["name"]] = secret
                self._reply(201, secret)

            def do_PATCH(self) -> None:
                name = self._record()
                assert self.headers["Content-Type"] == "application/merge-patch+json"
                api.secrets[name]["data"].update(self._body()["data"])
                self._reply(200, api.secrets[name])

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def values(self, name: str) -> dict[str, str]:
        data = self.secrets[name]["data"]
        return {key: base64.b64decode(value).decode() for key, value in data.items()}


@pytest.fixture
def api() -> Iterator[FakeApi]:
    fake = FakeApi()
    yield fake
    fake.server.shutdown()


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
