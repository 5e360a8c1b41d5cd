"""The site driven like a browser: a learner's cookie jar and CSRF token, and timestamped WebSocket frames."""
from __future__ import annotations

import asyncio
import re
import secrets
import time
from typing import Callable
from urllib.parse import urlsplit

import requests
import websockets
from websockets.asyncio.client import connect as ws_connect

from . import BenchError


class SiteClient:
    """One learner's browser: a cookie jar, CSRF token, and the two WebSockets of the sandbox page."""

    def __init__(self, base_url: str):
        self.base_url = base_url.rstrip("/")
        self.http = requests.Session()
        self.host = urlsplit(self.base_url).hostname

    def login(self, username: str, password: str) -> None:
        response = self.http.get(f"{self.base_url}/accounts/login/", timeout=10)
        if "csrftoken" not in self.http.cookies:
            # The login page could not be rendered (its template may be missing); any 32-character secret set as
            # the cookie is a valid CSRF token for a form post, exactly what the page would have handed out.
            self.http.cookies.set("csrftoken", secrets.token_hex(16), domain=self.host, path="/")
        response = self.http.post(f"{self.base_url}/accounts/login/", allow_redirects=False, timeout=10,
                                  data={"username": username, "password": password,
                                        "csrfmiddlewaretoken": self.http.cookies["csrftoken"]})
        if response.status_code != 302 or "sessionid" not in self.http.cookies:
            raise BenchError(f"logging in as {username} failed: HTTP {response.status_code}")

    def start_sandbox(self, runtime: str = "runc") -> int:
        response = self.http.post(f"{self.base_url}/sandboxes/start/", allow_redirects=False, timeout=30,
                                  data={"runtime": runtime, "csrfmiddlewaretoken": self.http.cookies["csrftoken"]})
        found = re.fullmatch(r"/sandboxes/(\d+)/", response.headers.get("Location", ""))
        if response.status_code != 302 or not found:
            raise BenchError(f"POST /sandboxes/start/ gave HTTP {response.status_code} "
                             f"to {response.headers.get('Location')!r} (quota or a server error; see var/log/web-*.log)")
        return int(found.group(1))

    def websocket(self, sandbox_id: int, kind: str):
        cookies = "; ".join(f"{name}={value}" for name, value in self.http.cookies.items())
        ws_url = self.base_url.replace("http://", "ws://", 1)
        return ws_connect(f"{ws_url}/ws/sandboxes/{sandbox_id}/{kind}/", origin=self.base_url,
                          additional_headers={"Cookie": cookies}, open_timeout=15, max_queue=None)


class Frames:
    """Reads a WebSocket in the background and timestamps each frame on arrival."""

    def __init__(self, socket):
        self.socket = socket
        self.queue: asyncio.Queue[tuple[float, int, bytes | str]] = asyncio.Queue()
        self.closed: tuple[int | None, str] | None = None
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        try:
            async for frame in self.socket:
                self.queue.put_nowait((time.perf_counter(), time.time_ns(), frame))
        except websockets.ConnectionClosed:
            pass
        self.closed = (self.socket.close_code, self.socket.close_reason or "")
        self.queue.put_nowait((time.perf_counter(), time.time_ns(), b""))

    async def next(self, deadline: float) -> tuple[float, int, bytes | str]:
        remaining = deadline - time.perf_counter()
        if remaining <= 0:
            raise asyncio.TimeoutError
        item = await asyncio.wait_for(self.queue.get(), remaining)
        if item[2] == b"" and self.closed is not None:
            raise BenchError(f"the server closed the socket ({self.closed[0]}) {self.closed[1]}".strip())
        return item

    async def until(self, match: Callable[[bytes | str], bool], timeout: float, what: str) -> tuple[float, int, str]:
        """The arrival times of the first frame that `match`es; text frames that are server notices are reported."""
        deadline = time.perf_counter() + timeout
        notices = []
        while True:
            try:
                at, at_ns, frame = await self.next(deadline)
            except asyncio.TimeoutError:
                raise BenchError(f"no {what} within {timeout:.0f} s; notices: {notices}") from None
            except BenchError as error:
                raise BenchError(f"waiting for {what}: {error}; notices: {notices}") from None
            if isinstance(frame, str) and '"type": "error"' in frame:
                notices.append(frame)
            if match(frame):
                return at, at_ns, frame

    async def quiet(self, gap: float = 0.15, limit: float = 3.0) -> None:
        """Waits until no frame has arrived for `gap` seconds (the terminal stopped redrawing)."""
        deadline = time.perf_counter() + limit
        while time.perf_counter() < deadline:
            try:
                await asyncio.wait_for(self.queue.get(), gap)
            except asyncio.TimeoutError:
                return

    async def close(self) -> None:
        await self.socket.close()
        self.task.cancel()
