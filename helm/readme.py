"""Write the chart's README (helm/streamfleet/README.md) from its values.schema.json.

    python helm/readme.py          # write it
    python helm/readme.py --check  # exit 1 if it is not what the schema says (make test does)

Every key of the schema is a row: its path, type, default and description. Keys holding
Kubernetes structures (lists of them, free maps) are rows of their own; their inside is the
Kubernetes API's.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import yaml

CHART = Path(__file__).parent / "streamfleet"

HEADER = """\
# streamfleet Helm chart

<!-- Generated from values.schema.json by `python helm/readme.py`: edit the schema, not this. -->

{description}

Version {version} (streamfleet {app_version}); Kubernetes {kube_version}.

```sh
helm install farm helm/streamfleet --namespace streamfleet --create-namespace
helm test farm --namespace streamfleet   # the API and reconciler ready, a live worker
```

Defaults run CPU workers on every node (host network: listen inputs bind node ports), bundled
PostgreSQL and Redis for trials, generated secrets kept across upgrades, workers that drain when
their node is cordoned, at a PriorityClass of their own. See the repository's README
("Deploying", "Observability") for a walk-through. `values.schema.json` refuses unknown keys.

## Values

| key | type | default | description |
|---|---|---|---|
"""


def type_of(node: dict[str, Any]) -> str:
    kind = node.get("type", "any")
    kinds = kind if isinstance(kind, list) else [kind]
    return " or ".join(kinds)


def cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def default_of(node: dict[str, Any]) -> str:
    if "properties" in node or "default" not in node:
        return ""  # an object of keys listed below it
    value = json.dumps(node["default"], ensure_ascii=False)
    return f"`{cell(value)}`" if len(value) <= 80 else "see values.yaml"


def rows(schema: dict[str, Any], path: str = "") -> list[str]:
    found = []
    for key, node in schema.get("properties", {}).items():
        here = f"{path}.{key}" if path else key
        description = cell(node.get("description", ""))
        found.append(f"| `{here}` | {type_of(node)} | {default_of(node)} | {description} |")
        found += rows(node, here)
        items = node.get("items")
        if isinstance(items, dict) and "properties" in items:
            found += rows(items, f"{here}[]")
    return found


def render() -> str:
    schema = json.loads((CHART / "values.schema.json").read_text())
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    header = HEADER.format(
        description=chart["description"],
        version=chart["version"],
        app_version=chart["appVersion"],
        kube_version=chart["kubeVersion"],
    )
    return header + "\n".join(rows(schema)) + "\n"


def main(argv: list[str]) -> int:
    target = CHART / "README.md"
    text = render()
    if "--check" in argv:
        if not target.exists() or target.read_text() != text:
            print(f"{target} is not what values.schema.json says: run python helm/readme.py")
            return 1
        return 0
    target.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
