"""`streamfleet admin ensure-secret`: the Helm chart's generated secrets, made once.

Run by the chart's hook Job (before install and every upgrade) with the Job's service account:
it creates the Secret with a random value for each `--key NAME=LENGTH` and each `--derived
NAME=TEMPLATE` filled in from them (`{POSTGRES_PASSWORD}` in a URL), and, when the Secret
exists, adds only the keys it lacks: a value once made is never changed. The chart itself then
renders no random value at all, so `helm template` (Argo CD, Flux) gives the same objects on
every run and nothing rolls; the Secret is not Helm's, so no sync deletes it.

The Kubernetes API is reached as a pod reaches it (`common.kube`; `--api` and `--token-file`
name others, for tests).
"""

from __future__ import annotations

import argparse
import base64
import secrets
import string
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import quote

from common.cli.localfarm import DEFAULT_DATA_DIR
from common.kube import Kubernetes

ALPHABET = string.ascii_letters + string.digits  # safe in URLs and on command lines


def pairs(texts: list[str], what: str) -> dict[str, str]:
    found = {}
    for text in texts:
        name, sep, value = text.partition("=")
        if not sep or not name:
            raise SystemExit(f"{what} must be NAME=VALUE, not {text!r}")
        found[name] = value
    return found


def random_value(length: int) -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(length))


def wanted(
    current: dict[str, str], keys: dict[str, int], derived: dict[str, str]
) -> dict[str, str]:
    """The values to add: the keys `current` lacks, random; then the derived ones it lacks,
    from every value (current or new)."""
    added = {name: random_value(length) for name, length in keys.items() if name not in current}
    values = {**current, **added}
    for name, template in derived.items():
        if name not in current:
            added[name] = template.format_map({k: quote(v, safe="") for k, v in values.items()})
    return added


def ensure(
    kube: Kubernetes,
    *,
    namespace: str,
    name: str,
    keys: dict[str, int],
    derived: dict[str, str],
    labels: dict[str, str],
) -> str:
    """Create the Secret, or add what it lacks. Says what it did."""
    path = f"/api/v1/namespaces/{namespace}/secrets"
    try:
        secret = kube.call("GET", f"{path}/{name}")
    except urllib.error.HTTPError as error:
        if error.code != 404:
            raise
        secret = None
    current = {
        key: base64.b64decode(value).decode()
        for key, value in ((secret or {}).get("data") or {}).items()
    }
    added = wanted(current, keys, derived)
    encoded = {key: base64.b64encode(value.encode()).decode() for key, value in added.items()}
    if secret is None:
        kube.call(
            "POST",
            path,
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": name, "namespace": namespace, "labels": labels},
                "type": "Opaque",
                "data": encoded,
            },
        )
        return f"created secret {name} with {', '.join(sorted(added))}"
    if not added:
        return f"secret {name} has every key: nothing changed"
    kube.call("PATCH", f"{path}/{name}", {"data": encoded}, kind="merge")
    return f"added {', '.join(sorted(added))} to secret {name}; its other keys kept"


def cmd_ensure_secret(args: argparse.Namespace) -> int:
    keys = {name: int(length) for name, length in pairs(args.key, "--key").items()}
    try:
        kube = Kubernetes.in_cluster(args.api, args.token_file)
    except ValueError as error:
        raise SystemExit(f"--api: {error}") from None
    print(
        ensure(
            kube,
            namespace=args.namespace,
            name=args.name,
            keys=keys,
            derived=pairs(args.derived, "--derived"),
            labels=pairs(args.label, "--label"),
        )
    )
    return 0


def add_parser(commands: Any) -> None:
    ensure_secret = commands.add_parser(
        "ensure-secret", help="make a Secret's generated values once (the Helm chart's hook)"
    )
    ensure_secret.add_argument("--name", required=True)
    ensure_secret.add_argument("--namespace", required=True)
    ensure_secret.add_argument("--key", action="append", default=[], help="NAME=LENGTH")
    ensure_secret.add_argument("--derived", action="append", default=[], help="NAME=TEMPLATE")
    ensure_secret.add_argument("--label", action="append", default=[], help="NAME=VALUE")
    ensure_secret.add_argument("--api", help="the Kubernetes API (default: in-cluster)")
    ensure_secret.add_argument("--token-file", type=Path)
    ensure_secret.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    ensure_secret.set_defaults(func=cmd_ensure_secret)
