"""WebSocket consumers: the browser terminal (docker exec TTY) and the sandbox's live events and container log."""
from __future__ import annotations

import asyncio
import collections
import json
import logging
import threading
import time

from asgiref.sync import sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from .engine.docker import EngineError, engine
from .engine.images import LEARNER_GID
from .events import events_recent, group_name
from .models import Sandbox
from .recording import recording_start
from .selectors import can_watch
from .services import sandbox_touch
from .states import FINAL, State

log = logging.getLogger(__name__)

# Close codes the page understands (4000-4999 are free for applications).
CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_NOT_RUNNING = 4409
TOUCH_EVERY_SECONDS = 30
OUTPUT_BYTES_PER_SECOND = 2 * 1024 * 1024


@sync_to_async
def _load_sandbox(sandbox_id: int) -> Sandbox | None:
    return Sandbox.objects.filter(pk=sandbox_id).first()


@sync_to_async
def _watchable(user, sandbox: Sandbox) -> bool:
    return can_watch(user=user, sandbox=sandbox)


class SandboxAccessMixin:
    """connect() refuses anonymous users and anyone who is neither the owner nor their instructor (read-only)."""

    sandbox: Sandbox
    read_only: bool

    async def authorize(self) -> bool:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return False
        sandbox = await _load_sandbox(int(self.scope["url_route"]["kwargs"]["sandbox_id"]))
        if sandbox is None or not await _watchable(user, sandbox):
            await self.close(code=CLOSE_FORBIDDEN)
            return False
        self.sandbox = sandbox
        self.read_only = sandbox.owner_id != user.pk
        return True


class TerminalConsumer(SandboxAccessMixin, AsyncWebsocketConsumer):
    """Binary frames carry terminal bytes both ways; text frames carry JSON control messages (resize) and notices."""

    stream = None
    pump: asyncio.Task | None = None
    recorder = None
    window_started = 0.0
    window_bytes = 0

    async def connect(self):
        if not await self.authorize():
            return
        await self.accept()
        if self.sandbox.state != State.RUNNING:
            await self._notice("error", f"This sandbox is {self.sandbox.get_state_display().lower()}; "
                                        f"there is no terminal to open.")
            await self.close(code=CLOSE_NOT_RUNNING)
            return
        if self.read_only:
            command = ["tmux", "-u", "attach-session", "-r", "-f", "ignore-size", "-t", "main"]
        else:
            command = ["tmux", "-u", "new-session", "-A", "-s", "main"]
        try:
            self.stream = await asyncio.to_thread(
                engine().open_terminal, self.sandbox.container_id, command, user=f"{self.sandbox.uid}:{LEARNER_GID}")
        except EngineError as error:
            await self._notice("error", str(error))
            await self.close(code=CLOSE_NOT_RUNNING)
            return
        self.last_touch = 0.0
        if self.read_only:
            await self._notice("info", "Watching read-only: your keystrokes are not sent.")
        else:
            # Only the owner's own session is recorded; instructors replay it next to check results.
            self.recorder = await sync_to_async(recording_start)(sandbox=self.sandbox)
        self.pump = asyncio.create_task(self._pump_output())

    async def _notice(self, kind: str, message: str) -> None:
        await self.send(text_data=json.dumps({"type": kind, "message": message}))

    async def _pump_output(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                data = await loop.sock_recv(self.stream.sock, 65536)
                if not data:
                    break
                await self.send(bytes_data=data)
                if self.recorder is not None:
                    self.recorder.output(data)
                await self._throttle(len(data))
        except (OSError, asyncio.CancelledError):
            return
        state = await sync_to_async(lambda: Sandbox.objects.values_list("state", flat=True).get(pk=self.sandbox.pk))()
        message = "The shell exited. Reload to open a new one." if state == State.RUNNING else "The sandbox stopped."
        await self._notice("exit", message)
        await self.close(code=1000)

    async def _throttle(self, sent: int) -> None:
        """Caps output at OUTPUT_BYTES_PER_SECOND: send() never waits for the browser, so an endless `yes` would
        otherwise pile up in the server's buffers. Pausing the reads makes the TTY push back on the program instead."""
        now = time.monotonic()
        if now - self.window_started > 0.1:
            self.window_started, self.window_bytes = now, 0
        self.window_bytes += sent
        if self.window_bytes > OUTPUT_BYTES_PER_SECOND / 10:
            await asyncio.sleep(0.1 - (now - self.window_started))

    async def receive(self, text_data=None, bytes_data=None):
        if self.stream is None:
            return
        if bytes_data is not None:
            if self.read_only:
                return
            await asyncio.get_running_loop().sock_sendall(self.stream.sock, bytes_data)
            await self._touch()
            return
        try:
            message = json.loads(text_data or "")
        except ValueError:
            return
        if message.get("type") == "resize" and not self.read_only:
            rows, cols = _clamp(message.get("rows"), 2, 500), _clamp(message.get("cols"), 2, 500)
            if rows and cols:
                await asyncio.to_thread(engine().resize_terminal, self.stream.exec_id, rows=rows, cols=cols)
                if self.recorder is not None:
                    self.recorder.resize(cols=cols, rows=rows)
        elif message.get("type") == "input" and not self.read_only and isinstance(message.get("data"), str):
            await asyncio.get_running_loop().sock_sendall(self.stream.sock, message["data"].encode())
            await self._touch()

    async def _touch(self) -> None:
        now = time.monotonic()
        if now - self.last_touch > TOUCH_EVERY_SECONDS:
            self.last_touch = now
            await sync_to_async(sandbox_touch)(sandbox_id=self.sandbox.pk)

    async def disconnect(self, code):
        if self.pump is not None:
            self.pump.cancel()
        if self.stream is not None:
            self.stream.sock.close()
        if self.recorder is not None:
            await sync_to_async(self.recorder.close)()
            self.recorder = None


def _clamp(value, low: int, high: int) -> int | None:
    if not isinstance(value, int):
        return None
    return max(low, min(high, value))


class LogBuffer:
    """A bounded queue between the Docker log thread and the socket: when the client is slow, the oldest lines go."""

    def __init__(self, capacity: int):
        self.lines: collections.deque[str] = collections.deque(maxlen=capacity)
        self.dropped = 0
        self.ready = asyncio.Event()

    def push(self, line: str) -> None:
        if len(self.lines) == self.lines.maxlen:
            self.dropped += 1
        self.lines.append(line)
        self.ready.set()

    def take(self) -> tuple[list[str], int]:
        lines, dropped = list(self.lines), self.dropped
        self.lines.clear()
        self.dropped = 0
        self.ready.clear()
        return lines, dropped


class SandboxStreamConsumer(SandboxAccessMixin, AsyncWebsocketConsumer):
    """Provisioning events (replayed from Redis, then live from the channel layer) and the container's log."""

    follower: threading.Thread | None = None
    log_stream = None
    oom_stream = None
    sender: asyncio.Task | None = None

    async def connect(self):
        if not await self.authorize():
            return
        self.group = group_name(self.sandbox.pk)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        self.buffer = LogBuffer(capacity=1000)
        self.sender = asyncio.create_task(self._send_logs())
        for event in await asyncio.to_thread(events_recent, sandbox_id=self.sandbox.pk):
            await self._send_json({"type": "event", "replay": True, **event})
        await self._send_json({"type": "state", "state": self.sandbox.state,
                               "label": self.sandbox.get_state_display(), "reason": self.sandbox.failure_reason})
        if self.sandbox.state == State.RUNNING:
            await self._start_logs()

    async def _send_json(self, payload: dict) -> None:
        await self.send(text_data=json.dumps(payload))

    async def sandbox_event(self, message):
        event = message["event"]
        await self._send_json({"type": "event", **event})
        if event["state"] == State.RUNNING and self.follower is None:
            self.sandbox = await _load_sandbox(self.sandbox.pk)
            if self.sandbox and self.sandbox.state == State.RUNNING:
                await self._start_logs()
        elif event["state"] in FINAL:
            self._stop_logs()

    async def _start_logs(self) -> None:
        loop = asyncio.get_running_loop()
        await self._watch_out_of_memory(loop)
        tail = settings.SANDCLOUD["LOG_REPLAY_LINES"]
        try:
            self.log_stream = await asyncio.to_thread(engine().follow_logs, self.sandbox.container_id, tail=tail)
        except EngineError as error:
            await self._send_json({"type": "log-error", "message": str(error)})
            return
        stream, buffer = self.log_stream, self.buffer

        def follow():
            try:
                for chunk in stream:
                    for line in chunk.decode("utf-8", "replace").splitlines():
                        loop.call_soon_threadsafe(buffer.push, line)
            except Exception:  # noqa: BLE001 - the stream ends when closed or when the container goes
                pass

        self.follower = threading.Thread(target=follow, name=f"logs-{self.sandbox.pk}", daemon=True)
        self.follower.start()

    async def _watch_out_of_memory(self, loop) -> None:
        """A process killed by the memory limit is news the learner should not have to guess from "Killed"."""
        try:
            self.oom_stream = await asyncio.to_thread(engine().follow_oom_events, self.sandbox.container_id)
        except EngineError:
            return
        events, sandbox = self.oom_stream, self.sandbox
        message = {"type": "event", "state": State.RUNNING, "level": "error",
                   "message": f"Out of memory: a process used more than this sandbox's {sandbox.memory_mb} MB "
                              f"and the kernel killed it."}

        def follow():
            try:
                for _ in events:
                    loop.call_soon_threadsafe(asyncio.ensure_future, self._send_json({**message, "at": time.time()}))
            except Exception:  # noqa: BLE001 - ends when closed
                pass

        threading.Thread(target=follow, name=f"oom-{sandbox.pk}", daemon=True).start()

    async def _send_logs(self) -> None:
        while True:
            await self.buffer.ready.wait()
            lines, dropped = self.buffer.take()
            if dropped:
                await self._send_json({"type": "dropped", "count": dropped})
            if lines:
                await self._send_json({"type": "log", "lines": lines})

    def _stop_logs(self) -> None:
        for stream in (self.log_stream, self.oom_stream):
            if stream is not None:
                try:
                    stream.close()
                except Exception:  # noqa: BLE001 - already closed by the engine
                    pass
        self.log_stream = self.oom_stream = None

    async def disconnect(self, code):
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)
        if self.sender is not None:
            self.sender.cancel()
        self._stop_logs()
