"""A fake Kubernetes API: an HTTP server holding Secrets and Nodes in memory, answering as the
API server's endpoints for them do (GET, POST and merge-PATCH of Secrets; GET of Nodes)."""

from __future__ import annotations

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class FakeKubernetes:
    def __init__(self) -> None:
        self.secrets: dict[str, dict[str, Any]] = {}
        self.nodes: dict[str, dict[str, Any]] = {}
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

            def _record(self) -> tuple[dict[str, dict[str, Any]], str]:
                api.calls.append((self.command, self.path, self.headers.get("Authorization")))
                store = api.nodes if self.path.startswith("/api/v1/nodes/") else api.secrets
                return store, self.path.rsplit("/", 1)[-1]

            def do_GET(self) -> None:
                store, name = self._record()
                if name in store:
                    self._reply(200, store[name])
                else:
                    self._reply(404, {"kind": "Status", "reason": "NotFound"})

            def do_POST(self) -> None:
                self._record()
                secret = self._body()
                api.secrets[secret["metadata"]["name"]] = secret
                self._reply(201, secret)

            def do_PATCH(self) -> None:
                _, name = self._record()
                assert self.headers["Content-Type"] == "application/merge-patch+json"
                api.secrets[name]["data"].update(self._body()["data"])
                self._reply(200, api.secrets[name])

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def values(self, name: str) -> dict[str, str]:
        data = self.secrets[name]["data"]
        return {key: base64.b64decode(value).decode() for key, value in data.items()}

    def set_node(
        self, name: str, *, unschedulable: bool = False, taints: tuple[str, ...] = ()
    ) -> None:
        """A Node as `kubectl cordon` / `uncordon` and autoscalers leave it."""
        spec: dict[str, Any] = {"taints": [{"key": k, "effect": "NoSchedule"} for k in taints]}
        if unschedulable:
            spec["unschedulable"] = True
        self.nodes[name] = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": name},
            "spec": spec,
        }
