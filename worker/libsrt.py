"""The reference SRT library (Haivision's libsrt, Debian's `libsrt1.5-openssl`) through ctypes:
the few calls a router needs. ctypes releases the GIL around each call, so a thread blocked in
`recv` or `accept` holds up no other.

Option numbers are SRT_SOCKOPT's in srt.h (stable across 1.4 and 1.5).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import socket
import struct
from functools import cache

SRTO_SNDSYN = 1
SRTO_RCVBUF = 6
SRTO_MAXBW = 16
SRTO_LATENCY = 23
SRTO_PASSPHRASE = 26
SRTO_STREAMID = 46
SRTO_PEERIDLETIMEO = 55

SRTS_CONNECTED = 5  # SRT_SOCKSTATUS: above it, broken, closing, closed or gone
SRT_EASYNCSND = 6001  # SRT_EMN(AGAIN, WRAVAIL): the send buffer is full
SRT_ERROR = -1
LIBRARIES = ("libsrt.so.1.5", "libsrt-openssl.so.1.5", "libsrt-gnutls.so.1.5", "libsrt.so.1.4")
STATS_SIZE = 2048  # above sizeof(struct CBytePerfMon)


class SrtError(OSError):
    pass


@cache
def library() -> ctypes.CDLL | None:
    """libsrt, or None where it is not installed."""
    names = [*LIBRARIES, ctypes.util.find_library("srt")]
    for name in names:
        if not name:
            continue
        try:
            lib = ctypes.CDLL(name)
        except OSError:
            continue
        lib.srt_getlasterror_str.restype = ctypes.c_char_p
        lib.srt_sendmsg.argtypes = [
            ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_int, ctypes.c_int
        ]  # fmt: skip
        lib.srt_recvmsg.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        return lib
    return None


def missing() -> str | None:
    """Why this node cannot serve SRT, if it cannot."""
    if library() is None:
        return "libsrt is not installed (Debian: libsrt1.5-openssl)"
    return None


def _lib() -> ctypes.CDLL:
    lib = library()
    if lib is None:
        raise SrtError(missing())
    return lib


def last_error() -> tuple[int, str]:
    lib = _lib()
    code = lib.srt_getlasterror(None)
    return code, (lib.srt_getlasterror_str() or b"").decode(errors="replace")


def _check(result: int, what: str) -> int:
    if result == SRT_ERROR:
        code, text = last_error()
        raise SrtError(code, f"{what}: {text}")
    return result


def startup() -> None:
    _check(_lib().srt_startup(), "srt_startup")


def _sockaddr(address: str, port: int) -> bytes:
    if ":" in address:
        packed = socket.inet_pton(socket.AF_INET6, address)
        return struct.pack("<H", socket.AF_INET6) + struct.pack(">HI", port, 0) + packed + bytes(4)
    packed = socket.inet_aton(address)
    return struct.pack("<H", socket.AF_INET) + struct.pack(">H", port) + packed + bytes(8)


def _peer(raw: bytes) -> str:
    family = struct.unpack_from("<H", raw)[0]
    port = struct.unpack_from(">H", raw, 2)[0]
    if family == socket.AF_INET6:
        return f"[{socket.inet_ntop(socket.AF_INET6, raw[8:24])}]:{port}"
    return f"{socket.inet_ntoa(raw[4:8])}:{port}"


class Socket:
    """An SRT socket (its number), closed once."""

    def __init__(self, number: int, peer: str = "") -> None:
        self.number = number
        self.peer = peer
        self.closed = False

    @classmethod
    def create(cls) -> Socket:
        return cls(_check(_lib().srt_create_socket(), "srt_create_socket"))

    def set_int(self, option: int, value: int) -> None:
        raw = ctypes.c_int(value)
        _check(
            _lib().srt_setsockflag(self.number, option, ctypes.byref(raw), ctypes.sizeof(raw)),
            f"option {option}",
        )

    def set_int64(self, option: int, value: int) -> None:
        raw = ctypes.c_int64(value)
        _check(
            _lib().srt_setsockflag(self.number, option, ctypes.byref(raw), ctypes.sizeof(raw)),
            f"option {option}",
        )

    def set_text(self, option: int, value: str) -> None:
        raw = value.encode()
        _check(_lib().srt_setsockflag(self.number, option, raw, len(raw)), f"option {option}")

    def get_text(self, option: int) -> str:
        buffer = ctypes.create_string_buffer(1024)
        size = ctypes.c_int(len(buffer))
        _check(
            _lib().srt_getsockflag(self.number, option, buffer, ctypes.byref(size)),
            f"option {option}",
        )
        return buffer.raw[: size.value].decode(errors="replace")

    def get_int(self, option: int) -> int:
        raw = ctypes.c_int(0)
        size = ctypes.c_int(ctypes.sizeof(raw))
        _check(
            _lib().srt_getsockflag(self.number, option, ctypes.byref(raw), ctypes.byref(size)),
            f"option {option}",
        )
        return raw.value

    def bind(self, address: str, port: int) -> None:
        raw = _sockaddr(address, port)
        _check(_lib().srt_bind(self.number, raw, len(raw)), f"bind {address}:{port}")

    def listen(self, backlog: int) -> None:
        _check(_lib().srt_listen(self.number, backlog), "listen")

    def accept(self) -> Socket:
        raw = ctypes.create_string_buffer(128)
        size = ctypes.c_int(len(raw))
        number = _check(_lib().srt_accept(self.number, raw, ctypes.byref(size)), "accept")
        return Socket(number, _peer(raw.raw[: size.value]))

    def recv(self, buffer: ctypes.Array[ctypes.c_char]) -> int:
        """A message into `buffer`: its length; raises when the connection is gone."""
        return _check(_lib().srt_recvmsg(self.number, buffer, len(buffer)), "recv")

    def send(self, data: bytes | ctypes.Array[ctypes.c_char], size: int) -> bool:
        """One message, without waiting: False when its send buffer is full (the message is
        dropped); raises when the connection is gone."""
        if _lib().srt_sendmsg(self.number, data, size, -1, 0) != SRT_ERROR:
            return True
        code, text = last_error()
        if code == SRT_EASYNCSND:
            return False
        raise SrtError(code, f"send: {text}")

    def state(self) -> int:
        return int(_lib().srt_getsockstate(self.number))

    @property
    def connected(self) -> bool:
        return not self.closed and self.state() <= SRTS_CONNECTED

    def lost_packets(self) -> tuple[int, int]:
        """Packets lost on the way to it and from it since it connected (its statistics:
        pktSndLossTotal, pktRcvLossTotal)."""
        raw = ctypes.create_string_buffer(STATS_SIZE)
        if _lib().srt_bstats(self.number, raw, 0) == SRT_ERROR:
            return 0, 0
        sent_lost, received_lost = struct.unpack_from("<ii", raw.raw, 24)
        return sent_lost, received_lost

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            _lib().srt_close(self.number)
