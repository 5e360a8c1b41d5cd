#!/usr/bin/env python3
"""Sandcloud's init for a Lambda execution environment: serves the Lambda Runtime API (2018-06-01) to the function's
runtime inside the container and takes one invocation at a time from the platform.

It runs inside the learner's container on the image's own python3, so it uses the standard library only. The platform
talks to it on the control port (`/ready`, `/invoke`); the runtime (AWS's `awslambdaric`, or an image's own entry point)
finds the Runtime API at `$AWS_LAMBDA_RUNTIME_API` (127.0.0.1:9001). The runtime does not inherit the control port's
token, but runs as the same uid and could read it from /proc: it only ever opens the learner's own environment to the
learner's own code. The
runtime's stdout and stderr come through pipes, so every line is attributed to the invocation it was printed in and an
output flood is dropped here, past a cap, instead of filling anybody's memory or disk.
"""
from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

RUNTIME_API = ("127.0.0.1", 9001)
CONTROL_PORT = int(os.environ.pop("_SANDCLOUD_CONTROL_PORT", "9000"))
CONTROL_TOKEN = os.environ.pop("_SANDCLOUD_CONTROL_TOKEN", "")
RUNTIME_COMMAND = json.loads(os.environ.pop("_SANDCLOUD_RUNTIME_COMMAND", "[]"))
INIT_TIMEOUT_S = float(os.environ.pop("_SANDCLOUD_INIT_TIMEOUT", "10"))
LOG_CAP_BYTES = int(os.environ.pop("_SANDCLOUD_LOG_CAP_BYTES", str(1024 * 1024)))
# CloudWatch Logs keeps at most 256 KB of one event; a longer line is cut there, as Lambda's log agent cuts it.
LINE_CAP_BYTES = 256 * 1024 - 26
# Every line costs its 26 bytes of event overhead against the cap, as CloudWatch counts it, so a flood of empty lines
# is bounded like a flood of long ones; and no phase keeps more lines than this.
LINE_OVERHEAD_BYTES = 26
MAX_LINES = 10_000
# The learner's own environment variables reach the runtime only (never this process, which must not load a learner's
# LD_PRELOAD or sitecustomize): the platform passes them as JSON.
FUNCTION_ENVIRONMENT = json.loads(os.environ.pop("_SANDCLOUD_FUNCTION_ENVIRONMENT", "{}"))
MAX_RESPONSE_BYTES = 6 * 1024 * 1024
OOM_CONTROL = "/sys/fs/cgroup/memory/memory.oom_control"


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class LogBuffer:
    """The lines one phase (init, or one invocation) printed, as (epoch ms, text), up to a byte cap."""

    def __init__(self, cap: int = LOG_CAP_BYTES):
        self.lines: list[tuple[int, str]] = []
        self.size, self.dropped, self.cap = 0, 0, cap

    def add(self, line: bytes) -> None:
        cost = len(line) + LINE_OVERHEAD_BYTES
        if self.size + cost > self.cap or len(self.lines) >= MAX_LINES:
            self.dropped += len(line) + 1
            return
        self.size += cost
        self.lines.append((now_ms(), line[:LINE_CAP_BYTES].decode("utf-8", "replace")))

    def export(self) -> list:
        lines = list(self.lines)
        if self.dropped:
            lines.append((now_ms(), f"[Sandcloud] {self.dropped} bytes of output were dropped: one invocation keeps "
                                    f"at most {self.cap // 1024} KB of log."))
        return lines


class Invocation:
    def __init__(self, *, request_id: str, deadline_ms: int, headers: dict[str, str], body: bytes):
        self.request_id, self.deadline_ms, self.headers, self.body = request_id, deadline_ms, headers, body
        self.arrived = time.monotonic()
        self.done = threading.Event()
        self.status = ""  # success | error | timeout | crash
        self.payload = b""
        self.error_type = ""
        self.logs = LogBuffer()


class Environment:
    """Everything the two servers share, guarded by one condition variable."""

    def __init__(self):
        self.cond = threading.Condition()
        self.init_state = "initializing"  # → ready | error | exited | timeout
        self.init_started = time.monotonic()
        self.init_ms = 0.0
        self.init_error = b""
        self.init_error_type = ""
        self.init_logs = LogBuffer()
        self.pending: Invocation | None = None  # handed to the runtime at its next /next
        self.current: Invocation | None = None  # taken by the runtime, not answered yet
        self.between = LogBuffer()  # output printed outside any invocation
        self.process: subprocess.Popen | None = None
        self.exit_status = ""
        self.pipes: list[int] = []
        self.partial: dict[int, bytes] = {}
        self.read_lock = threading.Lock()

    # --- output -------------------------------------------------------------------------------------------------
    def sink(self) -> LogBuffer:
        if self.current is not None:
            return self.current.logs
        if self.init_state == "initializing":
            return self.init_logs
        return self.between

    def drain(self) -> None:
        """Reads whatever the runtime has written so far, so a line printed before a response lands in its invocation
        even when the reader thread has not woken yet."""
        with self.read_lock:
            for fd in list(self.pipes):
                self._read(fd)

    def _read(self, fd: int) -> bool:
        while True:
            try:
                chunk = os.read(fd, 65536)
            except BlockingIOError:
                return True
            except OSError:
                chunk = b""
            if not chunk:
                rest = self.partial.pop(fd, b"")
                if rest:
                    self.sink().add(rest)
                self.pipes.remove(fd)
                return False
            data = self.partial.pop(fd, b"") + chunk
            *lines, rest = data.split(b"\n")
            sink = self.sink()
            for line in lines:
                sink.add(line)
            if len(rest) > LINE_CAP_BYTES:
                sink.add(rest)
                rest = b""
            if rest:
                self.partial[fd] = rest

    def flush_partial(self) -> None:
        with self.read_lock:
            for fd in list(self.partial):
                self.sink().add(self.partial.pop(fd))

    def read_forever(self) -> None:
        while self.pipes:
            ready, _, _ = select.select(list(self.pipes), [], [], 1.0)
            with self.read_lock:
                for fd in ready:
                    if fd in self.pipes:
                        self._read(fd)

    # --- the runtime process ------------------------------------------------------------------------------------
    def start_runtime(self) -> None:
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        for fd in (out_r, err_r):
            fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | os.O_NONBLOCK)
        self.pipes = [out_r, err_r]
        environment = {**os.environ, **FUNCTION_ENVIRONMENT}
        self.process = subprocess.Popen(RUNTIME_COMMAND, stdin=subprocess.DEVNULL, stdout=out_w, stderr=err_w,
                                        start_new_session=True, cwd=os.environ.get("LAMBDA_TASK_ROOT", "/"),
                                        env=environment)
        os.close(out_w)
        os.close(err_w)
        threading.Thread(target=self.read_forever, daemon=True).start()
        threading.Thread(target=self.watch_runtime, daemon=True).start()
        threading.Thread(target=self.watch_init_deadline, daemon=True).start()

    def watch_runtime(self) -> None:
        code = self.process.wait()
        self.drain()
        self.flush_partial()
        # Worded as AWS's runtime reports it ("signal: killed", "exit status 1").
        status = f"signal: {(signal.strsignal(-code) or str(-code)).lower()}" if code < 0 else f"exit status {code}"
        with self.cond:
            self.exit_status = status
            if self.init_state == "initializing":
                self.init_state = "exited"
                self.init_ms = (time.monotonic() - self.init_started) * 1000
            if self.current is not None and not self.current.done.is_set():
                self._finish(self.current, "crash", b"", "Runtime.ExitError")
            self.cond.notify_all()

    def watch_init_deadline(self) -> None:
        with self.cond:
            self.cond.wait_for(lambda: self.init_state != "initializing", timeout=INIT_TIMEOUT_S)
            if self.init_state == "initializing":
                self.init_state = "timeout"
                self.init_ms = INIT_TIMEOUT_S * 1000
                self.cond.notify_all()
        if self.init_state == "timeout":
            self.kill_runtime()

    def kill_runtime(self) -> None:
        if self.process is not None and self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def _finish(self, invocation: Invocation, status: str, payload: bytes, error_type: str = "") -> None:
        invocation.status, invocation.payload, invocation.error_type = status, payload, error_type
        if self.current is invocation:
            self.current = None
        if self.pending is invocation:
            self.pending = None
        invocation.done.set()


ENV = Environment()


def oom_kills() -> int:
    try:
        with open(OOM_CONTROL) as control:
            for line in control:
                if line.startswith("oom_kill "):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "Sandcloud"
    sys_version = ""

    def setup(self):
        super().setup()
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, *args):  # the learner's log is for their output, not ours
        pass

    def reply(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None,
              content_type: str = "application/json") -> None:
        head = [f"HTTP/1.1 {status} {self.responses.get(status, ('',))[0]}", f"Content-Type: {content_type}",
                f"Content-Length: {len(body)}"]
        head += [f"{name}: {value}" for name, value in (headers or {}).items()]
        self.wfile.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)

    def body(self, cap: int) -> bytes | None:
        length = int(self.headers.get("Content-Length") or 0)
        if length > cap:
            remaining = length
            while remaining > 0:
                remaining -= len(self.rfile.read(min(65536, remaining)) or b"x" * remaining)
            return None
        return self.rfile.read(length) if length else b""

    def error(self, status: int, error_type: str, message: str) -> None:
        self.reply(status, json.dumps({"errorMessage": message, "errorType": error_type}).encode())


class RuntimeApi(Handler):
    """The Lambda Runtime API as the function's runtime sees it."""

    def do_GET(self):
        if self.path != "/2018-06-01/runtime/invocation/next":
            return self.error(404, "InvalidRequest", f"Unknown path {self.path}")
        with ENV.cond:
            if ENV.init_state == "initializing":
                ENV.init_state = "ready"
                ENV.init_ms = (time.monotonic() - ENV.init_started) * 1000
                ENV.cond.notify_all()
            ENV.cond.wait_for(lambda: ENV.pending is not None)
            invocation, ENV.pending = ENV.pending, None
            ENV.current = invocation
        headers = {"Lambda-Runtime-Aws-Request-Id": invocation.request_id,
                   "Lambda-Runtime-Deadline-Ms": str(invocation.deadline_ms),
                   "Lambda-Runtime-Invoked-Function-Arn": invocation.headers.get("x-function-arn", ""),
                   "Lambda-Runtime-Trace-Id": invocation.headers.get("x-trace-id", "")}
        for name, header in (("client-context", "Lambda-Runtime-Client-Context"),
                             ("cognito-identity", "Lambda-Runtime-Cognito-Identity")):
            if invocation.headers.get(f"x-{name}"):
                headers[header] = invocation.headers[f"x-{name}"]
        self.reply(200, invocation.body, headers)

    def do_POST(self):
        parts = self.path.strip("/").split("/")
        if parts == ["2018-06-01", "runtime", "init", "error"]:
            body = self.body(MAX_RESPONSE_BYTES) or b""
            with ENV.cond:
                if ENV.init_state != "initializing":
                    return self.error(403, "InvalidStateTransition", "Init error after init finished")
                ENV.init_state = "error"
                ENV.init_ms = (time.monotonic() - ENV.init_started) * 1000
                ENV.init_error = body
                ENV.init_error_type = self.headers.get("Lambda-Runtime-Function-Error-Type") or "Runtime.Unknown"
                ENV.cond.notify_all()
            return self.reply(202, b'{"status":"OK"}')
        if len(parts) != 5 or parts[:3] != ["2018-06-01", "runtime", "invocation"] \
                or parts[4] not in ("response", "error"):
            return self.error(404, "InvalidRequest", f"Unknown path {self.path}")
        request_id, kind = parts[3], parts[4]
        body = self.body(MAX_RESPONSE_BYTES)
        ENV.drain()
        with ENV.cond:
            invocation = ENV.current
            if invocation is None or invocation.request_id != request_id or invocation.done.is_set():
                return self.error(400, "InvalidStateTransition",
                                  f"No invocation {request_id} is waiting for a {kind}: it was already answered, "
                                  f"timed out, or never existed.")
            ENV.flush_partial()
            if body is None:
                message = (f"Response payload size exceeded maximum allowed payload size ({MAX_RESPONSE_BYTES} "
                           f"bytes).")
                ENV._finish(invocation, "error", json.dumps({"errorMessage": message,
                                                             "errorType": "Function.ResponseSizeTooLarge"}).encode(),
                            "Function.ResponseSizeTooLarge")
                ENV.cond.notify_all()
                return self.error(413, "RequestEntityTooLarge", message)
            if kind == "response":
                ENV._finish(invocation, "success", body)
            else:
                ENV._finish(invocation, "error", body,
                            self.headers.get("Lambda-Runtime-Function-Error-Type") or "Unhandled")
            ENV.cond.notify_all()
        self.reply(202, b'{"status":"OK"}')


class ControlApi(Handler):
    """What the platform asks: is init done, and run this invocation."""

    def authorized(self) -> bool:
        if CONTROL_TOKEN and self.headers.get("X-Sandcloud-Token") != CONTROL_TOKEN:
            self.error(403, "Forbidden", "Only the platform drives this environment.")
            return False
        return True

    def do_GET(self):
        if not self.authorized():
            return
        if not self.path.startswith("/ready"):
            return self.error(404, "InvalidRequest", self.path)
        with ENV.cond:
            ENV.cond.wait_for(lambda: ENV.init_state != "initializing", timeout=INIT_TIMEOUT_S + 1)
        ENV.drain()
        ENV.flush_partial()
        with ENV.cond:
            state = {"state": ENV.init_state, "init_ms": round(ENV.init_ms, 2), "error_type": ENV.init_error_type,
                     "error": base64.b64encode(ENV.init_error).decode(), "exit": ENV.exit_status,
                     "logs": ENV.init_logs.export()}
        self.reply(200, json.dumps(state).encode())

    def do_POST(self):
        if not self.authorized():
            return
        if self.path != "/invoke":
            return self.error(404, "InvalidRequest", self.path)
        body = self.body(MAX_RESPONSE_BYTES + 1024) or b""
        headers = {name.lower(): value for name, value in self.headers.items()}
        invocation = Invocation(request_id=headers.get("x-request-id", ""),
                                deadline_ms=int(headers.get("x-deadline-ms", "0")), headers=headers, body=body)
        oom_before = oom_kills()
        with ENV.cond:
            if ENV.init_state != "ready" or ENV.exit_status:
                ENV._finish(invocation, "crash", b"", "Runtime.ExitError")
            else:
                invocation.logs = ENV.between
                invocation.logs.cap = LOG_CAP_BYTES
                ENV.between = LogBuffer()
                ENV.pending = invocation
                ENV.cond.notify_all()
        remaining = max(0.0, invocation.deadline_ms / 1000 - time.time())
        if not invocation.done.wait(remaining):
            with ENV.cond:
                if not invocation.done.is_set():
                    ENV._finish(invocation, "timeout", b"")
            ENV.kill_runtime()
        duration_ms = (time.monotonic() - invocation.arrived) * 1000
        ENV.drain()
        ENV.flush_partial()
        error_type = invocation.error_type
        if invocation.status == "crash" and oom_kills() > oom_before:
            error_type = "Runtime.OutOfMemory"
        logs = json.dumps(invocation.logs.export()).encode()
        self.reply(200, invocation.payload + logs, {
            "X-Status": invocation.status, "X-Error-Type": error_type, "X-Exit": ENV.exit_status,
            "X-Duration-Ms": f"{duration_ms:.3f}", "X-Payload-Length": str(len(invocation.payload))},
            content_type="application/octet-stream")


def serve(server: ThreadingHTTPServer) -> None:
    server.daemon_threads = True
    server.serve_forever(poll_interval=3600)


def main() -> None:
    if not RUNTIME_COMMAND:
        print("sandcloud-init: no runtime command", file=sys.stderr)
        sys.exit(2)
    runtime_api = ThreadingHTTPServer(RUNTIME_API, RuntimeApi)
    control = ThreadingHTTPServer(("0.0.0.0", CONTROL_PORT), ControlApi)
    threading.Thread(target=serve, args=(runtime_api,), daemon=True).start()
    os.environ["AWS_LAMBDA_RUNTIME_API"] = "%s:%d" % RUNTIME_API
    ENV.start_runtime()
    signal.signal(signal.SIGTERM, lambda *_: (ENV.kill_runtime(), os._exit(0)))
    serve(control)


if __name__ == "__main__":
    main()
