"""A loopback TCP proxy that refuses its first N connections, then forwards (fault tests)."""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from flask.testing import FlaskClient


class FlakyProxy:
    """Accept on a free loopback port; reset the first ``refuse`` connections, forward the rest."""

    def __init__(self, target: tuple[str, int], refuse: int) -> None:
        self.target = target
        self.refuse = refuse
        self.accepted = 0
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.server.getsockname()[1]
        self._stop = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        self.server.settimeout(0.2)
        while not self._stop.is_set():
            try:
                client, _ = self.server.accept()
            except OSError:
                continue
            self.accepted += 1
            if self.accepted <= self.refuse:  # RST: the client sees the connection reset
                client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                client.close()
                continue
            upstream = socket.create_connection(self.target)
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)

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
