"""A loopback TCP proxy that refuses its first N connections or is cut on demand (fault tests)."""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from flask.testing import FlaskClient


class FlakyProxy:
    """Accept on a free loopback port; reset the first ``refuse`` connections, forward the rest.

    :meth:`cut` resets every open connection and refuses new ones until :meth:`restore` (a
    server that went away and came back).
    """

    def __init__(self, target: tuple[str, int], refuse: int = 0) -> None:
        self.target = target
        self.refuse = refuse
        self.accepted = 0
        self.down = False
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.server.getsockname()[1]
        self._stop = threading.Event()
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        threading.Thread(target=self._serve, daemon=True).start()

    @staticmethod
    def _reset(sock: socket.socket) -> None:
        """Close with RST: the peer sees the connection reset."""
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.close()

    def _serve(self) -> None:
        self.server.settimeout(0.2)
        while not self._stop.is_set():
            try:
                client, _ = self.server.accept()
            except OSError:
                continue
            self.accepted += 1
            if self.down or self.accepted <= self.refuse:
                self._reset(client)
                continue
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                self._reset(client)
                continue
            with self._lock:
                self._open.update((client, upstream))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)
            with self._lock:
                self._open.difference_update((source, sink))

    def cut(self) -> None:
        """Reset every open connection and refuse new ones (until :meth:`restore`)."""
        self.down = True
        with self._lock:
            sockets, self._open = list(self._open), set()
        for sock in sockets:
            self._reset(sock)

    def restore(self) -> None:
        """Forward new connections again."""
        self.down = False

    def close(self) -> None:
        """Stop accepting."""
        self._stop.set()
        self.server.close()


@contextmanager
def flaky_postgres(client: FlaskClient, name: str, refuse: int) -> Iterator[int]:
    """Yield the id of a POSTGRESQL data source reached through a proxy that resets its first
    ``refuse`` connections."""
    from tests.helpers import datasource
    from tests.services import postgres_params

    params = postgres_params()
    proxy = FlakyProxy((params["host"], params["port"]), refuse=refuse)
    # One TCP connection per attempt: with sslmode=prefer, libpq answers a reset during the
    # TLS request by trying again in clear at once, which would use up two refusals.
    plain = {"sslmode": "disable", "gssencmode": "disable"}
    try:
        yield datasource(
            client, name, "POSTGRESQL", {**params, "port": proxy.port, "params": plain}
        )
    finally:
        proxy.close()
