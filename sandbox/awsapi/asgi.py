"""The edge endpoint as a plain ASGI application: AWS API requests go straight to `edge.request_answer`, without
Django's request cycle (URL resolving, sessions, authentication, CSRF, the sign-in throttle, allauth, CSP), none of
which an AWS request uses: it is authenticated by its SigV4 signature alone. What the cycle did that still matters is
done here: the Host header is checked against ALLOWED_HOSTS, the body is bounded, and the database connections of the
worker thread are recycled as Django does around a request. Everything else goes to the Django application.
"""
from __future__ import annotations

import asyncio
import re
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import parse_qs, quote

from django.conf import settings
from django.db import close_old_connections
from django.http.request import split_domain_port, validate_host

from .edge import EDGE_PREFIX, _too_large, request_answer
from .protocols import HttpRequest

_PATH_SAFE = "/~-._"

# A synchronous Invoke holds its thread for as long as the function runs (up to 15 minutes), so invocations get a pool
# of their own, as large as the invocations the host admits at once; every other AWS call gets another, so a learner's
# long-running functions never keep anybody's other calls waiting (the loop's default pool has only CPUs + 4 threads).
_INVOKE_PATH = re.compile(r"^/aws/20\d\d-\d\d-\d\d/functions/[^/]+/invoke(?:-async|cations)/?$")
_pools: dict[str, ThreadPoolExecutor] = {}


def _pool(kind: str) -> ThreadPoolExecutor:
    if kind not in _pools:
        size = settings.SANDCLOUD_AWS_EDGE_THREADS[kind]
        _pools[kind] = ThreadPoolExecutor(max_workers=size, thread_name_prefix=f"aws-{kind}")
    return _pools[kind]


def is_edge_path(path: str) -> bool:
    return path == EDGE_PREFIX or path.startswith(EDGE_PREFIX + "/")


def _allowed_host(host: str) -> bool:
    domain, _port = split_domain_port(host)
    allowed = list(settings.ALLOWED_HOSTS)
    if settings.DEBUG and not allowed:
        allowed = [".localhost", "127.0.0.1", "[::1]"]
    return bool(domain) and validate_host(domain, allowed)


def _answer(wire: HttpRequest, signed_path: str, query_string: str, body: bytes, too_large: bool):
    close_old_connections()
    try:
        def read_body() -> bytes:
            if too_large:
                raise _too_large(settings.SANDCLOUD_AWS_MAX_REQUEST_BYTES)
            return body
        return request_answer(wire=wire, signed_path=signed_path, query_string=query_string, read_body=read_body)
    finally:
        close_old_connections()


class EdgeApplication:
    """Routes HTTP requests under /aws to the edge, everything else to `fallback` (the Django application)."""

    def __init__(self, fallback):
        self.fallback = fallback

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not is_edge_path(scope["path"]):
            return await self.fallback(scope, receive, send)
        headers: dict[str, str] = {}
        for name, value in scope.get("headers", []):
            key = name.decode("latin-1").lower()
            text = value.decode("latin-1")
            headers[key] = f"{headers[key]},{text}" if key in headers else text
        if not _allowed_host(headers.get("host", "")):
            return await _plain(send, 400, b"Bad Request")
        limit = settings.SANDCLOUD_AWS_MAX_REQUEST_BYTES
        body, too_large = await _read_body(receive, limit)
        if body is None:
            return  # the client hung up mid-body: nothing is done for half a request
        raw = scope.get("raw_path")
        path = raw.decode("latin-1").split("?", 1)[0] if raw else quote(scope["path"], safe=_PATH_SAFE)
        query_string = scope.get("query_string", b"").decode("latin-1")
        wire = HttpRequest(method=scope["method"], path=path[len(EDGE_PREFIX):] or "/",
                           query=parse_qs(query_string, keep_blank_values=True), headers=headers, body=b"")
        pool = _pool("invoke" if _INVOKE_PATH.match(path) else "api")
        response = await asyncio.get_running_loop().run_in_executor(pool, _answer, wire, path, query_string, body,
                                                                    too_large)
        out_headers = [(b"content-type", response.headers.get("Content-Type", "application/json").encode("latin-1")),
                       (b"content-length", str(len(response.body)).encode())]
        out_headers += [(name.lower().encode("latin-1"), str(value).encode("latin-1"))
                        for name, value in response.headers.items() if name.lower() != "content-type"]
        await send({"type": "http.response.start", "status": response.status, "headers": out_headers})
        await send({"type": "http.response.body", "body": response.body})


async def _read_body(receive, limit: int) -> tuple[bytes | None, bool]:
    """The body, at most `limit` bytes kept; a larger one is read on up to four times the limit (so the client reads
    the answer rather than a reset) and reported as too large. A client that hangs up mid-body gets nothing done."""
    chunks, size, too_large = [], 0, False
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None, False
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            too_large = True
            chunks = []
            if size > 4 * limit:
                break
        elif chunk:
            chunks.append(chunk)
        if not message.get("more_body"):
            break
    return b"".join(chunks), too_large


async def _plain(send, status: int, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
