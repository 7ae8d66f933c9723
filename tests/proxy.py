"""A loopback TCP proxy that refuses its first N connections or is cut on demand (fault tests)."""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from flask.testing import FlaskClient


@dataclass
class Link:
    """One proxied connection: bytes the client sent, whether answers are dropped."""

    sent: int = 0
    muted: bool = False


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
            link = Link()
            for a, b, outbound in ((client, upstream, True), (upstream, client, False)):
                threading.Thread(
                    target=self._pump, args=(a, b, link, outbound), daemon=True
                ).start()

    def forward(self, data: bytes, sink: socket.socket, link: Link) -> bool:
        """Send client bytes upstream; False ends the connection (subclasses cut here)."""
        sink.sendall(data)
        return True

    def _pump(self, source: socket.socket, sink: socket.socket, link: Link, outbound: bool) -> None:
        try:
            while data := source.recv(65536):
                if not outbound:
                    if not link.muted:  # a muted link's answers never reach the client
                        sink.sendall(data)
                    continue
                link.sent += len(data)
                if not self.forward(data, sink, link):
                    self._reset(source)
                    self._reset(sink)
                    return
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


COMMITS = (b"Q\x00\x00\x00\x0bCOMMIT\x00", b"\x03COMMIT")
"""A COMMIT as PostgreSQL's simple query and as MySQL's COM_QUERY end a client's packet."""


class CommitProxy(FlakyProxy):
    """Forward everything; the first COMMIT of a connection that has sent more than
    ``after_bytes`` (a transfer's, not a short ledger transaction's) is treated specially:
    ``cut`` forwards it and resets both sides before the answer comes back (an ambiguous
    commit: the server committed, the client cannot know); ``hold`` keeps it until
    :attr:`release` is set (:attr:`held` is set once it arrives)."""

    def __init__(self, target: tuple[str, int], mode: str, after_bytes: int = 20_000) -> None:
        self.mode = mode
        self.after_bytes = after_bytes
        self.held = threading.Event()
        self.release = threading.Event()
        self.cut_done = threading.Event()
        super().__init__(target)

    def forward(self, data: bytes, sink: socket.socket, link: Link) -> bool:
        """Pass client bytes on; catch the transfer's COMMIT."""
        commit = data.endswith(COMMITS)  # the statement alone, not a word in a query
        special = commit and link.sent > self.after_bytes and not self.cut_done.is_set()
        if not special:
            sink.sendall(data)
            return True
        if self.mode == "hold":
            self.cut_done.set()
            self.held.set()
            self.release.wait(120)
            sink.sendall(data)
            return True
        link.muted = True
        sink.sendall(data)
        time.sleep(0.5)  # the server commits; its answer never reaches the client
        self.cut_done.set()
        return False


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


class HostRewritingProxy:
    """A reverse proxy as the UI's dev server or an nginx recipe runs it: every request goes to
    ``target`` with ``Host`` rewritten to the target and ``X-Forwarded-Host``/``-Proto``/``-For``
    naming what the browser asked for. It connects from ``source`` (a loopback address of its
    own), so a server can tell a trusted proxy from any other peer."""

    HOP = frozenset(
        ("connection", "keep-alive", "transfer-encoding", "te", "upgrade", "proxy-connection")
    )

    def __init__(self, target: tuple[str, int], source: str = "127.0.0.1") -> None:
        import http.server

        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _forward(self) -> None:
                proxy.forward(self)

            do_GET = do_POST = do_PUT = do_DELETE = _forward  # noqa: N815 (http.server names)

            def log_message(self, *_: object) -> None:
                return

        self.target = target
        self.source = source
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port: int = self.server.server_address[1]
        self.origin = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def forward(self, handler: Any) -> None:
        """Send the handler's request on to the target and its answer back."""
        import http.client

        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else None
        headers = {k: v for k, v in handler.headers.items() if k.lower() not in self.HOP}
        headers["Host"] = f"{self.target[0]}:{self.target[1]}"
        headers["X-Forwarded-Host"] = handler.headers.get("Host", "")
        headers["X-Forwarded-Proto"] = "http"
        headers["X-Forwarded-For"] = handler.client_address[0]
        upstream = http.client.HTTPConnection(
            *self.target, timeout=60, source_address=(self.source, 0)
        )
        try:
            upstream.request(handler.command, handler.path, body=body, headers=headers)
            answer = upstream.getresponse()
            data = answer.read()
            handler.send_response(answer.status)
            for key, value in answer.getheaders():
                if key.lower() not in self.HOP and key.lower() != "content-length":
                    handler.send_header(key, value)
            handler.send_header("Content-Length", str(len(data)))
            handler.end_headers()
            handler.wfile.write(data)
        finally:
            upstream.close()

    def close(self) -> None:
        """Stop serving."""
        self.server.shutdown()
        self.server.server_close()
