"""Test-time TLS: a throwaway CA + server certificate, and a TLS-terminating TCP proxy.

The embedded broker speaks plaintext only, so TLS tests put this proxy in front of
it: clients speak TLS to the proxy, the proxy speaks plaintext to the broker. The
broker must advertise the proxy's address, because Kafka clients reconnect to the
advertised listener from metadata, not to the bootstrap address.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Pki:
    ca: Path     # CA certificate (what clients trust)
    cert: Path   # server certificate signed by the CA, valid for 127.0.0.1 and localhost
    key: Path    # server private key


def make_pki(directory: Path, name: str = "streamnlp-test-ca") -> Pki:
    """A fresh CA and server certificate (EC P-256, one day) made with the openssl CLI."""
    directory.mkdir(parents=True, exist_ok=True)
    ca, ca_key = directory / "ca.pem", directory / "ca.key"
    cert, key, csr = directory / "server.pem", directory / "server.key", directory / "server.csr"
    ext = directory / "server.ext"
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    for args in (
        ["req", "-x509", *ec, "-keyout", ca_key, "-out", ca, "-days", "1", "-subj", f"/CN={name}"],
        ["req", *ec, "-keyout", key, "-out", csr, "-subj", "/CN=localhost"],
        ["x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial", "-out", cert, "-days", "1",
         "-extfile", ext],
    ):
        subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True, timeout=60)
    return Pki(ca=ca, cert=cert, key=key)


class TlsProxy:
    """Accepts TLS on 127.0.0.1:<port> (bound at construction) and forwards plaintext to `backend`."""

    def __init__(self, pki: Pki, backend: tuple[str, int]) -> None:
        self.backend = backend
        self.handshakes = 0  # TLS sessions that completed: proof that clients really used TLS
        self._context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._context.load_cert_chain(str(pki.cert), str(pki.key))
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="tls-proxy", daemon=True)
        self._server: asyncio.base_events.Server | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self._sock.getsockname()[1]}"

    def start(self) -> TlsProxy:
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._handle, sock=self._sock, ssl=self._context), self._loop)
        self._server = future.result(timeout=10)
        return self

    def stop(self) -> None:
        async def close() -> None:
            if self._server is not None:
                self._server.close()
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)

    async def _handle(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        self.handshakes += 1  # start_server calls back only after the TLS handshake succeeded
        try:
            broker_reader, broker_writer = await asyncio.open_connection(*self.backend)
        except OSError:
            client_writer.close()
            return
        await asyncio.gather(_pipe(client_reader, broker_writer), _pipe(broker_reader, client_writer))


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (OSError, ssl.SSLError, asyncio.CancelledError):
        pass
    finally:
        writer.close()
