"""Every tunable of streamfleet, in one settings object.

Values come from the environment (`STREAMFLEET_*`, plus the conventional `DATABASE_URL`,
`REDIS_URL` and `FFMPEG_BINARY`). Each field has a default and a one-line description; the
README's configuration table is generated from the same descriptions.
"""

from __future__ import annotations

import json
import re
import socket
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

MIN_PASSWORD_LENGTH = 12
MIN_JWT_SECRET_LENGTH = 32  # RFC 7518 §3.2: an HS256 key is at least as long as the hash


NODE_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,126}[A-Za-z0-9])?")


def _default_node_name() -> str:
    """The host name, made a valid node name (processes that never use it must still start)."""
    name = re.sub(r"[^A-Za-z0-9._-]", "-", socket.gethostname().split(".")[0])
    return name.strip("._-")[:128].rstrip("._-") or "node"


class Settings(BaseSettings):
    """The farm's configuration. Secrets have no usable default: see `require_secrets`."""

    model_config = SettingsConfigDict(
        env_prefix="STREAMFLEET_", extra="ignore", populate_by_name=True
    )

    database_url: str = Field(
        "postgresql://postgres@127.0.0.1:5432/streamfleet",
        validation_alias=AliasChoices("DATABASE_URL", "STREAMFLEET_DATABASE_URL"),
        description="PostgreSQL URL: the source of truth for definitions and desired state.",
    )
    redis_url: str = Field(
        "redis://127.0.0.1:6379/0",
        validation_alias=AliasChoices("REDIS_URL", "STREAMFLEET_REDIS_URL"),
        description="Redis URL: Celery broker, node leases and live statistics.",
    )
    admin_email: str = Field(
        "admin@streamfleet.local",
        description="E-mail of the farm administrator, created at API start-up if missing.",
    )
    admin_password: SecretStr | None = Field(
        None,
        description="Farm administrator's password (required; `streamfleet up` makes one).",
    )
    jwt_secret: SecretStr | None = Field(
        None,
        description="HS256 secret of login tokens (required; `streamfleet up` makes one).",
    )
    jwt_ttl_s: int = Field(30 * 24 * 3600, description="Lifetime of a login token, in seconds.")
    login_failures_per_account: int = Field(
        5,
        ge=1,
        description="Failed logins of one account within `login_failure_window_s` after which "
        "its logins are refused (429) until the oldest leaves the window.",
    )
    login_failures_per_address: int = Field(
        20,
        ge=1,
        description="Failed logins from one client address within `login_failure_window_s` "
        "after which its logins are refused (429).",
    )
    login_failure_window_s: float = Field(
        60.0, gt=0, description="Window in which failed logins are counted."
    )
    default_project_name: str = Field(
        "default", description="Project that farm-wide credentials create restreams in."
    )

    node_name: str = Field(
        default_factory=_default_node_name,
        description=(
            "Name of this worker node, one per worker (letters, digits, `.`, `_`, `-`; at most "
            "128); its Celery queue is `node.<name>`."
        ),
    )
    node_address: str = Field(
        "127.0.0.1", description="Address publishers and peers use to reach this node."
    )
    listen_address: str = Field(
        "0.0.0.0",  # noqa: S104  (listen inputs take publishers from the network)
        description="Address listen inputs (*_LISTEN) bind to on this node.",
    )
    media_dir: str = Field(
        default_factory=lambda: str(Path(tempfile.gettempdir()) / "streamfleet-media"),
        description="Directory for HLS output on this node (<dir>/<restream>/<output>/).",
    )
    local_rtmp_url: str | None = Field(
        None,
        description="Another RTMP server for OUTPUT_TYPE_LOCAL_RTMP_URL instead of the node's "
        "own (STREAMFLEET_RTMP_SERVER_PORT), e.g. rtmp://127.0.0.1:1935/live; none by default.",
    )
    rtmp_server_port: int = Field(
        1935,
        ge=0,
        le=65535,
        description="Port of this node's own RTMP server (nginx with the RTMP module, run by "
        "the worker), which OUTPUT_TYPE_LOCAL_RTMP_URL publishes to and players read; 0: none. "
        "Not started when STREAMFLEET_LOCAL_RTMP_URL names another server.",
    )
    server_kinds: str = Field(
        "srt,rtmp",
        description="The media server modules this node may run (`srt`, `rtmp`, comma-"
        "separated; empty: none), of those whose engine it has (libsrt; nginx-rtmp).",
        pattern=r"^\s*((srt|rtmp)\s*(,\s*(srt|rtmp)\s*)*)?$",
    )
    rtsp_server_port: int = Field(
        8554,
        ge=0,
        le=65533,
        description="Port players read this node's own RTSP server on (npm rtsp-streaming-server, "
        "run by the worker; RTP over UDP from port + 2 on, 200 ports); its restreams' "
        "OUTPUT_TYPE_LOCAL_RTSP_URL outputs publish to port + 1; 0: none. Not started when "
        "STREAMFLEET_LOCAL_RTSP_URL names another server.",
    )
    local_rtsp_url: str | None = Field(
        None,
        description="Another RTSP server for RTSP playback (OUTPUT_TYPE_LOCAL_RTSP_URL) instead "
        "of the node's own (STREAMFLEET_RTSP_SERVER_PORT), e.g. rtsp://127.0.0.1:8554/live; none "
        "by default.",
    )
    playback_base_url: str | None = Field(
        None,
        description="Base URL viewers reach this node's HLS/DASH at (a CDN or ingress may front "
        "it); default http://<node address>:<worker HTTP port>.",
    )
    allow_local_files: bool = Field(
        False, description="Let INPUT_TYPE_OTHER read file: URLs on the node (off: safer)."
    )
    cpu_millicores: int | None = Field(
        None,
        ge=1,
        description="CPU this node offers, in millicores; default cores x 1000 x overcommit.",
    )
    cpu_overcommit: float = Field(
        1.0, gt=0, description="Multiplier on the detected cores when CPU capacity is not declared."
    )
    u30_devices: int | None = Field(
        None,
        ge=0,
        description="Alveo U30 devices of this node (2 per card); default: counted in sysfs.",
    )
    node_labels: Annotated[dict[str, str], NoDecode] = Field(
        default_factory=dict,
        description="Labels of this node, e.g. `region=eu-west,zone=a` (JSON also accepted).",
    )
    live_video_ports: str = Field(
        "30000-30999",
        pattern=r"^\d{1,5}-\d{1,5}$",
        description="Ports (first-last) for live videos' ingests; each takes one, farm-wide.",
    )
    api_requests_per_s: int = Field(
        100,
        ge=0,
        description="Requests a second each credential (login token or API key) may make on the "
        "Callaba, Gjirafa and native surfaces, counted in Redis across API replicas; 0: no "
        "limit. The 5centsCDN surface has its own (STREAMFLEET_CDN_API_REQUESTS_PER_S).",
    )
    cdn_api_requests_per_s: int = Field(
        5,
        ge=0,
        description="Requests a second each key may make on the 5centsCDN surface (/v2), as "
        "that API allows; 0: no limit.",
    )
    worker_http_port: int = Field(
        9100,
        ge=0,
        le=65535,
        description="Worker's port for /healthz, /metrics and HLS/DASH playback (0: none).",
    )
    worker_http_address: str | None = Field(
        None,
        description="Address the worker's HTTP port binds to; default the node address (in a "
        "container with its own network, 0.0.0.0).",
    )
    drain_on_cordon: bool = Field(
        False,
        description="Follow this worker's Kubernetes node (named STREAMFLEET_NODE_NAME): drain "
        "when it is cordoned or tainted for removal, undrain when it is uncordoned (the Helm "
        "chart sets it, with the RBAC to read nodes).",
    )
    outbound_private: bool = Field(
        False,
        description="Let webhooks and slate images reach loopback and private addresses (the "
        "node itself, the operator's internal network); link-local ones never.",
    )
    kubernetes_api_url: str | None = Field(
        None,
        description="The Kubernetes API for STREAMFLEET_DRAIN_ON_CORDON; default the pod's own "
        "(its service account's token and CA), e.g. http://127.0.0.1:8001 for `kubectl proxy`.",
        pattern=r"^https?://",
    )
    beat_http_port: int = Field(
        0,
        ge=0,
        le=65535,
        description="The reconciler's (`streamfleet beat`) port for /livez, /readyz and /metrics "
        "(0: none; the Helm chart sets 9120).",
    )
    beat_http_address: str = Field(
        "0.0.0.0",  # noqa: S104  (probes come from outside its container)
        description="Address the reconciler's HTTP port binds to.",
    )
    metrics_token: SecretStr | None = Field(
        None,
        description="Bearer token Prometheus sends for /metrics of the workers and the API "
        "(`streamfleet up` makes one); unset: workers' /metrics open, the API's needs a "
        "farm-wide admin key.",
    )
    flower_basic_auth: SecretStr | None = Field(
        None,
        description="`user:password` for Flower; default: the administrator's e-mail and password.",
    )
    worker_concurrency: int = Field(
        8, ge=1, description="Threads of a worker's Celery pool (control messages only)."
    )

    lease_ttl_s: float = Field(
        3.0,
        gt=0,
        description="A Redis outage shorter than this less one renewal interval stops no "
        "FFmpeg; a worker that cannot renew its lease longer than this plus one renewal "
        "interval kills (fences) its FFmpeg.",
    )
    lease_renew_interval_s: float = Field(
        0.5,
        gt=0,
        description="How often a worker renews its lease (its live statistics go with a "
        "renewal once a second).",
    )
    fence_margin_s: float = Field(
        1.0,
        gt=0,
        description="A lease outlives its worker's fence by this much: a lost node's restreams "
        "start elsewhere only once its copies are certainly gone.",
    )
    stats_ttl_s: float = Field(5.0, gt=0, description="Lifetime of a restream's live statistics.")
    stall_timeout_s: float = Field(
        15.0, gt=0, description="FFmpeg without output progress this long is killed and retried."
    )
    input_loss_s: float = Field(
        1.5,
        gt=0,
        description="No media flowing this long: the restream reads `waiting` (its source is "
        "lost, or an output is blocked) until media flows again.",
    )
    source_retry_max_s: float = Field(
        3.0,
        gt=0,
        description="Longest pause between attempts to reach a lost source; a restream waits "
        "for its source for as long as it is wanted.",
    )
    stop_grace_s: float = Field(
        5.0, gt=0, description="After asking FFmpeg to stop, SIGKILL its process group after this."
    )
    restart_backoff_initial_s: float = Field(
        0.5, gt=0, description="First delay before restarting a crashed FFmpeg (doubles each time)."
    )
    restart_backoff_max_s: float = Field(
        15.0, gt=0, description="Longest delay between restarts of a crashed FFmpeg."
    )
    retry_budget: int = Field(
        5, ge=1, description="Failures within `retry_window_s` after which a restream is `failed`."
    )
    retry_window_s: float = Field(
        120.0, gt=0, description="Window in which FFmpeg failures count against the retry budget."
    )
    progress_period_s: float | None = Field(
        None,
        gt=0,
        description="FFmpeg `-stats_period`, seconds; default 1, or 0.25 for FFmpeg 7+ (whose "
        "main loop looks for stop requests only at this pace) where a stop lets FFmpeg finish "
        "its outputs.",
    )
    stderr_tail_lines: int = Field(
        40, ge=1, description="Lines of FFmpeg's stderr kept for error reports."
    )
    db_statement_timeout_s: float = Field(
        10.0,
        gt=0,
        description="PostgreSQL cancels a statement running longer; a server that does not "
        "answer at all (frozen) is given up on 1 s later and the connection closed.",
    )
    api_db_connections: int = Field(
        20,
        ge=2,
        description="Database connections of each API process (half kept open); at most this "
        "many requests use the database at once, the others wait their turn. A quarter of "
        "them is kept for requests that only read: a burst of writes never holds up a poll.",
    )
    api_db_wait_s: float = Field(
        10.0,
        gt=0,
        description="A request waiting this long for its turn at the database is answered 503 "
        "(busy), with Retry-After.",
    )
    control_message_expiry_s: float = Field(
        15.0, gt=0, description="A start/stop/sync message not delivered within this is dropped."
    )
    reconcile_interval_s: float = Field(
        1.0, gt=0, description="How often the reconciler compares desired and observed state."
    )
    placement_policy: Literal["spread", "pack"] = Field(
        "spread",
        description="Which fitting node gets a restream: `spread` (least loaded) or `pack`.",
    )
    ffmpeg_binary: str | None = Field(
        None,
        validation_alias=AliasChoices("FFMPEG_BINARY", "STREAMFLEET_FFMPEG_BINARY"),
        description=(
            "FFmpeg to run; default: the first `ffmpeg` on PATH that is not a Python wrapper, "
            "else the imageio-ffmpeg build."
        ),
    )
    log_level: str = Field("INFO", description="Log level of every streamfleet process.")
    log_format: Literal["auto", "json", "text"] = Field(
        "auto", description="Log lines as JSON or text; auto: JSON unless stderr is a terminal."
    )

    @field_validator("node_labels", mode="before")
    @classmethod
    def _labels(cls, value: Any) -> Any:
        """`region=eu-west,zone=a` as well as JSON."""
        if isinstance(value, str) and value.strip().startswith("{"):
            return json.loads(value)
        if isinstance(value, str):
            pairs = [p.split("=", 1) for p in value.split(",") if p.strip()]
            if any(len(p) != 2 for p in pairs):
                raise ValueError("labels are `key=value` pairs separated by commas")
            return {k.strip(): v.strip() for k, v in pairs}
        return value

    @field_validator("node_name")
    @classmethod
    def _node_name(cls, value: str) -> str:
        """It names a Celery queue, Redis keys and API paths, and is stored in 128 characters."""
        if not NODE_NAME.fullmatch(value):
            raise ValueError(
                f"{value!r} is not a node name: letters, digits, '.', '_' and '-', starting and "
                "ending with a letter or digit, at most 128 characters"
            )
        return value

    @field_validator("live_video_ports")
    @classmethod
    def _port_range(cls, value: str) -> str:
        first, last = (int(p) for p in value.split("-"))
        if not 1 <= first <= last <= 65535:
            raise ValueError("a range of ports `first-last` within 1-65535")
        return value

    @property
    def live_video_port_range(self) -> range:
        first, last = (int(p) for p in self.live_video_ports.split("-"))
        return range(first, last + 1)

    @property
    def playback_base(self) -> str | None:
        """Where this node's HLS and DASH are played from; None when it serves no HTTP."""
        if self.playback_base_url:
            return self.playback_base_url.rstrip("/")
        if not self.worker_http_port:
            return None
        return f"http://{self.node_address}:{self.worker_http_port}"

    @property
    def fence_after_s(self) -> float:
        """A worker that has not renewed its lease for this long kills its FFmpeg: an outage of
        `lease_ttl_s` less one renewal interval is survived, whenever it starts."""
        return self.lease_ttl_s + self.lease_renew_interval_s

    @property
    def lease_key_ttl_s(self) -> float:
        """How long a lease lives in Redis after its renewal: past its worker's fence."""
        return self.fence_after_s + self.fence_margin_s

    @field_validator("database_url")
    @classmethod
    def _psycopg_driver(cls, value: str) -> str:
        """Accept plain `postgresql://` URLs and run them on psycopg 3."""
        for prefix in ("postgresql://", "postgres://"):
            if value.startswith(prefix):
                return "postgresql+psycopg://" + value[len(prefix) :]
        return value

    def require_secrets(self) -> None:
        """Refuse to serve with missing or trivially short secrets."""
        missing = [
            f"{name} (at least {length} characters)"
            for name, value, length in (
                ("STREAMFLEET_ADMIN_PASSWORD", self.admin_password, MIN_PASSWORD_LENGTH),
                ("STREAMFLEET_JWT_SECRET", self.jwt_secret, MIN_JWT_SECRET_LENGTH),
            )
            if value is None or len(value.get_secret_value()) < length
        ]
        if missing:
            raise RuntimeError(
                f"set {' and '.join(missing)}; `streamfleet up` generates them for a local farm"
            )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()


def env_name(field: str) -> str:
    """The environment variable a setting is read from (the first one, if several)."""
    info = Settings.model_fields[field]
    alias = info.validation_alias
    if isinstance(alias, AliasChoices):
        return str(alias.choices[0])
    if isinstance(alias, str):
        return alias
    return f"STREAMFLEET_{field.upper()}"


def markdown_table() -> str:
    """The configuration table of the README, from the settings' own descriptions."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for field, info in Settings.model_fields.items():
        if info.default_factory is not None:
            default = {
                "node_name": "host name",
                "media_dir": "`<temp>/streamfleet-media`",
                "node_labels": "none",
            }.get(field, "(computed)")
        elif info.default is None:
            default = "—"
        else:
            default = f"`{info.default}`"
        rows.append(f"| `{env_name(field)}` | {default} | {info.description} |")
    return "\n".join(rows)
