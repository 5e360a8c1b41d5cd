"""HTTP/1.1 plumbing of the Docker proxy: reading a learner's request within bounds, and relaying the engine's answer.

h11 does the framing on both sides (Content-Length, chunked, keep-alive, the 101 of a hijacked stream), so the proxy
never parses HTTP by hand. The learner side is an `h11.SERVER` connection on their socket; each request opens a fresh
`h11.CLIENT` connection to the engine's socket (a local connect costs microseconds, and nothing of one request can
leak into another's). Bodies are bounded while they arrive: a JSON body in memory up to `max_json`, a build context or
archive spooled to a file up to its own cap; past a cap the request is answered 413 and the connection closed.
"""
from __future__ import annotations

import asyncio
import json
import tempfile
from dataclasses import dataclass, field
from typing import IO

import h11

READ_SIZE = 64 * 1024
# The request line and headers: the CLI sends well under 4 KB; X-Registry-Auth/-Config carry credentials in base64.
MAX_HEAD = 64 * 1024
HOP_BY_HOP = {b"connection", b"keep-alive", b"transfer-encoding", b"content-length", b"upgrade", b"te", b"trailer",
              b"proxy-connection", b"host"}


def header_value(headers: list[tuple[bytes, bytes]], name: str) -> str | None:
    wanted = name.lower().encode()
    for key, value in headers:
        if key.lower() == wanted:
            return value.decode("latin-1")
    return None


class BodyTooLarge(Exception):
    def __init__(self, limit: int):
        super().__init__(limit)
        self.limit = limit


class ClientGone(Exception):
    """The learner's side closed or broke the connection mid-request."""


@dataclass
class Request:
    method: str
    target: str
    headers: list[tuple[bytes, bytes]]
    body: bytes | IO[bytes] = b""
    body_size: int = 0

    def header(self, name: str) -> str | None:
        return header_value(self.headers, name)

    @property
    def wants_upgrade(self) -> bool:
        return (self.header("upgrade") or "").lower() == "tcp"

    def json(self):
        data = self.body if isinstance(self.body, bytes) else self.body.read()
        return json.loads(data) if data.strip() else {}


@dataclass
class LearnerConnection:
    """One learner connection on their socket: requests arrive one after another (keep-alive)."""
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    conn: h11.Connection = field(default_factory=lambda: h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD))
    method: str = "GET"

    async def _event(self):
        while True:
            event = self.conn.next_event()
            if event is h11.NEED_DATA:
                self.conn.receive_data(await self.reader.read(READ_SIZE))
                continue
            return event

    async def request_head(self) -> Request | None:
        """The next request's line and headers, or None when the learner closed the connection between requests."""
        if self.conn.our_state is h11.DONE and self.conn.their_state is h11.DONE:
            self.conn.start_next_cycle()
        event = await self._event()
        if isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
            return None
        if not isinstance(event, h11.Request):
            raise h11.RemoteProtocolError("expected a request", error_status_hint=400)
        self.method = event.method.decode()
        return Request(method=self.method, target=event.target.decode("latin-1"),
                       headers=list(event.headers))

    async def read_body(self, request: Request, *, limit: int, spool: bool = False) -> None:
        """Reads the body into request.body: bytes, or for `spool` a temporary file (in memory up to 1 MB)."""
        sink: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=1024 * 1024) if spool else None
        chunks: list[bytes] = []
        size = 0
        while True:
            event = await self._event()
            if isinstance(event, h11.Data):
                size += len(event.data)
                if size > limit:
                    raise BodyTooLarge(limit)
                (sink.write if sink else chunks.append)(event.data)
            elif isinstance(event, h11.EndOfMessage):
                break
            elif event is h11.PAUSED:
                break  # an Upgrade request's body has ended; what follows belongs to the hijacked stream
            else:
                raise ClientGone()
        request.body_size = size
        if sink is not None:
            sink.seek(0)
            request.body = sink
        else:
            request.body = b"".join(chunks)

    async def discard_input(self, *, limit: int, seconds: float) -> None:
        """Reads and drops what the learner still sends (at most `limit` bytes, for `seconds`), so a client that
        writes its whole body before reading hears the answer instead of a broken pipe."""
        dropped = 0
        try:
            async with asyncio.timeout(seconds):
                while dropped < limit and (data := await self.reader.read(READ_SIZE)):
                    dropped += len(data)
        except (TimeoutError, ConnectionError):
            pass

    async def send(self, event) -> None:
        data = self.conn.send(event)
        if data:
            self.writer.write(data)
            await self.writer.drain()

    async def answer(self, status: int, payload: dict | list | bytes, *, headers=(), close: bool = False) -> None:
        """A whole answer of the proxy's own (a refusal, or a rewritten JSON answer of the engine)."""
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode() + b"\n"
        hdrs = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                *[(k, v) for k, v in headers if k.lower() not in HOP_BY_HOP and k.lower() != b"content-type"]]
        if close:
            hdrs.append((b"connection", b"close"))
        await self.send(h11.Response(status_code=status, headers=hdrs))
        if self.method != "HEAD":
            await self.send(h11.Data(data=body))
        await self.send(h11.EndOfMessage())

    def refusal_possible(self) -> bool:
        return self.conn.our_state in (h11.IDLE, h11.SEND_RESPONSE)


@dataclass
class EngineResponse:
    status: int
    headers: list[tuple[bytes, bytes]]
    conn: h11.Connection
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter

    def header(self, name: str) -> str | None:
        return header_value(self.headers, name)

    async def chunks(self):
        """The body as it arrives, each piece as soon as the engine sends it (logs -f, events, build output)."""
        while True:
            event = self.conn.next_event()
            if event is h11.NEED_DATA:
                data = await self.reader.read(READ_SIZE)
                self.conn.receive_data(data)
                continue
            if isinstance(event, h11.Data):
                yield bytes(event.data)
            elif isinstance(event, (h11.EndOfMessage, h11.ConnectionClosed)):
                return

    async def read_all(self, *, limit: int) -> bytes:
        parts, size = [], 0
        async for chunk in self.chunks():
            size += len(chunk)
            if size > limit:
                raise BodyTooLarge(limit)
            parts.append(chunk)
        return b"".join(parts)

    def close(self) -> None:
        self.writer.close()


async def engine_request(socket_path: str, method: str, target: str, *, headers=(), body: bytes | IO[bytes] = b"",
                         body_size: int | None = None, upgrade: bool = False, timeout: float = 30.0) -> EngineResponse:
    """Sends one request to the engine's socket and returns once its status line and headers are in."""
    reader, writer = await asyncio.wait_for(asyncio.open_unix_connection(socket_path, limit=READ_SIZE), timeout)
    conn = h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_HEAD)
    size = body_size if body_size is not None else (len(body) if isinstance(body, bytes) else 0)
    hdrs = [(b"host", b"docker"), *[(k, v) for k, v in headers if k.lower() not in HOP_BY_HOP]]
    if method not in ("GET", "HEAD") or size:
        hdrs.append((b"content-length", str(size).encode()))
    if upgrade:
        hdrs += [(b"connection", b"Upgrade"), (b"upgrade", b"tcp")]
    try:
        writer.write(conn.send(h11.Request(method=method, target=target, headers=hdrs)))
        if isinstance(body, bytes):
            if body:
                writer.write(conn.send(h11.Data(data=body)))
        else:
            while piece := body.read(READ_SIZE):
                writer.write(conn.send(h11.Data(data=piece)))
                await writer.drain()
        writer.write(conn.send(h11.EndOfMessage()))
        await writer.drain()
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                data = await asyncio.wait_for(reader.read(READ_SIZE), timeout)
                conn.receive_data(data)
                continue
            if isinstance(event, h11.InformationalResponse) and event.status_code != 101:
                continue
            if isinstance(event, (h11.Response, h11.InformationalResponse)):
                return EngineResponse(status=event.status_code, headers=list(event.headers), conn=conn,
                                      reader=reader, writer=writer)
            raise h11.RemoteProtocolError(f"unexpected answer from the engine: {event!r}")
    except BaseException:
        writer.close()
        raise


async def engine_json(socket_path: str, method: str, target: str, *, body=None, timeout: float = 30.0,
                      limit: int = 64 * 1024 * 1024):
    """A whole JSON request and answer, for the proxy's own lookups (the learner's containers, images, volumes)."""
    payload = json.dumps(body).encode() if body is not None else b""
    headers = [(b"content-type", b"application/json")] if body is not None else []
    response = await engine_request(socket_path, method, target, headers=headers, body=payload, timeout=timeout)
    try:
        data = await asyncio.wait_for(response.read_all(limit=limit), timeout)
    finally:
        response.close()
    return response.status, (json.loads(data) if data.strip() else None)


async def splice(learner: LearnerConnection, engine: EngineResponse) -> None:
    """Both directions of a hijacked stream (attach, exec -it) until the engine's side ends.

    The learner's end of input (the CLI's CloseWrite when stdin ends) is passed on as a half-close, so `docker run -i`
    with a pipe ends as it does against the engine; the engine's output keeps flowing until the process exits.
    """
    learner_rest, _ = learner.conn.trailing_data
    engine_rest, _ = engine.conn.trailing_data

    async def pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, first: bytes) -> None:
        try:
            if first:
                writer.write(first)
                await writer.drain()
            while data := await reader.read(READ_SIZE):
                writer.write(data)
                await writer.drain()
            if writer.can_write_eof():
                writer.write_eof()
        except (ConnectionError, OSError):
            pass

    upstream = asyncio.create_task(pump(learner.reader, engine.writer, bytes(learner_rest)))
    try:
        await pump(engine.reader, learner.writer, bytes(engine_rest))
    finally:
        upstream.cancel()
        engine.close()
