"""A TCP proxy the tests can cut or freeze, to part a process from Redis or PostgreSQL without
killing either."""

from __future__ import annotations

import contextlib
import socket
import threading

from sqlalchemy import make_url

from tests.support.media import free_port


class Proxy:
    """Forwards 127.0.0.1:<port> to a target; `cut()` closes every connection and refuses
    new ones: the worker behind it loses Redis while staying alive. `freeze()` keeps every
    connection open but carries nothing either way, as a server that is stopped (SIGSTOP) or
    whose host hangs looks to its clients; `thaw()` carries again what waited."""

    def __init__(self, target_host: str, target_port: int) -> None:
        """A host name is reached over TCP; a path (a directory of PostgreSQL's sockets, as an
        embedded server has them) over its Unix socket `.s.PGSQL.<port>`."""
        self.target = (target_host, target_port)
        self.port = free_port()
        self._server = socket.create_server(("127.0.0.1", self.port))
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._cut = threading.Event()
        self._flowing = threading.Event()
        self._flowing.set()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._cut.is_set():
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            try:
                upstream = self._connect()
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                self._flowing.wait()
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)

    def _connect(self) -> socket.socket:
        host, port = self.target
        if not host.startswith("/"):
            return socket.create_connection(self.target, timeout=5)
        upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        upstream.connect(f"{host}/.s.PGSQL.{port}")
        return upstream

    @classmethod
    def before_postgres(cls, url: str) -> tuple[Proxy, str]:
        """A proxy in front of the PostgreSQL server of `url`, and `url` through it."""
        parsed = make_url(url)
        socket_dir = parsed.query.get("host")
        host = socket_dir if isinstance(socket_dir, str) else parsed.host or "127.0.0.1"
        proxy = cls(host, parsed.port or 5432)
        query = {k: v for k, v in parsed.query.items() if k != "host"}
        through = parsed.set(host="127.0.0.1", port=proxy.port, query=query)
        return proxy, through.render_as_string(hide_password=False)

    def freeze(self) -> None:
        self._flowing.clear()

    def thaw(self) -> None:
        self._flowing.set()

    def cut(self) -> None:
        """Partition: existing connections close, new ones are refused."""
        self._cut.set()
        self._server.close()
        with self._lock:
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
