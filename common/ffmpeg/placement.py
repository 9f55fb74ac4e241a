"""Where a restream runs, as its FFmpeg command line needs to know it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Placement:
    """Where and as what a restream runs: the node and what it offers for this run."""

    node_name: str
    node_address: str = "127.0.0.1"
    hw_device: int | None = None  # the U30 device the placement reserved
    restream_id: str = "restream"
    listen_address: str = "0.0.0.0"  # noqa: S104  (listen inputs take publishers from anywhere)
    media_dir: str = "/tmp/streamfleet-media"  # noqa: S108  (HLS segments: <dir>/<restream>/<output>)
    local_rtmp_url: str | None = None  # the node's own RTMP server, if it has one
    local_rtsp_url: str | None = None  # the node's own RTSP server, if it has one
    relay_port: int | None = None  # the node's relay: where a relay output sends / input reads
    server_url: str | None = None  # a server input: its server's stream, on this node
    meter_port: int | None = None  # where a copy goes to be counted (see `needs_meter`)
