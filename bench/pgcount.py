"""Count the SQL statements a server sends to PostgreSQL: a TCP proxy that reads the wire protocol.

Every client message after the startup packet is a type byte and a length. A statement executed
is a simple-protocol Query ('Q') or an extended-protocol Execute ('E'); Parse, Bind, Describe
and Sync are its preparation and do not count. The proxy refuses TLS (it answers 'N' to an
SSLRequest or GSSENCRequest itself, as a server without TLS would), so it can read the stream,
and forwards every byte unchanged. Used for a short counting pass, never while timing.
"""

from __future__ import annotations

import asyncio
import struct
from collections import Counter

SSL_REQUEST = 80877103
GSSENC_REQUEST = 80877104
STATEMENT_MESSAGES = frozenset(b"QE")


class StatementCounter:
    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.statements = 0
        self.recent: list[str] = []  # what the messages said, for the last few statements
        self.texts: Counter[str] = Counter()  # every statement's text, how often
        self.server: asyncio.Server | None = None
        self.port = 0

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        self.server = await asyncio.start_server(self._serve, host, port)
        self.port = self.server.sockets[0].getsockname()[1]
        return self.port

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            if hasattr(self.server, "close_clients"):  # Python 3.13+
                self.server.close_clients()
            await self.server.wait_closed()

    async def _serve(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        upstream_writer = None
        try:
            # Startup: answer TLS requests with 'N', then forward the real startup packet.
            while True:
                length, code = struct.unpack("!ii", await client_reader.readexactly(8))
                rest = await client_reader.readexactly(length - 8)
                if code in (SSL_REQUEST, GSSENC_REQUEST):
                    client_writer.write(b"N")
                    await client_writer.drain()
                    continue
                break
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.upstream)
            upstream_writer.write(struct.pack("!ii", length, code) + rest)
            await asyncio.gather(
                self._client_to_server(client_reader, upstream_writer),
                self._pipe(upstream_reader, client_writer),
            )
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            for writer in (client_writer, upstream_writer):
                if writer is not None:
                    writer.close()

    async def _client_to_server(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        prepared: dict[bytes, str] = {}  # this connection's statements by name, from Parse
        bound = b""                       # the statement the last Bind named
        try:
            while True:
                header = await reader.readexactly(5)
                length = struct.unpack("!i", header[1:])[0]
                body = await reader.readexactly(length - 4)
                kind = header[0:1]
                if kind == b"P":  # Parse: statement name, query text
                    name, text, _ = body.split(b"\0", 2)
                    prepared[name] = text.decode(errors="replace")
                elif kind == b"B":  # Bind: portal name, statement name
                    bound = body.split(b"\0", 2)[1]
                elif kind == b"Q":
                    self._note(body[:-1].decode(errors="replace"))
                elif kind == b"E":
                    self._note(prepared.get(bound, "(a statement prepared before the count)"))
                if header[0] in STATEMENT_MESSAGES:
                    self.statements += 1
                writer.write(header + body)
                await writer.drain()
        finally:
            writer.close()

    def _note(self, text: str) -> None:
        text = " ".join(text.split())
        self.recent = [*self.recent[-199:], text]
        self.texts[text] += 1

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while chunk := await reader.read(65536):
                writer.write(chunk)
                await writer.drain()
        finally:
            writer.close()
