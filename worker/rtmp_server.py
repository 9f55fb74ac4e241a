"""The node's own RTMP server: nginx with the RTMP module (Debian's `libnginx-mod-rtmp`), run
by the worker as it runs FFmpeg — configured here, in its own process group, set to die with
the worker, started again when it dies, removed with everything it wrote when the worker stops.

Restreams of this node publish to it (`OUTPUT_TYPE_LOCAL_RTMP_URL`, from 127.0.0.1 only: no one
else may publish into it); players anywhere read it (`rtmp://<node address>:<port>/live/<key>`).
The same engine serves the farm's RTMP server modules (`worker.servers`): one nginx each,
taking publishers from anywhere, with its statistics (`rtmp_stat`) on a unix socket.
nginx runs as one process (`master_process off`): a master would leave its worker processes
behind when the worker is killed, and the worker is its supervisor here.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import socket
import xml.etree.ElementTree as ET
from pathlib import Path

from common.definitions.server import RTMP_APPLICATION
from common.live import PeerStats, StreamStats
from worker.served import ServedProcess, connect_host

# Where Debian's libnginx-mod-rtmp puts the module.
RTMP_MODULE = Path("/usr/lib/nginx/modules/ngx_rtmp_module.so")
APPLICATION = RTMP_APPLICATION
STAT_SOCKET = "stat.sock"


def nginx_config(
    prefix: Path, address: str, port: int, module: Path, *, module_server: bool = False
) -> str:
    """nginx.conf of the server: one application, `live`, that keeps nothing (`record off`).
    The node's own takes publishers from this node only; a server module from anywhere, and
    serves its statistics on a unix socket."""
    host = f"[{address}]" if ":" in address else address
    publish = (
        "allow publish all;"
        if module_server
        else "allow publish 127.0.0.1;\n            deny publish all;"
    )
    stat = (
        f"""
http {{
    access_log off;
    server {{
        listen unix:{prefix}/{STAT_SOCKET};
        location /stat {{
            rtmp_stat all;
        }}
    }}
}}
"""
        if module_server
        else ""
    )
    return f"""daemon off;
master_process off;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
load_module {module};

events {{
    worker_connections 1024;
}}

rtmp {{
    server {{
        listen {host}:{port};
        chunk_size 4096;
        application {APPLICATION} {{
            live on;
            record off;
            {publish}
            allow play all;
        }}
    }}
}}
{stat}"""


class RtmpServer(ServedProcess):
    """nginx-rtmp on `address`:`port`, supervised: `start` says why it cannot run, if it
    cannot; `stop` leaves nothing behind."""

    name = "nginx-rtmp"
    end_signal = signal.SIGQUIT  # nginx's graceful end

    def __init__(
        self,
        address: str,
        port: int,
        *,
        binary: str = "nginx",
        module: Path = RTMP_MODULE,
        module_server: bool = False,
    ) -> None:
        super().__init__(address, port)
        self.binary = binary
        self.module = module
        self.module_server = module_server

    @property
    def url(self) -> str:
        """Where this node's restreams publish (a key follows)."""
        return f"rtmp://127.0.0.1:{self.port}/{APPLICATION}"

    def missing(self) -> str | None:
        if shutil.which(self.binary) is None or not self.module.exists():
            return f"nginx with the RTMP module is not installed ({self.binary}, {self.module})"
        return None

    def prepare(self, prefix: Path) -> list[str]:
        binary = shutil.which(self.binary)
        assert binary is not None
        config = prefix / "nginx.conf"
        config.write_text(
            nginx_config(
                prefix, self.address, self.port, self.module, module_server=self.module_server
            )
        )
        # -e: its log from the first line on (the built-in one is not writable by everyone).
        return [binary, "-p", str(prefix), "-c", str(config), "-e", str(prefix / "error.log")]

    def answers(self) -> bool:
        try:
            with socket.create_connection((connect_host(self.address), self.port), timeout=0.2):
                return True
        except OSError:
            return False

    def streams(self) -> list[StreamStats]:
        """Its streams now, from nginx-rtmp's own statistics (module servers only)."""
        document = self.stat_document()
        return parse_stat(document) if document is not None else []

    def stat_document(self) -> bytes | None:
        """nginx-rtmp's `rtmp_stat` XML (module servers only), None if it did not answer."""
        if self.prefix is None or not self.module_server:
            return None
        with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX) as client:
            client.settimeout(1.0)
            client.connect(str(self.prefix / STAT_SOCKET))
            client.sendall(b"GET /stat HTTP/1.0\r\nHost: stat\r\n\r\n")
            answer = b""
            while chunk := client.recv(65536):
                answer += chunk
            return answer.partition(b"\r\n\r\n")[2]
        return None


def parse_stat(document: bytes) -> list[StreamStats]:
    """nginx-rtmp's `rtmp_stat` XML as stream statistics. It counts bytes per stream, not
    per client: each player is shown the stream's outgoing rate shared evenly; its bitrates
    are averages over 10 s (so a new stream shows bytes before a rate)."""
    try:
        root = ET.fromstring(document)  # noqa: S314  (written by our own nginx)
    except ET.ParseError:
        return []
    found = []
    for stream in root.iter("stream"):
        clients = stream.findall("client")
        players = [c for c in clients if c.find("publishing") is None]
        publishers = [c for c in clients if c.find("publishing") is not None]
        bw_in = int(stream.findtext("bw_in") or 0) / 1000
        bw_out = int(stream.findtext("bw_out") or 0) / 1000
        bytes_in = int(stream.findtext("bytes_in") or 0)
        bytes_out = int(stream.findtext("bytes_out") or 0)
        share = max(1, len(players))
        found.append(
            StreamStats(
                name=stream.findtext("name") or "",
                publisher=PeerStats(
                    address=publishers[0].findtext("address") or "", kbps=bw_in, bytes=bytes_in
                )
                if publishers
                else None,
                players=[
                    PeerStats(
                        address=p.findtext("address") or "",
                        kbps=bw_out / share,
                        bytes=bytes_out // share,
                    )
                    for p in players
                ],
            )
        )
    return found
