"""Lambda execution environments on a Docker host: talking to the init inside one, and reading its cgroup.

The container itself is made by `DockerEngine.run` from a `ContainerSpec` like every learner container; this module is
the rest of what the platform does with it: wait for its init phase, hand it one invocation at a time over a kept-alive
HTTP connection to the init's control port (`sandbox/functions/runtime/init.py`), and measure the memory it used.
"""
from __future__ import annotations

import base64
import http.client
import json
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path

CONTROL_PORT = 9000
# The init runs beside the learner's code, as its uid, so what it answers is bounded and checked like any learner
# input: a payload of at most 6 MB plus an invocation's log (1 MB by default, 10,000 lines) with JSON's overhead.
MAX_ANSWER_BYTES = 6 * 1024 * 1024 + 8 * 1024 * 1024
MAX_LOG_LINES = 10_001


class EnvironmentLost(Exception):
    """The environment's init did not answer (its container died, was removed, or never came up)."""


@dataclass
class InitResult:
    state: str  # ready | error | exited | timeout
    init_ms: float
    error_type: str = ""
    error: bytes = b""
    exit: str = ""
    logs: list[tuple[int, str]] = field(default_factory=list)


@dataclass
class InvokeResult:
    status: str  # success | error | timeout | crash
    payload: bytes
    error_type: str
    duration_ms: float
    logs: list[tuple[int, str]]
    exit: str = ""


class EnvironmentClient:
    """One kept-alive connection to one environment's init. Not shared between threads: an environment serves one
    invocation at a time, and whoever claimed it owns the connection until it gives the environment back."""

    def __init__(self, *, address: str, token: str, port: int = CONTROL_PORT):
        self.address, self.port, self.token = address, port, token
        self._connection: http.client.HTTPConnection | None = None

    def _connect(self, timeout: float) -> http.client.HTTPConnection:
        connection = http.client.HTTPConnection(self.address, self.port, timeout=timeout)
        connection.connect()
        connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return connection

    def _request(self, method: str, path: str, *, body: bytes = b"", headers: dict[str, str] | None = None,
                 timeout: float) -> http.client.HTTPResponse:
        headers = {"X-Sandcloud-Token": self.token, **(headers or {})}
        for attempt in (1, 2):
            fresh = self._connection is None
            try:
                if fresh:
                    self._connection = self._connect(timeout)
                else:
                    self._connection.sock.settimeout(timeout)
                self._connection.request(method, path, body=body, headers=headers)
                return self._connection.getresponse()
            except (OSError, http.client.HTTPException) as error:
                self.close()
                # A kept-alive connection the init closed meanwhile fails at once: one fresh try. A fresh one that
                # fails means the environment is gone.
                if fresh or attempt == 2 or isinstance(error, TimeoutError):
                    raise EnvironmentLost(str(error)) from error
        raise EnvironmentLost("unreachable")

    def wait_listening(self, *, timeout: float = 5.0) -> None:
        """Until the init accepts connections (it starts within ~50 ms of the container)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                self._connection = self._connect(timeout=2)
                return
            except OSError as error:
                if time.monotonic() > deadline:
                    raise EnvironmentLost(f"the init never listened: {error}") from error
                time.sleep(0.005)

    def ready(self, *, timeout: float) -> InitResult:
        """Waits for the init phase to end (the runtime's first /next, an init error, or the init deadline)."""
        response = self._request("GET", "/ready", timeout=timeout)
        try:
            data = json.loads(_bounded_read(response, deadline=time.monotonic() + timeout))
            return InitResult(state=str(data["state"]), init_ms=float(data["init_ms"]),
                              error_type=str(data.get("error_type", ""))[:128],
                              error=base64.b64decode(data.get("error", ""))[:MAX_ANSWER_BYTES],
                              exit=str(data.get("exit", ""))[:128], logs=_log_lines(data.get("logs", [])))
        except (ValueError, KeyError, TypeError) as error:
            self.close()
            raise EnvironmentLost(f"the init's answer was malformed: {error}") from error

    def invoke(self, *, request_id: str, deadline_ms: int, function_arn: str, payload: bytes,
               client_context: str = "", trace_id: str = "") -> InvokeResult:
        headers = {"X-Request-Id": request_id, "X-Deadline-Ms": str(deadline_ms), "X-Function-Arn": function_arn,
                   "X-Trace-Id": trace_id, "Content-Type": "application/octet-stream"}
        if client_context:
            headers["X-Client-Context"] = client_context
        # The init answers at the deadline at the latest; the margin covers a frozen host, never a slow function.
        timeout = max(1.0, deadline_ms / 1000 - time.time()) + 5
        response = self._request("POST", "/invoke", body=payload, headers=headers, timeout=timeout)
        try:
            body = _bounded_read(response, deadline=time.monotonic() + timeout)
            size = int(response.getheader("X-Payload-Length") or 0)
            status = response.getheader("X-Status") or "crash"
            if status not in ("success", "error", "timeout", "crash") or not 0 <= size <= len(body):
                raise ValueError(f"status {status!r}, payload length {size}")
            return InvokeResult(status=status, payload=body[:size],
                                error_type=(response.getheader("X-Error-Type") or "")[:128],
                                duration_ms=float(response.getheader("X-Duration-Ms") or 0),
                                logs=_log_lines(json.loads(body[size:] or b"[]")),
                                exit=(response.getheader("X-Exit") or "")[:128])
        except (ValueError, TypeError) as error:
            self.close()
            raise EnvironmentLost(f"the init's answer was malformed: {error}") from error

    def close(self) -> None:
        if self._connection is not None:
            try:
                self._connection.close()
            finally:
                self._connection = None


def _bounded_read(response: http.client.HTTPResponse, *, deadline: float) -> bytes:
    """The answer's body, refused past MAX_ANSWER_BYTES or past the deadline (an init dripping a byte at a time)."""
    try:
        declared = int(response.getheader("Content-Length") or -1)
    except ValueError:
        declared = -1
    if not 0 <= declared <= MAX_ANSWER_BYTES:
        raise ValueError(f"answer of {declared} bytes")
    chunks, size = [], 0
    try:
        while size < declared:
            if time.monotonic() > deadline:
                raise ValueError("answer not read by the deadline")
            chunk = response.read(min(65536, declared - size))
            if not chunk:
                raise ValueError("answer cut short")
            chunks.append(chunk)
            size += len(chunk)
    except (OSError, http.client.HTTPException) as error:
        raise ValueError(f"answer unreadable: {error}") from error
    return b"".join(chunks)


def _log_lines(lines) -> list[tuple[int, str]]:
    if not isinstance(lines, list) or len(lines) > MAX_LOG_LINES:
        raise ValueError("log lines malformed")
    out = []
    for line in lines:
        if not (isinstance(line, list) and len(line) == 2 and isinstance(line[0], int) and 0 <= line[0] < 2**53
                and isinstance(line[1], str)):
            raise ValueError("log line malformed")
        out.append((line[0], line[1][:256 * 1024]))
    return out


def memory_peak_reset(cgroup_dir: str) -> None:
    """Starts a new peak: Max Memory Used is measured per invocation from the environment's own cgroup."""
    try:
        Path(cgroup_dir, "memory.max_usage_in_bytes").write_text("0")
    except OSError:
        pass  # another host, or no permission: the peak then covers the environment's life so far


def memory_peak_mb(cgroup_dir: str) -> int:
    """The cgroup's memory high-water mark in MB (page cache included, as Lambda counts it)."""
    try:
        return int(Path(cgroup_dir, "memory.max_usage_in_bytes").read_text()) // (1024 * 1024)
    except (OSError, ValueError):
        return 0
