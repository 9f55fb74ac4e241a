"""The node's own RTSP server, for RTSP playback: npm's rtsp-streaming-server (Node.js), run by
the worker as it runs nginx-rtmp (`worker.served`).

Players read `rtsp://<node address>:<port>/live/<key>` (RTP over UDP, from the `RTP_PORTS`
ports after `port + 2`); this node's restreams publish their OUTPUT_TYPE_LOCAL_RTSP_URL outputs
to `port + 1`, logged in with a password made at each start, so that no one else can publish
into it. It carries whatever FFmpeg's RTSP muxer sends: H.264 and HEVC alike.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
from pathlib import Path

from worker.served import ServedProcess, connect_host

PACKAGE = Path(__file__).parent / "rtsp"
SCRIPT = PACKAGE / "rtsp_server.js"
RTP_PORTS = 200
PUBLISHER = "streamfleet"


class RtspServer(ServedProcess):
    name = "rtsp-server"

    def __init__(self, address: str, port: int, *, node: str = "node") -> None:
        super().__init__(address, port)
        self.node = node
        self.password = secrets.token_urlsafe(18)

    @property
    def publish_port(self) -> int:
        return self.port + 1

    @property
    def url(self) -> str:
        """Where players read it, seen from this node (the node's address replaces the host)."""
        return f"rtsp://127.0.0.1:{self.port}/live"

    @property
    def publish_url(self) -> str:
        """Where this node's restreams publish (a key follows)."""
        return f"rtsp://{PUBLISHER}:{self.password}@127.0.0.1:{self.publish_port}/live"

    def ports(self) -> list[tuple[int, str]]:
        return [(self.port, "TCP"), (self.publish_port, "TCP")]

    def missing(self) -> str | None:
        if shutil.which(self.node) is None:
            return "Node.js is not installed (Debian: nodejs)"
        if not (PACKAGE / "node_modules" / "rtsp-streaming-server").exists():
            return f"its npm package is not installed (make rtsp: npm ci in {PACKAGE})"
        return None

    def prepare(self, prefix: Path) -> list[str]:
        node = shutil.which(self.node)
        assert node is not None
        return [
            node, str(SCRIPT), str(self.publish_port), str(self.port), str(self.port + 2),
            str(RTP_PORTS),
        ]  # fmt: skip

    def spawning(self) -> dict[str, str] | None:
        return {**os.environ, "STREAMFLEET_RTSP_PUBLISH_PASSWORD": self.password}

    def answers(self) -> bool:
        host = connect_host(self.address)
        for port in (self.port, self.publish_port):
            try:
                with socket.create_connection((host, port), timeout=0.2):
                    pass
            except OSError:
                return False
        return True
