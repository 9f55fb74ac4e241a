"""The operator's commands: `streamfleet restreams ls|show|start|stop`, `streamfleet nodes
ls|drain|undrain`, `streamfleet events [--follow]`. Clients of the native API like any other:
`--api` (default STREAMFLEET_API_URL, else the local farm's http://127.0.0.1:8080) with
`--key` (default STREAMFLEET_API_KEY), else a login as the farm's administrator
(STREAMFLEET_ADMIN_EMAIL and _PASSWORD, which a local farm's directory provides). Tables for a
person, `--json` for a program (one object per line when following).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from common.cli.localfarm import DEFAULT_DATA_DIR

DEFAULT_API = "http://127.0.0.1:8080"
LIST_PAGE = 1000  # restreams asked for at a time (the most a page holds)


class ApiError(Exception):
    pass


class Client:
    def __init__(self, api: str, key: str | None) -> None:
        if not api.startswith(("http://", "https://")):
            raise ApiError(f"--api must be an http(s) URL, not {api!r}")
        self.api = api.rstrip("/")
        self.key = key

    def call(self, method: str, path: str, body: Any = None) -> Any:
        with self._open(method, path, body) as answer:
            raw = answer.read()
        return json.loads(raw) if raw else None

    def stream(self, path: str) -> Iterator[dict[str, Any]]:
        """The Server-Sent Events of `path`, each event's data."""
        with self._open("GET", path, None, accept="text/event-stream", timeout_s=None) as answer:
            for raw in answer:
                line = raw.decode().rstrip("\n")
                if line.startswith("data: "):
                    yield json.loads(line.removeprefix("data: "))

    def _open(
        self,
        method: str,
        path: str,
        body: Any,
        *,
        accept: str = "application/json",
        timeout_s: float | None = 15,
    ) -> Any:
        headers = {"Accept": accept, "Authorization": f"Bearer {self._credential()}"}
        data = None
        if body is not None:
            data, headers["Content-Type"] = json.dumps(body).encode(), "application/json"
        request = urllib.request.Request(  # noqa: S310  (http or https, checked above)
            self.api + path, data=data, method=method, headers=headers
        )
        try:
            return urllib.request.urlopen(request, timeout=timeout_s)  # noqa: S310
        except urllib.error.HTTPError as error:
            raise ApiError(_said(error)) from None
        except urllib.error.URLError as error:
            raise ApiError(f"cannot reach the API at {self.api}: {error.reason}") from None

    def _credential(self) -> str:
        if self.key:
            return self.key
        email = os.environ.get("STREAMFLEET_ADMIN_EMAIL", "admin@example.com")
        password = os.environ.get("STREAMFLEET_ADMIN_PASSWORD")
        if not password:
            raise ApiError("no --key (STREAMFLEET_API_KEY) and no STREAMFLEET_ADMIN_PASSWORD")
        request = urllib.request.Request(  # noqa: S310
            f"{self.api}/api/auth/login",
            data=json.dumps({"email": email, "password": password}).encode(),
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=15) as answer:  # noqa: S310
                self.key = str(json.loads(answer.read())["token"])
        except urllib.error.HTTPError as error:
            raise ApiError(f"log in as {email}: {_said(error)}") from None
        except urllib.error.URLError as error:
            raise ApiError(f"cannot reach the API at {self.api}: {error.reason}") from None
        return self.key


def _said(error: urllib.error.HTTPError) -> str:
    try:
        detail = json.loads(error.read())["error"]
    except (ValueError, KeyError, TypeError):
        return f"HTTP {error.code}"
    problems = "; ".join(f"{p['field']}: {p['message']}" for p in detail.get("problems") or [])
    return f"{detail['message']}{f' ({problems})' if problems else ''} [HTTP {error.code}]"


def table(rows: list[dict[str, Any]], columns: list[str], out: IO[str]) -> None:
    """`rows` as aligned columns under a header (`-` for nothing)."""
    cells = [[_cell(row.get(c)) for c in columns] for row in rows]
    widths = [max([len(c), *(len(r[i]) for r in cells)]) for i, c in enumerate(columns)]
    for line in [[c.upper() for c in columns], *cells]:
        out.write("  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)).rstrip() + "\n")


def _cell(value: Any) -> str:
    if value is None or value == "":
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def _restream_row(item: dict[str, Any], live: dict[str, Any] | None) -> dict[str, Any]:
    live = live or {}
    kbps = live.get("bitrate_kbps")
    return {
        "id": item["id"],
        "name": item["name"],
        "state": item["state"],
        "node": item["node"],
        "kbit/s": f"{kbps:.0f}" if isinstance(kbps, int | float) else None,
        "reason": item.get("state_reason"),
    }


def cmd_restreams(args: argparse.Namespace, client: Client, out: IO[str]) -> int:
    if args.action == "ls":
        items = _every_restream(client, {"state": args.state} if args.state else {})
        if args.json:
            out.write(json.dumps(items, indent=2) + "\n")
        else:
            rows = [_restream_row(i, _live(client, i)) for i in items]
            table(rows, ["id", "name", "state", "node", "kbit/s", "reason"], out)
        return 0
    path = f"/v1/restreams/{urllib.parse.quote(args.id, safe='')}"
    if args.action in ("start", "stop"):
        item = client.call("POST", f"{path}/{args.action}")
    else:
        item = client.call("GET", path)
    if args.json:
        out.write(json.dumps(item, indent=2) + "\n")
        return 0
    row = _restream_row(item, _live(client, item))
    for key in ("id", "name", "state", "node", "kbit/s", "reason"):
        out.write(f"{key:8} {_cell(row[key])}\n")
    if args.action == "show":
        out.write(f"{'error':8} {_cell(item.get('last_error'))}\n")
        for output in item.get("outputs") or []:
            where = output.get("output_stream_url") or ""
            out.write(f"{'output':8} {output.get('output_type')} {where}\n")
    return 0


def _every_restream(client: Client, filters: dict[str, str]) -> list[dict[str, Any]]:
    """Every restream the list gives with `filters`, page after page."""
    items: list[dict[str, Any]] = []
    while True:
        query = urllib.parse.urlencode({**filters, "limit": LIST_PAGE, "offset": len(items)})
        page = client.call("GET", f"/v1/restreams?{query}")
        items.extend(page["items"])
        if not page["items"] or len(items) >= page["total"]:
            return items


def _live(client: Client, item: dict[str, Any]) -> dict[str, Any] | None:
    if item["state"] != "running":
        return None
    stats: dict[str, Any] | None = client.call("GET", f"/v1/restreams/{item['id']}/stats")["live"]
    return stats


def cmd_nodes(args: argparse.Namespace, client: Client, out: IO[str]) -> int:
    if args.action in ("drain", "undrain"):
        node = urllib.parse.quote(args.name, safe="")
        client.call("POST", f"/v1/nodes/{node}/{args.action}")
        out.write(f"{args.name}: {'draining' if args.action == 'drain' else 'active'}\n")
        return 0
    nodes = client.call("GET", "/v1/nodes")
    if args.json:
        out.write(json.dumps(nodes, indent=2) + "\n")
        return 0
    rows = []
    for node in nodes:
        cpu = (node.get("capacity") or {}).get("cpu_millicores") or {}
        rows.append(
            {
                "name": node["name"],
                "state": node["state"],
                "live": node.get("live"),
                "cpu used/total (m)": f"{cpu.get('reserved', '-')}/{cpu.get('capacity', '-')}",
                "address": node.get("address"),
            }
        )
    table(rows, ["name", "state", "live", "cpu used/total (m)", "address"], out)
    return 0


def cmd_events(args: argparse.Namespace, client: Client, out: IO[str]) -> int:
    query = {"types": args.types} if args.types else {}
    if args.follow:
        found: Iterator[dict[str, Any]] = client.stream(
            f"/v1/events?{urllib.parse.urlencode(query)}"
        )
    else:
        page = client.call("GET", f"/v1/events?{urllib.parse.urlencode({**query, 'limit': 500})}")
        found = iter(page["events"])
    for event in found:
        if args.json:
            out.write(json.dumps(event) + "\n")
        else:
            move = f"{event['from_state']} -> {event['to_state']}" if event.get("to_state") else ""
            subject = event["subject"]
            out.write(
                f"{event['at'][:23]}  {event['type']:22} {subject['id']:26} {move:24} "
                f"{event['reason']}\n".replace("  \n", "\n")
            )
        out.flush()
    return 0


def run(args: argparse.Namespace) -> int:
    client = Client(args.api, args.key)
    try:
        return int(args.operate(args, client, sys.stdout))
    except ApiError as error:
        raise SystemExit(f"streamfleet {args.command}: {error}") from None
    except KeyboardInterrupt:
        return 130


def add_parsers(commands: Any) -> None:
    shared = argparse.ArgumentParser(add_help=False)  # the options of every action
    shared.add_argument(
        "--api",
        default=os.environ.get("STREAMFLEET_API_URL", DEFAULT_API),
        help=f"the API's URL (default STREAMFLEET_API_URL, else {DEFAULT_API})",
    )
    shared.add_argument(
        "--key",
        default=os.environ.get("STREAMFLEET_API_KEY"),
        help="an API key (default STREAMFLEET_API_KEY; else log in as the administrator)",
    )
    shared.add_argument("--json", action="store_true", help="JSON instead of a table")
    shared.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)

    def group(name: str, help_text: str, operate: Any) -> Any:
        parser = commands.add_parser(name, help=help_text)
        parser.set_defaults(func=run, operate=operate)
        return parser.add_subparsers(dest="action", required=True)

    restreams = group("restreams", "list, show, start and stop restreams", cmd_restreams)
    listing = restreams.add_parser(
        "ls", parents=[shared], help="every restream, with its state, node and bitrate"
    )
    listing.add_argument("--state", help="only those in this state (running, failed, ...)")
    for action, help_text in (("show", "one restream"), ("start", "start it"), ("stop", "stop it")):
        one = restreams.add_parser(action, parents=[shared], help=help_text)
        one.add_argument("id", help="the restream's id")

    nodes = group("nodes", "list nodes; drain or return one to service", cmd_nodes)
    nodes.add_parser("ls", parents=[shared], help="every node, its state and capacity")
    for action, help_text in (("drain", "move everything off it"), ("undrain", "take it back")):
        one = nodes.add_parser(action, parents=[shared], help=help_text)
        one.add_argument("name", help="the node's name")

    events = commands.add_parser(
        "events", parents=[shared], help="the farm's events: the latest, or --follow them"
    )
    events.add_argument("--follow", "-f", action="store_true", help="go on as they come")
    events.add_argument("--types", help="comma-separated: restream.state, node.state, ...")
    events.set_defaults(func=run, operate=cmd_events)
