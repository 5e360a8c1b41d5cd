"""The Docker streams the web process follows on its event loop (aiodocker): containers' logs and their OOM kills."""
from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections import defaultdict
from typing import AsyncIterator, Callable, TypeVar

import aiodocker
import aiohttp
from django.conf import settings

from .docker import EngineError, EngineUnavailable

log = logging.getLogger(__name__)

RECONNECT_SECONDS = 2.0
REPLAY_CHARACTERS = 256 * 1024


def _client() -> aiodocker.Docker:
    """A client of its own for each stream: aiohttp sessions belong to one event loop, and tests run many loops.

    Connecting is bounded by DOCKER_TIMEOUT; aiodocker lifts the read timeout for follow streams itself.
    """
    config = settings.SANDCLOUD
    timeout = aiohttp.ClientTimeout(total=config["DOCKER_TIMEOUT"], sock_connect=config["DOCKER_TIMEOUT"])
    return aiodocker.Docker(url=config["DOCKER_URL"], timeout=timeout)


def _translate(error: Exception) -> EngineError:
    if isinstance(error, aiodocker.DockerError) and error.status != 900:  # 900: aiodocker's "cannot connect"
        return EngineError(f"The container engine refused the request: {error.message}")
    return EngineUnavailable(str(error))


async def container_log(container_id: str, *, tail: int) -> AsyncIterator[str]:
    """The container's last `tail` lines of stdout and stderr, then each new line as it is written, without a thread.

    Closing the generator (or cancelling the task iterating it) closes the HTTP stream to the engine.
    """
    docker = _client()
    try:
        container = docker.containers.container(container_id)
        # Each piece is one log message of Docker's (a line, or a 16 KB slice of a longer one).
        async for piece in container.log(stdout=True, stderr=True, follow=True, tail=tail):
            for line in piece.splitlines():
                yield line
    except (aiodocker.DockerError, aiohttp.ClientError, asyncio.TimeoutError) as error:
        raise _translate(error) from error
    finally:
        await docker.close()


class OutOfMemoryWatch:
    """One `docker events` stream per event loop tells every subscribed socket when the OOM killer struck its container.

    A stream per socket would cost the engine a connection per open page; one per web process costs one.
    """

    def __init__(self) -> None:
        self.subscribers: dict[str, set[Callable[[], None]]] = defaultdict(set)
        self.task: asyncio.Task | None = None

    def subscribe(self, container_id: str, callback: Callable[[], None]) -> None:
        self.subscribers[container_id].add(callback)
        if self.task is None or self.task.done():
            # `since` makes the engine replay what happened while the stream was still connecting.
            self.task = asyncio.get_running_loop().create_task(self._follow(since=time.time()))

    def unsubscribe(self, container_id: str, callback: Callable[[], None]) -> None:
        callbacks = self.subscribers.get(container_id)
        if callbacks is not None:
            callbacks.discard(callback)
            if not callbacks:
                del self.subscribers[container_id]
        if not self.subscribers and self.task is not None:
            self.task.cancel()
            self.task = None

    async def _follow(self, *, since: float) -> None:
        filters = {"type": ["container"], "event": ["oom"],
                   "label": [f"sandcloud.instance={settings.SANDCLOUD['INSTANCE']}"]}
        while True:
            docker = _client()
            subscriber = docker.events.subscribe(since=f"{since:.6f}", filters=filters)
            try:
                while (event := await subscriber.get()) is not None:
                    # Just after this event: a reconnect replays from here and must not repeat it.
                    since = event.get("timeNano", since * 1e9) / 1e9 + 1e-6
                    self._notify(event.get("Actor", {}).get("ID") or event.get("id") or "")
            finally:
                await _close_events(docker)
            # The stream ended: the engine restarted or could not be reached. Follow again from where it stopped.
            await asyncio.sleep(RECONNECT_SECONDS)

    def _notify(self, container_id: str) -> None:
        for callback in list(self.subscribers.get(container_id, ())):
            try:
                callback()
            except Exception:  # noqa: BLE001 - one socket's failure must not end the others' watch
                log.exception("an OOM subscriber failed")


async def _close_events(docker: aiodocker.Docker) -> None:
    try:
        await docker.events.stop()  # re-raises what ended the stream, if anything did
    except (aiodocker.DockerError, aiohttp.ClientError, asyncio.TimeoutError) as error:
        log.warning("the engine's OOM event stream failed (%s); following it again", error)
    finally:
        await docker.close()


class SharedLog:
    """One container's log as followed for every socket watching it, and its newest lines for sockets that join later."""

    def __init__(self, container_id: str, *, tail: int):
        self.container_id = container_id
        self.recent: collections.deque[str] = collections.deque(maxlen=tail)
        self.recent_characters = 0
        # line callback -> error callback, one pair per socket
        self.subscribers: dict[Callable[[str], None], Callable[[EngineError], None]] = {}
        self.task: asyncio.Task | None = None

    def remember(self, line: str) -> None:
        if len(self.recent) == self.recent.maxlen:
            self.recent_characters -= len(self.recent[0])
        self.recent.append(line)
        self.recent_characters += len(line)
        while self.recent_characters > REPLAY_CHARACTERS:
            self.recent_characters -= len(self.recent.popleft())


class LogFollowers:
    """One engine log stream per container and event loop, fanned out to every socket that follows that container.

    Eight tabs on one flooding container then cost the engine one follower (it decodes its json-file log once per
    follower) and this process one stream to parse, not eight.
    """

    def __init__(self) -> None:
        self.logs: dict[str, SharedLog] = {}

    def subscribe(self, container_id: str, *, tail: int, on_line: Callable[[str], None],
                  on_error: Callable[[EngineError], None]) -> None:
        """Replays up to `tail` recent lines to `on_line`, then calls it with each new line."""
        shared = self.logs.get(container_id)
        if shared is None:
            shared = self.logs[container_id] = SharedLog(container_id, tail=tail)
            shared.task = asyncio.get_running_loop().create_task(self._follow(shared, tail=tail))
        for line in list(shared.recent)[-tail:] if tail else ():
            on_line(line)
        shared.subscribers[on_line] = on_error

    def unsubscribe(self, container_id: str, on_line: Callable[[str], None]) -> None:
        shared = self.logs.get(container_id)
        if shared is None:
            return
        shared.subscribers.pop(on_line, None)
        if not shared.subscribers:
            shared.task.cancel()
            del self.logs[container_id]

    async def _follow(self, shared: SharedLog, *, tail: int) -> None:
        try:
            async for line in container_log(shared.container_id, tail=tail):
                shared.remember(line)
                for on_line in list(shared.subscribers):
                    on_line(line)
        except EngineError as error:
            for on_error in list(shared.subscribers.values()):
                on_error(error)
        finally:
            # The stream ended (the container stopped, or the engine failed): the next socket starts a new one.
            if self.logs.get(shared.container_id) is shared:
                del self.logs[shared.container_id]


Registry = TypeVar("Registry")
_per_loop: dict[tuple[asyncio.AbstractEventLoop, type], object] = {}


def _for_this_loop(kind: type[Registry]) -> Registry:
    """daphne has one event loop; each test's loop gets registries of its own."""
    loop = asyncio.get_running_loop()
    for key in [key for key in _per_loop if key[0].is_closed()]:
        del _per_loop[key]
    if (loop, kind) not in _per_loop:
        _per_loop[loop, kind] = kind()
    return _per_loop[loop, kind]


def out_of_memory_watch() -> OutOfMemoryWatch:
    return _for_this_loop(OutOfMemoryWatch)


def log_followers() -> LogFollowers:
    return _for_this_loop(LogFollowers)
