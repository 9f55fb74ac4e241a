"""`streamfleet check`: does the farm answer? The chart's `helm test` runs it.

It asks the API whether it is ready (PostgreSQL and Redis reached), the reconciler too when its
URL is given, then logs in as the administrator (STREAMFLEET_ADMIN_EMAIL and _PASSWORD) and
counts the worker nodes that hold a lease. Each step prints one line; the exit code is 1 if
any failed.
"""

from __future__ import annotations

import argparse
import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from common.cli.localfarm import DEFAULT_DATA_DIR


def fetch(url: str, body: Any = None, token: str | None = None) -> tuple[int, Any]:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers=headers)  # noqa: S310  (checked)
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310
            return answer.status, json.loads(answer.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, None


def check(api: str, beat: str | None, email: str, password: str | None, min_workers: int) -> bool:
    api = api.rstrip("/")
    steps: list[tuple[str, bool]] = []
    status, _ = fetch(f"{api}/readyz")
    steps.append((f"API {api}/readyz: {status}", status == 200))
    if beat:
        status, _ = fetch(f"{beat.rstrip('/')}/readyz")
        steps.append((f"reconciler {beat}/readyz: {status}", status == 200))
    if password is None:
        steps.append(("workers: no STREAMFLEET_ADMIN_PASSWORD to log in with", False))
    else:
        status, login = fetch(f"{api}/api/auth/login", {"email": email, "password": password})
        token = (login or {}).get("token") if isinstance(login, dict) else None
        if status != 200 or not token:
            steps.append((f"log in as {email}: {status}", False))
        else:
            status, listed = fetch(f"{api}/v1/nodes", token=token)
            if status != 200:
                steps.append((f"list the nodes ({api}/v1/nodes): {status}", False))
            else:
                live = sorted(n["name"] for n in listed if n.get("live"))
                steps.append(
                    (
                        f"{len(live)} live worker(s) (at least {min_workers} wanted): "
                        f"{', '.join(live) or 'none'}",
                        len(live) >= min_workers,
                    )
                )
    for line, ok in steps:
        print(f"{'ok  ' if ok else 'FAIL'} {line}")
    return all(ok for _, ok in steps)


def cmd_check(args: argparse.Namespace) -> int:
    from common.config import Settings

    for name, url in (("--api", args.api), ("--beat", args.beat)):
        if url is not None and not url.startswith(("http://", "https://")):
            raise SystemExit(f"streamfleet check: {name} must be an http(s) URL, not {url!r}")
    settings = Settings()
    password = settings.admin_password.get_secret_value() if settings.admin_password else None
    return 0 if check(args.api, args.beat, settings.admin_email, password, args.min_workers) else 1


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "check", help="check that the farm answers: API, reconciler, live workers"
    )
    parser.add_argument("--api", required=True, help="the API's URL, e.g. http://api:8080")
    parser.add_argument("--beat", help="the reconciler's HTTP URL, e.g. http://beat:9120")
    parser.add_argument("--min-workers", type=int, default=1, help="live workers wanted")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.set_defaults(func=cmd_check)
