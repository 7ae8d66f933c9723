"""A hostile MySQL server for tests: it accepts any login and answers statements with "send me
local file X" (the LOAD DATA LOCAL request), keeping whatever the client sends."""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Callable

OK = b"\x00\x00\x00\x02\x00\x00\x00"
CAPABILITIES = 0xFFFFFFFF & ~0x800 & ~(1 << 24)  # no TLS, no DEPRECATE_EOF


def _packet(seq: int, body: bytes) -> bytes:
    return struct.pack("<I", len(body))[:3] + bytes([seq & 0xFF]) + body


def _greeting() -> bytes:
    caps = CAPABILITIES
    return (
        b"\x0a5.7.99-rogue\x00"
        + struct.pack("<I", 1)
        + b"abcdefgh\x00"
        + struct.pack("<H", caps & 0xFFFF)
        + b"\x21"
        + struct.pack("<H", 2)
        + struct.pack("<H", caps >> 16)
        + b"\x15"
        + b"\x00" * 10
        + b"ijklmnopqrst\x00"
        + b"mysql_native_password\x00"
    )


class RogueMySql:
    """Listen on a loopback port; ask for ``wanted`` when ``ask(statement)`` says so."""

    def __init__(self, wanted: str, ask: Callable[[bytes], bool]) -> None:
        self.wanted = wanted
        self.ask = ask
        self.received: list[bytes] = []
        """Everything clients sent after a local file request (a file's content, if sent)."""
        self.statements: list[bytes] = []
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.server.getsockname()[1]
        self.server.settimeout(0.2)
        self._stop = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self.server.accept()
            except OSError:
                continue
            threading.Thread(target=self._session, args=(client,), daemon=True).start()

    @staticmethod
    def _read(conn: socket.socket) -> tuple[int, bytes]:
        def exactly(count: int) -> bytes:
            data = b""
            while len(data) < count:
                chunk = conn.recv(count - len(data))
                if not chunk:
                    raise ConnectionError("closed")
                data += chunk
            return data

        head = exactly(4)
        return head[3], exactly(int.from_bytes(head[:3], "little"))

    def _session(self, conn: socket.socket) -> None:
        conn.settimeout(2)  # a client that refused goes quiet: do not wait long
        try:
            conn.sendall(_packet(0, _greeting()))
            self._read(conn)  # the login: any is fine
            conn.sendall(_packet(2, OK))
            while True:
                _, body = self._read(conn)
                if not body or body[0] == 1:  # COM_QUIT
                    return
                self.statements.append(body[1:])
                if body[0] == 3 and self.ask(body[1:]):
                    conn.sendall(_packet(1, b"\xfb" + self.wanted.encode()))
                    while True:
                        seq, chunk = self._read(conn)
                        if not chunk:
                            break
                        self.received.append(chunk)
                    conn.sendall(_packet(seq + 1, OK))
                else:
                    conn.sendall(_packet(1, OK))
        except (OSError, ConnectionError):
            pass
        finally:
            conn.close()

    def close(self) -> None:
        """Stop listening."""
        self._stop.set()
        self.server.close()
