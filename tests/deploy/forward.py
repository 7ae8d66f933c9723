"""TCP forwarders in a process of their own: ``python -m tests.deploy.forward LISTEN=TARGET ...``
(``host:port=host:port``). The deployment test reaches the machine's databases through them
from an address of the namespaces' network, never the host's loopback. Prints ``ready`` once
every listener is bound."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import sys

CHUNK = 256 * 1024


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(CHUNK):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()


def _keepalive(writer: asyncio.StreamWriter) -> None:
    """Find a peer that vanished (a lost host sends no FIN) within about 8 s, as a database
    server with TCP keepalives set does (docs/deploy.md): its upstream session then ends and
    releases its locks."""
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 5)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, 3)
    # and one that stops acknowledging what was sent to it (keepalives wait while data is
    # unacknowledged)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, 8000)


def _address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host, int(port)


async def _serve(pairs: list[tuple[tuple[str, int], tuple[str, int]]]) -> None:
    servers = []
    for listen, target in pairs:

        async def connect(
            reader: asyncio.StreamReader,
            writer: asyncio.StreamWriter,
            target: tuple[str, int] = target,
        ) -> None:
            _keepalive(writer)
            try:
                up_reader, up_writer = await asyncio.open_connection(*target)
            except OSError:
                writer.close()
                return
            await asyncio.gather(_pump(reader, up_writer), _pump(up_reader, writer))

        servers.append(await asyncio.start_server(connect, *listen))
    print("ready", flush=True)
    await asyncio.gather(*(server.serve_forever() for server in servers))


def main(argv: list[str]) -> None:
    """Forward each ``listen=target`` pair until killed."""
    pairs = [(_address(a), _address(b)) for a, b in (arg.split("=", 1) for arg in argv)]
    asyncio.run(_serve(pairs))


if __name__ == "__main__":
    main(sys.argv[1:])
