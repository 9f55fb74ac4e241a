"""The node's own RTMP and RTSP servers (`worker.rtmp_server`, `worker.rtsp_server`): each
started unless the node has none (port 0) or publishes to another (STREAMFLEET_LOCAL_RTMP_URL,
STREAMFLEET_LOCAL_RTSP_URL). Where one cannot run, the node offers no such local output and
says why."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from common.config import Settings
from worker.rtmp_server import RtmpServer
from worker.rtsp_server import RtspServer

log = logging.getLogger(__name__)


@dataclass
class OwnServers:
    rtmp: RtmpServer | None = None
    rtsp: RtspServer | None = None

    @classmethod
    def start(cls, settings: Settings, node: str) -> OwnServers:
        own = cls()
        if settings.rtmp_server_port and not settings.local_rtmp_url:
            rtmp = RtmpServer(settings.listen_address, settings.rtmp_server_port)
            own.rtmp = rtmp if _started(rtmp, "RTMP", node) else None
        if settings.rtsp_server_port and not settings.local_rtsp_url:
            rtsp = RtspServer(settings.listen_address, settings.rtsp_server_port)
            own.rtsp = rtsp if _started(rtsp, "RTSP", node) else None
        return own

    def offers(self) -> dict[str, str]:
        """What the node advertises of them: where players read them (the node's address
        replaces the host)."""
        found = {}
        if self.rtmp is not None:
            found["local_rtmp_url"] = self.rtmp.url
        if self.rtsp is not None:
            found["local_rtsp_url"] = self.rtsp.url
        return found

    def stop(self) -> None:
        for server in (self.rtmp, self.rtsp):
            if server is not None:
                server.stop()


def _started(server: RtmpServer | RtspServer, protocol: str, node: str) -> bool:
    why = server.start()
    if why is not None:
        log.warning("node %s has no %s server of its own: %s", node, protocol, why)
        return False
    log.info("node %s serves %s on port %d", node, protocol, server.port)
    return True
