"""A loopback TCP proxy that can cut the network between a worker and the broker.

`cut()` aborts every live connection (both directions, RST) and closes the
listening socket, so reconnect attempts are refused exactly as when a broker
host drops off the network; `heal()` listens on the same port again. The broker
advertises the proxy's address, so clients keep coming back through it after
bootstrap (see EmbeddedBrokerConfig.advertised).
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field


@dataclass
class TcpProxy:
    upstream_host: str
    upstream_port: int
    listen_host: str = "127.0.0.1"
    listen_port: int = 0
    accepted: int = 0  # connections accepted over the proxy's lifetime (reconnects show up here)
    _server: asyncio.base_events.Server | None = field(default=None, init=False, repr=False)
    _writers: set[asyncio.StreamWriter] = field(default_factory=set, init=False, repr=False)
    _pipes: set[asyncio.Task[None]] = field(default_factory=set, init=False, repr=False)

    @property
    def address(self) -> str:
        return f"{self.listen_host}:{self.listen_port}"

    @property
    def is_open(self) -> bool:
        return self._server is not None

    async def start(self) -> TcpProxy:
        # reuse_address lets heal() rebind the port while old sockets sit in TIME_WAIT.
        self._server = await asyncio.start_server(
            self._handle, self.listen_host, self.listen_port, reuse_address=True
        )
        self.listen_port = self._server.sockets[0].getsockname()[1]
        return self

    async def cut(self) -> int:
        """Refuse new connections and reset every open one; returns how many were dropped."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
            await server.wait_closed()
        dropped = len(self._writers)
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()
        for task in list(self._pipes):
            task.cancel()
        await asyncio.gather(*self._pipes, return_exceptions=True)
        return dropped // 2  # one writer per direction

    async def heal(self) -> None:
        await self.start()

    async def stop(self) -> None:
        await self.cut()

    async def _handle(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(self.upstream_host, self.upstream_port)
        except OSError:
            client_writer.transport.abort()
            return
        if self._server is None:  # cut while we were connecting upstream
            client_writer.transport.abort()
            upstream_writer.transport.abort()
            return
        self.accepted += 1
        self._writers.update((client_writer, upstream_writer))
        for reader, writer in ((client_reader, upstream_writer), (upstream_reader, client_writer)):
            task = asyncio.ensure_future(self._pipe(reader, writer))
            self._pipes.add(task)
            task.add_done_callback(self._pipes.discard)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self._writers.discard(writer)
            with contextlib.suppress(Exception):
                writer.close()
