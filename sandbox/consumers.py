"""WebSocket consumers: the browser terminal (docker exec TTY) and the sandbox's live events and container log."""
from __future__ import annotations

import asyncio
import collections
import json
import logging
import time

from asgiref.sync import sync_to_async
from autobahn.exception import Disconnected
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from config.websockets import BoundedSendMixin

from .engine.docker import EngineError, engine
from .engine.images import LEARNER_GID
from .engine.streams import log_followers, out_of_memory_watch
from .events import events_recent, group_name
from .models import Sandbox
from .recording import recording_start
from .selectors import can_watch
from .services import sandbox_touch
from .states import FINAL, State
from .terminals import OWNER_TMUX, terminal_close, terminal_take

log = logging.getLogger(__name__)

# Close codes the page understands (4000-4999 are free for applications).
CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_NOT_RUNNING = 4409
# config/websockets.py adds CLOSE_TOO_SLOW (4408) and CLOSE_TOO_MANY_SOCKETS (4429).
TOUCH_EVERY_SECONDS = 30
OUTPUT_BYTES_PER_SECOND = 2 * 1024 * 1024
# The owner gets (or re-attaches to) the shell; a watcher attaches read-only, and the consumer drops their input too.
WATCHER_TMUX = ["tmux", "-u", "attach-session", "-r", "-f", "ignore-size", "-t", "main"]
LOG_BUFFER_LINES = 1000
LOG_BUFFER_CHARACTERS = 1024 * 1024
LOG_MESSAGE_CHARACTERS = 64 * 1024


@sync_to_async
def _load_sandbox(sandbox_id: int) -> Sandbox | None:
    return Sandbox.objects.filter(pk=sandbox_id).first()


@sync_to_async
def _watchable(user, sandbox: Sandbox) -> bool:
    return can_watch(user=user, sandbox=sandbox)


class SandboxAccessMixin(BoundedSendMixin):
    """connect() refuses anonymous users and anyone who is neither the owner nor their instructor (read-only), and
    counts the socket against its user's cap."""

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
        if not await self.claim_socket():
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
        command = WATCHER_TMUX if self.read_only else OWNER_TMUX
        # A warm claim served by this process has already started the owner's attach (sandbox/terminals.py).
        opened_ahead = None if self.read_only else terminal_take(sandbox_id=self.sandbox.pk)
        if opened_ahead is not None:
            try:
                self.stream = await asyncio.wait_for(asyncio.wrap_future(opened_ahead), timeout=10)
            except asyncio.TimeoutError:
                self.stream = None
        try:
            self.stream = self.stream or await asyncio.to_thread(
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
                # Not reading while the browser lags leaves the output in the TTY, where the program blocks on it.
                await self.until_drained()
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
        """Caps output at OUTPUT_BYTES_PER_SECOND even for a browser that keeps up: an endless `yes` would otherwise
        spend the web process's CPU that other learners' terminals need. Pausing the reads makes the TTY push back on
        the program instead."""
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
        self.release_socket()
        if self.pump is not None:
            # Wait for the cancelled read to leave the event loop before closing its socket: a closed descriptor's
            # number is soon reused (e.g. by a Redis connection), which the loop's stale reader would then break.
            self.pump.cancel()
            await asyncio.gather(self.pump, return_exceptions=True)
        if self.stream is not None:
            terminal_close(self.stream)
        if self.recorder is not None:
            await sync_to_async(self.recorder.close)()
            self.recorder = None


def _clamp(value, low: int, high: int) -> int | None:
    if not isinstance(value, int):
        return None
    return max(low, min(high, value))


class LogBuffer:
    """A bounded queue between the container's log and the socket: when the client is slow, the oldest lines go.

    Bounded by lines and by characters (Docker passes lines of up to 16 KB), so one socket's backlog stays small.
    """

    def __init__(self, capacity: int, max_characters: int = LOG_BUFFER_CHARACTERS):
        self.lines: collections.deque[str] = collections.deque()
        self.capacity, self.max_characters = capacity, max_characters
        self.characters = 0
        self.dropped = 0
        self.ready = asyncio.Event()

    def push(self, line: str) -> None:
        self.lines.append(line)
        self.characters += len(line)
        while len(self.lines) > self.capacity or self.characters > self.max_characters:
            self.characters -= len(self.lines.popleft())
            self.dropped += 1
        self.ready.set()

    def take(self, max_characters: int | None = None) -> tuple[list[str], int]:
        """The oldest lines, up to `max_characters` (at least one), and how many were dropped before them."""
        lines, size = [], 0
        while self.lines and (max_characters is None or not lines or size + len(self.lines[0]) <= max_characters):
            line = self.lines.popleft()
            lines.append(line)
            size += len(line)
        self.characters -= size
        dropped, self.dropped = self.dropped, 0
        if not self.lines:
            self.ready.clear()
        return lines, dropped


class SandboxStreamConsumer(SandboxAccessMixin, AsyncWebsocketConsumer):
    """Provisioning events (replayed from Redis, then live from the channel layer) and the container's log.

    The log is followed on the event loop (sandbox/engine/streams.py), so a socket costs no thread: one engine log
    stream per container feeds every socket following it, and out-of-memory kills come from one engine event stream
    per process.
    """

    sender: asyncio.Task | None = None
    followed: str | None = None  # the container whose log and OOM kills this socket follows

    async def connect(self):
        if not await self.authorize():
            return
        self.group = group_name(self.sandbox.pk)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        self.buffer = LogBuffer(capacity=LOG_BUFFER_LINES)
        self.sender = asyncio.create_task(self._send_logs())
        try:
            for event in await asyncio.to_thread(events_recent, sandbox_id=self.sandbox.pk):
                await self._send_json({"type": "event", "replay": True, **event})
            await self._send_json({"type": "state", "state": self.sandbox.state,
                                   "label": self.sandbox.get_state_display(), "reason": self.sandbox.failure_reason})
        except Disconnected:
            return  # the browser left during the replay; disconnect() cleans up
        if self.sandbox.state == State.RUNNING:
            await self._start_logs()

    async def _send_json(self, payload: dict) -> None:
        await self.send(text_data=json.dumps(payload))

    async def sandbox_event(self, message):
        event = message["event"]
        await self._send_json({"type": "event", **event})
        if event["state"] == State.RUNNING and self.followed is None:
            self.sandbox = await _load_sandbox(self.sandbox.pk)
            if self.sandbox and self.sandbox.state == State.RUNNING:
                await self._start_logs()
        elif event["state"] in FINAL:
            self._stop_logs()

    async def _start_logs(self) -> None:
        self.followed = self.sandbox.container_id
        out_of_memory_watch().subscribe(self.followed, self._out_of_memory)
        log_followers().subscribe(self.followed, tail=settings.SANDCLOUD["LOG_REPLAY_LINES"],
                                  on_line=self.buffer.push, on_error=self._log_failed)

    def _log_failed(self, error: EngineError) -> None:
        asyncio.get_running_loop().create_task(self._send_json({"type": "log-error", "message": str(error)}))

    def _out_of_memory(self) -> None:
        """A process killed by the memory limit is news the learner should not have to guess from "Killed"."""
        asyncio.get_running_loop().create_task(self._send_json({
            "type": "event", "state": State.RUNNING, "level": "error", "at": time.time(),
            "message": f"Out of memory: a process used more than this sandbox's {self.sandbox.memory_mb} MB "
                       f"and the kernel killed it."}))

    async def _send_logs(self) -> None:
        while True:
            await self.buffer.ready.wait()
            # While the browser lags, lines wait in the bounded buffer (the oldest dropped and counted), not in
            # daphne's unbounded one.
            await self.until_drained()
            lines, dropped = self.buffer.take(max_characters=LOG_MESSAGE_CHARACTERS)
            if dropped:
                await self._send_json({"type": "dropped", "count": dropped})
            if lines:
                await self._send_json({"type": "log", "lines": lines})

    def _stop_logs(self) -> None:
        if self.followed is not None:
            log_followers().unsubscribe(self.followed, self.buffer.push)
            out_of_memory_watch().unsubscribe(self.followed, self._out_of_memory)
            self.followed = None

    async def disconnect(self, code):
        self.release_socket()
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)
        if self.sender is not None:
            self.sender.cancel()
        self._stop_logs()
