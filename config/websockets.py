"""Bounds every WebSocket shares: what the server holds unsent for one socket, and how many sockets one user opens."""
from __future__ import annotations

import asyncio
import functools
import itertools
import logging
import sys
import weakref
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor

from asgiref.sync import ThreadSensitiveContext
from django.conf import settings

log = logging.getLogger(__name__)

# Close codes the pages understand (4000-4999 are free for applications), next to sandbox/consumers.py's.
CLOSE_TOO_SLOW = 4408
CLOSE_TOO_MANY_SOCKETS = 4429

# What daphne may hold unsent for one socket before a stream holds back (log lines then wait in the consumer's own
# bounded buffer, terminal output waits in the container's TTY) ...
UNSENT_SOFT_LIMIT = 256 * 1024
# ... and beyond which the socket is closed (CLOSE_TOO_SLOW): only small notices are sent past the soft limit.
UNSENT_HARD_LIMIT = 2 * 1024 * 1024
DRAIN_POLL_SECONDS = 0.05

SCOPE_KEY = "sandcloud.unsent_bytes"

# Threads that run the WebSockets' synchronous calls, shared by every socket of a web process.
SOCKET_THREADS = 4


# How daphne buffers what a consumer sends, and why the bound must read its transport (daphne 4.2, autobahn 26,
# Twisted 26): `await send(...)` ends in daphne's Server.handle_reply, which calls autobahn's sendMessage; that frames
# the message and calls the Twisted TCP transport's write(), which appends it to the transport's user-space buffer
# (`dataBuffer` + `_tempDataBuffer`) and returns at once, whatever the size. The kernel takes what fits into the
# socket's send buffer (a few hundred KB on loopback); the rest stays in daphne's memory until the peer reads, so a
# client that never reads grows daphne without limit. Twisted's own backpressure is the producer API (a registered
# push producer is paused past `bufferSize`, 64 KB), but that slot is taken by the HTTPChannel daphne upgraded from
# (it only stops reading from the client), and nothing of it reaches the ASGI application: `send()` never waits. So
# the consumer asks the transport how much it still holds (`unsent_bytes`) and holds back or closes on that figure.
# autobahn's keepalive also helps, more slowly: daphne pings a socket that sent nothing for 20 s and autobahn aborts the
# connection 30 s later without a pong (a client that never reads never sees the ping), freeing the buffer.
class SendBufferMiddleware:
    """Outermost ASGI layer for WebSockets: puts a probe of daphne's unsent bytes for this socket into the scope.

    Under another server (or the test communicator) there is no probe and the socket reports 0 bytes unsent.
    """

    def __init__(self, inner):
        self.inner = inner

    async def __call__(self, scope, receive, send):
        protocol = _daphne_protocol(send)
        if protocol is not None:
            scope = {**scope, SCOPE_KEY: functools.partial(_unsent_bytes, protocol)}
        return await self.inner(scope, receive, send)


class SocketThreadsMiddleware:
    """Spreads the WebSockets' synchronous calls (database reads, sandbox_touch) over a few shared threads.

    Channels' `database_sync_to_async` is thread-sensitive: outside a ThreadSensitiveContext (Django makes one per HTTP
    request; Channels none per socket) every socket's calls queue on one shared thread, so thirty learners opening
    their terminals at once waited for each other's reads. A context per socket would cost a thread per socket, which
    a learner who opens sockets could grow; so each socket is handed one of SOCKET_THREADS single-thread executors in
    turn, all started with the process: the thread count does not move with the sockets.
    """

    def __init__(self, inner):
        self.inner = inner
        self.executors = [ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"socket-calls-{n}")
                          for n in range(SOCKET_THREADS)]
        for executor in self.executors:
            executor.submit(int)  # starts its thread now
        self.turns = itertools.cycle(self.executors)

    async def __call__(self, scope, receive, send):
        async with ThreadSensitiveContext(executor=next(self.turns)):
            return await self.inner(scope, receive, send)


def _daphne_protocol(send):
    """daphne hands each application `functools.partial(server.handle_reply, protocol)` as its `send`."""
    daphne_ws = sys.modules.get("daphne.ws_protocol")  # loaded only when daphne serves (importing it pulls in Twisted)
    if daphne_ws is not None and isinstance(send, functools.partial) and send.args:
        if isinstance(send.args[0], daphne_ws.WebSocketProtocol):
            return send.args[0]
    return None


def _unsent_bytes(protocol) -> int:
    queued = sum(len(data) for data, _ in getattr(protocol, "send_queue", ()))  # autobahn's, used only for chopping
    transport = protocol.transport
    if transport is None:
        return queued
    # A TLS transport (daphne serving https itself) wraps the TCP one; the encrypted bytes wait in the TCP one.
    transport = getattr(transport, "transport", None) or transport
    try:
        return queued + len(transport.dataBuffer) - transport.offset + transport._tempDataLen
    except AttributeError:
        # A Twisted whose transport keeps its buffer elsewhere: sockets are then unbounded, which must not go unseen.
        # tests/security/test_streams.py fails in that case too.
        _warn_unprobed(type(transport).__name__)
        return queued


@functools.cache
def _warn_unprobed(transport: str) -> None:
    log.error("cannot read the unsent bytes of a %s transport: WebSocket sends are not bounded", transport)


class BoundedSendMixin:
    """For AsyncWebsocketConsumer: a bounded send, and a cap on the sockets one user has open in this process."""

    _slot_holder: object | None = None
    closed_for_backlog = False

    def unsent_bytes(self) -> int:
        probe = self.scope.get(SCOPE_KEY)
        return probe() if probe is not None else 0

    async def until_drained(self) -> None:
        """Returns once the server holds less than UNSENT_SOFT_LIMIT for this socket (polled: see above)."""
        while self.unsent_bytes() > UNSENT_SOFT_LIMIT:
            await asyncio.sleep(DRAIN_POLL_SECONDS)

    async def send(self, text_data=None, bytes_data=None, close=False):
        if self.closed_for_backlog:
            return
        if self.unsent_bytes() > UNSENT_HARD_LIMIT:
            self.closed_for_backlog = True
            log.warning("closing %s for user %s: %d bytes unsent (the client stopped reading)", self.scope["path"],
                        self.scope["user"].pk, self.unsent_bytes())
            await self.close(code=CLOSE_TOO_SLOW)
            return
        await super().send(text_data=text_data, bytes_data=bytes_data, close=close)

    async def claim_socket(self) -> bool:
        """Counts this socket against its user's cap; when the cap is reached, accepts and closes with
        CLOSE_TOO_MANY_SOCKETS (a refused handshake would reach the page as a bare 1006) and returns False."""
        user_id = self.scope["user"].pk
        holders = _open_sockets[user_id]
        if len(holders) >= settings.SANDCLOUD["SOCKETS_PER_USER"]:
            log.info("refusing a socket to user %s: %d already open in this process", user_id, len(holders))
            await self.accept()
            await self.close(code=CLOSE_TOO_MANY_SOCKETS)
            return False
        # A token rather than the consumer itself: a consumer that dies without disconnect() frees its slot when
        # collected, since the set holds it weakly.
        self._slot_holder = _SocketSlot()
        holders.add(self._slot_holder)
        return True

    def release_socket(self) -> None:
        if self._slot_holder is not None:
            _open_sockets[self.scope["user"].pk].discard(self._slot_holder)
            self._slot_holder = None


class _SocketSlot:
    """One open socket, held by its consumer."""


# Per web process: what is bounded is this process's memory; run several and each keeps its own count.
_open_sockets: defaultdict[int, weakref.WeakSet] = defaultdict(weakref.WeakSet)


def sockets_open(*, user_id: int) -> int:
    return len(_open_sockets.get(user_id, ()))
