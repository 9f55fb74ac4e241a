"""A small client of the Kubernetes API, reached as a pod reaches it.

In a pod: KUBERNETES_SERVICE_HOST/PORT, the service account's token and CA. Elsewhere an API
URL may be given (for example `kubectl proxy`'s http://127.0.0.1:8001), with a token file or
none. Used by the chart's secret hook and by workers that follow their node's cordon.
"""

from __future__ import annotations

import json
import os
import ssl
import urllib.request
from pathlib import Path
from typing import Any

ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")


class Kubernetes:
    def __init__(self, api: str, token: str | None, context: ssl.SSLContext | None) -> None:
        if not api.startswith(("https://", "http://")):
            raise ValueError(f"the Kubernetes API must be an http(s) URL, not {api!r}")
        self.api = api.rstrip("/")
        self.token = token
        self.context = context

    @classmethod
    def in_cluster(cls, api: str | None = None, token_file: Path | None = None) -> Kubernetes:
        """The API and credentials of the pod this runs in; `api` and `token_file` name others
        (no token file and none mounted: requests go without a token)."""
        if api is None:
            host = os.environ["KUBERNETES_SERVICE_HOST"]
            port = os.environ.get("KUBERNETES_SERVICE_PORT", "443")
            api = f"https://[{host}]:{port}" if ":" in host else f"https://{host}:{port}"
        token_file = token_file or ACCOUNT / "token"
        token = token_file.read_text().strip() if token_file.exists() else None
        ca = ACCOUNT / "ca.crt"
        context = None
        if api.startswith("https"):
            context = ssl.create_default_context(cafile=str(ca) if ca.exists() else None)
        return cls(api, token, context)

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        kind: str = "json",
        timeout_s: float = 30,
    ) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        headers = {
            "Content-Type": {"json": "application/json", "merge": "application/merge-patch+json"}[
                kind
            ]
        }
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        request = urllib.request.Request(  # noqa: S310  (http(s): the API's URL, checked above)
            self.api + path, data=data, method=method, headers=headers
        )
        with urllib.request.urlopen(request, timeout=timeout_s, context=self.context) as answer:  # noqa: S310
            return json.loads(answer.read() or b"{}")
