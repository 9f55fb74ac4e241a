"""A media server module of the farm (Callaba's SRT and RTMP servers): what an operator
defines, how its stream ids read, and where it is reached. Pure.

An SRT server takes many streams on one UDP port, routed by `streamid`:

- publish: `publisher/<server>/<stream>`, or the SRT access-control form
  `#!::r=<server>/<stream>,m=publish`;
- play: `receiver/<server>/<stream>` (Callaba's form), `player/<server>/<stream>`, or
  `#!::r=<server>/<stream>` (`m=request`, the default). A player that names no stream
  (`receiver/<server>/`) gets the server's only stream, whichever it is.

An RTMP server takes streams at `rtmp://<node>:<port>/live/<stream>` and plays them there.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

SERVER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
STREAM_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")
RTMP_APPLICATION = "live"
MIN_PORT, MAX_PORT = 1024, 65535


class ServerKind(StrEnum):
    SRT = "srt"
    RTMP = "rtmp"

    @property
    def transport(self) -> str:
        return "UDP" if self is ServerKind.SRT else "TCP"

    @property
    def feature(self) -> str:
        """The feature of a node that can run servers of this kind."""
        return f"{self.value}-server"

    @property
    def engine(self) -> str:
        return "libsrt" if self is ServerKind.SRT else "nginx with the RTMP module"


class ServerState(StrEnum):
    """What surfaces show of a server: `stopped` (not wanted), `pending` (wanted, no node
    takes it: `reason` says why), `starting` (placed, its node has not said it runs yet),
    `running`, `failed` (its node could not run it: `reason`)."""

    STOPPED = "stopped"
    PENDING = "pending"
    STARTING = "starting"
    RUNNING = "running"
    FAILED = "failed"


class ServerSpec(BaseModel):
    """The settings of a server, as stored. The SRT options are libsrt's own (SRTO_*)."""

    model_config = ConfigDict(extra="forbid")

    kind: ServerKind
    name: str = Field(description="Unique in its project; part of every SRT stream id.")
    port: int = Field(ge=MIN_PORT, le=MAX_PORT, description="SRT: UDP; RTMP: TCP.")
    latency_ms: int = Field(200, ge=20, le=8000, description="SRT: SRTO_LATENCY, ms.")
    maxbw: int = Field(
        -1, ge=-1, le=10**10, description="SRT: SRTO_MAXBW, bytes/s (-1: relative to input)."
    )
    timeout_s: int = Field(
        10,
        ge=1,
        le=600,
        description="SRT: a peer silent this long is dropped (SRTO_PEERIDLETIMEO).",
    )
    rcvbuf: int | None = Field(
        None, ge=32 * 1024, le=1 << 30, description="SRT: SRTO_RCVBUF, bytes (libsrt's default)."
    )
    passphrase: str | None = Field(
        None,
        min_length=10,
        max_length=79,
        pattern=r"^[A-Za-z0-9_.~-]+$",
        description="SRT: every peer must use it (AES); letters, digits, '_', '.', '~', '-'.",
    )

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not SERVER_NAME.match(value):
            raise ValueError(
                "1 to 64 letters, digits, '_', '.' or '-', starting with a letter or digit "
                "(it is part of stream ids and URLs)"
            )
        return value

    @model_validator(mode="after")
    def _srt_only(self) -> ServerSpec:
        if self.kind is ServerKind.RTMP and self.passphrase is not None:
            raise ValueError("passphrase is for SRT servers")
        return self

    @property
    def port_key(self) -> str:
        """The port it holds on its node, as restream listen ports are held: "9000/UDP"."""
        return f"{self.port}/{self.kind.transport}"


Role = Literal["publisher", "player"]


@dataclass(frozen=True)
class Route:
    role: Role
    server: str
    stream: str  # "": a player that takes the server's only stream


_PLAYER_PREFIXES = ("receiver", "player")


def route(streamid: str) -> Route | None:
    """Who an SRT caller is and what it wants, from its `streamid`; None: not understood."""
    if streamid.startswith("#!::"):
        fields = dict(part.split("=", 1) for part in streamid[4:].split(",") if "=" in part)
        resource, mode = fields.get("r", ""), fields.get("m", "request")
        if mode not in ("publish", "request") or resource.count("/") != 1:
            return None
        server, stream = resource.split("/")
        role: Role = "publisher" if mode == "publish" else "player"
    else:
        parts = streamid.split("/")
        if len(parts) != 3:
            return None
        prefix, server, stream = parts
        if prefix == "publisher":
            role = "publisher"
        elif prefix in _PLAYER_PREFIXES:
            role = "player"
        else:
            return None
    if not SERVER_NAME.match(server) or (stream and not STREAM_NAME.match(stream)):
        return None
    if role == "publisher" and not stream:
        return None
    return Route(role, server, stream)


def input_stream(kind: ServerKind, server_name: str, stream_id: str | None) -> str:
    """The stream a server input reads, from its `input_stream_id`: a bare stream name, or the
    stream id its publisher used (`publisher/<server>/<stream>`, as Callaba's examples send:
    for an SRT server the server named must be this one; for an RTMP server, whose publishers
    send only a key, the last part is the key). Empty or absent: the server's only stream ("").
    Raises ValueError saying what is wrong."""
    text = (stream_id or "").strip()
    if not text:
        return ""
    if "/" in text:
        found = route(text)
        if found is None or found.role != "publisher" or text.count("/") != 2:
            raise ValueError("a stream name, or publisher/<server>/<stream> (exactly two '/')")
        if kind is ServerKind.SRT and found.server != server_name:
            raise ValueError(f"names server {found.server!r}, not this input's {server_name!r}")
        return found.stream
    if not STREAM_NAME.match(text):
        raise ValueError("a stream name: 1 to 128 letters, digits, '_', '.' or '-'")
    return text


def _host(address: str) -> str:
    return f"[{address}]" if ":" in address else address


def ingest_url(spec: ServerSpec, address: str, stream: str = "<stream>") -> str:
    """Where a publisher sends `stream`, on the node at `address`."""
    where = f"{_host(address)}:{spec.port}"
    if spec.kind is ServerKind.RTMP:
        return f"rtmp://{where}/{RTMP_APPLICATION}/{stream}"
    return f"srt://{where}?streamid=publisher/{spec.name}/{stream}" + _secret(spec)


def play_url(spec: ServerSpec, address: str, stream: str = "<stream>") -> str:
    """Where a player reads `stream` ("" for an SRT server: its only stream)."""
    where = f"{_host(address)}:{spec.port}"
    if spec.kind is ServerKind.RTMP:
        return f"rtmp://{where}/{RTMP_APPLICATION}/{stream}"
    return f"srt://{where}?streamid=receiver/{spec.name}/{stream}" + _secret(spec)


def _secret(spec: ServerSpec) -> str:
    return "&passphrase=<passphrase>" if spec.passphrase else ""


def input_url(spec: ServerSpec, stream: str) -> str:
    """What a restream on the server's own node reads (FFmpeg's URL, with the secrets)."""
    if spec.kind is ServerKind.RTMP:
        return f"rtmp://127.0.0.1:{spec.port}/{RTMP_APPLICATION}/{stream}"
    options = f"streamid=receiver/{spec.name}/{stream}&latency={spec.latency_ms * 1000}"
    if spec.passphrase:
        options += f"&passphrase={spec.passphrase}"
    return f"srt://127.0.0.1:{spec.port}?{options}"


def server_source(server_id: str) -> str:
    """What placement calls a server a restream must run beside (as a relay source)."""
    return f"server:{server_id}"
