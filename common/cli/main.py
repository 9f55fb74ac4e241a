"""`streamfleet`: run the farm or one of its parts, and administer it.

  streamfleet up [--host H] [--port 8080] [--data-dir DIR] [--flower]
  streamfleet api | worker | beat | flower | migrate   [--data-dir DIR]
  streamfleet admin create-project --name NAME [--data-dir DIR]
  streamfleet admin create-key --name NAME [--project ID --role R] [--data-dir DIR]
  streamfleet admin revoke-tokens --email EMAIL [--data-dir DIR]
  streamfleet admin init-secrets [--postgres-host postgres] --data-dir DIR   (Docker Compose's)
  streamfleet admin ensure-secret --name N --namespace NS --key K=LENGTH...   (the chart's hook)
  streamfleet config

Every subcommand reads its settings from the environment (see README); with `--data-dir` it
also joins the local farm that `streamfleet up` runs there.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pydantic import ValidationError

from common.cli import check, kube_secret, operate
from common.cli.localfarm import DEFAULT_DATA_DIR, apply_farm_environment


def _exec(*args: str) -> None:
    """Become `python <args>` (same interpreter, same environment, same PID)."""
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, [sys.executable, *args])  # noqa: S606 (our own interpreter)


def cmd_up(args: argparse.Namespace) -> int:
    from common.cli.up import UpOptions, run_up

    return run_up(
        UpOptions(
            host=args.host,
            port=args.port,
            data_dir=args.data_dir,
            flower=args.flower,
            flower_port=args.flower_port,
            node=args.node,
        )
    )


def cmd_api(args: argparse.Namespace) -> int:
    from common.config import Settings

    try:
        Settings().require_secrets()  # refused here in one line, not in uvicorn's traceback
    except RuntimeError as error:
        raise SystemExit(f"streamfleet api: {error}") from error
    _exec("-m", "api.serve", "--host", args.host, "--port", str(args.port))
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from common.celery_app import CONTROL_QUEUE, node_queue
    from common.config import Settings

    if args.node:
        os.environ["STREAMFLEET_NODE_NAME"] = args.node
    settings = Settings()
    node = settings.node_name
    _exec(
        "-m", "celery", "-A", "worker.app", "worker",
        "--pool", "threads",
        "--concurrency", str(settings.worker_concurrency),
        "--queues", f"{node_queue(node)},{CONTROL_QUEUE}",
        "--hostname", f"{node}@%h",
        "--without-gossip", "--without-mingle",
        "--task-events",
        "--loglevel", settings.log_level,
    )  # fmt: skip
    return 0


def cmd_beat(_args: argparse.Namespace) -> int:
    from common.cli.beat import main

    return main()


def cmd_flower(args: argparse.Namespace) -> int:
    from common.config import Settings

    settings = Settings()
    auth = []
    if settings.flower_basic_auth is not None:
        auth = [f"--basic-auth={settings.flower_basic_auth.get_secret_value()}"]
    elif settings.admin_password is not None:
        password = settings.admin_password.get_secret_value()
        auth = [f"--basic-auth={settings.admin_email}:{password}"]
    _exec(
        "-m", "celery", "-A", "common.celery_flower", "flower",
        f"--port={args.port}", f"--address={args.address}", *auth,
    )  # fmt: skip
    return 0


def cmd_migrate(_args: argparse.Namespace) -> int:
    from common.config import Settings
    from common.migrate import upgrade

    upgrade(Settings().database_url)
    print("database is at the newest revision")
    return 0


def _database() -> Any:
    from common.config import Settings
    from common.db import Database, make_engine

    settings = Settings()
    return Database(make_engine(settings.database_url, connections=2), lambda _message: None)


def cmd_create_key(args: argparse.Namespace) -> int:
    from common.accounts.principal import Role
    from common.accounts.service import create_api_key
    from common.models import Project

    db = _database()
    try:
        with db.transaction() as session:
            if args.project is not None and session.get(Project, args.project) is None:
                raise SystemExit(f"project {args.project} not found")
            row, plaintext = create_api_key(
                session, args.name, project_id=args.project, role=Role(args.role)
            )
    finally:
        db.dispose()
    scope = f"project {args.project}" if args.project else "farm-wide"
    print(f"created API key {row.prefix} ({row.name}), {scope} {args.role}; shown only once:")
    print(plaintext)
    return 0


def cmd_create_project(args: argparse.Namespace) -> int:
    from common.accounts.principal import Principal, Role
    from common.accounts.projects import create

    db = _database()
    try:
        with db.transaction() as session:
            project = create(session, Principal("cli", Role.ADMIN, None), args.name)
    finally:
        db.dispose()
    print(f"created project {project.name!r}; its id:")
    print(project.id)
    return 0


def cmd_revoke_tokens(args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from common import live
    from common.accounts import revocations
    from common.config import Settings
    from common.models import User

    db = _database()
    try:
        with db.transaction() as session:
            user_id = session.execute(
                select(User.id).where(User.email == args.email.strip())
            ).scalar_one_or_none()
    finally:
        db.dispose()
    if user_id is None:
        raise SystemExit(f"no user {args.email}")
    settings = Settings()
    client = live.connect(settings.redis_url)
    try:
        revocations.revoke_all(client, user_id, settings.jwt_ttl_s)
    finally:
        client.close()
    print(f"every login token of {args.email} issued until now is refused from now on")
    return 0


def cmd_init_secrets(args: argparse.Namespace) -> int:
    from common.cli.localfarm import init_secrets

    made = init_secrets(args.data_dir, args.postgres_host)
    print(f"secrets ready in {args.data_dir}: {', '.join(sorted(made))}")
    return 0


def cmd_config(_args: argparse.Namespace) -> int:
    from common.config import markdown_table

    print(markdown_table())
    return 0


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="streamfleet", description=__doc__.split("\n\n")[0])
    commands = top.add_subparsers(dest="command", required=True)

    def sub(name: str, help_text: str) -> argparse.ArgumentParser:
        command = commands.add_parser(name, help=help_text)
        command.add_argument(
            "--data-dir",
            type=Path,
            default=DEFAULT_DATA_DIR,
            help="local farm directory (embedded PostgreSQL/Redis, secrets); default .streamfleet",
        )
        return command

    up = sub("up", "run the whole farm on this machine")
    up.add_argument("--host", default="127.0.0.1", help="API bind address (default 127.0.0.1)")
    up.add_argument("--port", type=int, default=8080, help="API port (default 8080)")
    up.add_argument("--flower", action="store_true", help="also run Flower")
    up.add_argument("--flower-port", type=int, default=5555, help="Flower port (default 5555)")
    up.add_argument("--node", help="name of the local worker node (default: host name)")
    up.set_defaults(func=cmd_up)

    api = sub("api", "run the HTTP API")
    api.add_argument("--host", default="127.0.0.1")
    api.add_argument("--port", type=int, default=8080)
    api.set_defaults(func=cmd_api)

    worker = sub("worker", "run a worker node")
    worker.add_argument("--node", help="node name (default: STREAMFLEET_NODE_NAME or host name)")
    worker.set_defaults(func=cmd_worker)

    sub("beat", "run the reconciler schedule").set_defaults(func=cmd_beat)
    flower = sub("flower", "run Flower, the Celery monitor")
    flower.add_argument("--port", type=int, default=5555)
    flower.add_argument("--address", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    flower.set_defaults(func=cmd_flower)
    sub("migrate", "bring the database schema to the newest revision").set_defaults(
        func=cmd_migrate
    )

    check.add_parser(commands)
    operate.add_parsers(commands)
    commands.add_parser("config", help="list every setting (Markdown)").set_defaults(
        func=cmd_config, data_dir=DEFAULT_DATA_DIR
    )

    admin = commands.add_parser("admin", help="administer the farm")
    admin_commands = admin.add_subparsers(dest="admin_command", required=True)
    create_key = admin_commands.add_parser(
        "create-key", help="create an API key (farm-wide admin unless --project is given)"
    )
    create_key.add_argument("--name", required=True, help="what the key is for")
    create_key.add_argument("--project", help="the project the key belongs to (id)")
    create_key.add_argument(
        "--role", default="admin", choices=["admin", "operator", "viewer"], help="default admin"
    )
    create_key.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    create_key.set_defaults(func=cmd_create_key)
    kube_secret.add_parser(admin_commands)
    init = admin_commands.add_parser(
        "init-secrets", help="make Docker Compose's secrets once, in the data directory"
    )
    init.add_argument("--postgres-host", default="postgres", help="its PostgreSQL's host")
    init.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    init.set_defaults(func=cmd_init_secrets)
    revoke = admin_commands.add_parser(
        "revoke-tokens", help="refuse every login token a user holds (they log in again)"
    )
    revoke.add_argument("--email", required=True, help="the user's e-mail")
    revoke.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    revoke.set_defaults(func=cmd_revoke_tokens)
    create_project = admin_commands.add_parser("create-project", help="create a project")
    create_project.add_argument("--name", required=True, help="the project's unique name")
    create_project.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    create_project.set_defaults(func=cmd_create_project)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command != "up":
        apply_farm_environment(args.data_dir)
    from pydantic import ValidationError

    from common.errors import StreamfleetError

    try:
        result: int = args.func(args)
    except StreamfleetError as error:  # refused by the farm's rules: say why, no traceback
        raise SystemExit(f"streamfleet {args.command}: {error.message}") from error
    except ValidationError as error:
        if error.title != "Settings":
            raise
        raise SystemExit(f"streamfleet {args.command}: {settings_problems(error)}") from error
    return result


def settings_problems(error: ValidationError) -> str:
    """A refused configuration, one line per setting, named as the environment names it."""
    from common.config import Settings, env_name

    lines = ["invalid configuration:"]
    for problem in error.errors():
        field = str(problem["loc"][0]) if problem["loc"] else ""
        name = env_name(field) if field in Settings.model_fields else "settings"
        lines.append(f"  {name}: {str(problem['msg']).removeprefix('Value error, ')}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
