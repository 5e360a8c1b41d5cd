"""Terminals opened ahead: when a warm sandbox is claimed, its tmux attach starts while the learner's page loads.

Attaching is a `docker exec` (about 74 ms here), which otherwise begins only when the page's WebSocket connects. The
web process that served the claim opens it at once, keeps it for PREOPEN_SECONDS, and hands it to the owner's first
terminal socket in the same process; a socket that lands elsewhere (another web process) opens its own, as before.
"""
from __future__ import annotations

import logging
import socket
import threading
import time
from concurrent.futures import Future

from django.utils import timezone

from .engine.docker import EngineError, TerminalStream, engine
from .engine.images import LEARNER_GID
from .states import State

log = logging.getLogger(__name__)

OWNER_TMUX = ["tmux", "-u", "new-session", "-A", "-s", "main"]
PREOPEN_SECONDS = 30.0

_lock = threading.Lock()
# sandbox id -> (the attach, finished or still opening; when it is given up). A socket that connects while the attach is
# still opening waits for it rather than opening a second one.
_opened: dict[int, tuple[Future, float]] = {}
_expiry: threading.Thread | None = None  # runs while something is held, so an attach nobody takes is closed on time
_expiry_wake = threading.Condition(_lock)


def terminal_preopen_for(sandbox) -> None:
    """Called by the web views that start sandboxes: a sandbox just claimed from a warm pool is running already, so
    its terminal can be opened now, before the page that shows it has loaded."""
    fresh = sandbox.created_at and (timezone.now() - sandbox.created_at).total_seconds() < 5
    if sandbox.from_warm_pool and sandbox.state == State.RUNNING and sandbox.container_id and fresh:
        terminal_preopen(sandbox_id=sandbox.pk, container_id=sandbox.container_id, uid=sandbox.uid)


def terminal_preopen(*, sandbox_id: int, container_id: str, uid: int) -> None:
    """Starts the owner's tmux attach in the background; the caller does not wait for it."""
    future: Future = Future()
    with _lock:
        _expire_locked()
        previous = _opened.pop(sandbox_id, None)
        _opened[sandbox_id] = (future, time.monotonic() + PREOPEN_SECONDS)
        _expiry_ensure_locked()
    if previous is not None:
        _discard(previous[0])
    threading.Thread(target=_open, args=(future, sandbox_id, container_id, uid), name=f"preopen-{sandbox_id}",
                     daemon=True).start()


def _open(future: Future, sandbox_id: int, container_id: str, uid: int) -> None:
    try:
        future.set_result(engine().open_terminal(container_id, OWNER_TMUX, user=f"{uid}:{LEARNER_GID}"))
    except EngineError as error:
        log.info("could not open sandbox %s's terminal ahead (its socket opens one): %s", sandbox_id, error)
        future.set_result(None)


def terminal_take(*, sandbox_id: int) -> Future | None:
    """The attach opened (or opening) ahead for this sandbox in this process, taken once; its result is the terminal,
    or None when opening it failed."""
    with _lock:
        _expire_locked()
        entry = _opened.pop(sandbox_id, None)
    return entry[0] if entry else None


def _expire_locked() -> None:
    now = time.monotonic()
    for sandbox_id in [key for key, (_, deadline) in _opened.items() if deadline < now]:
        _discard(_opened.pop(sandbox_id)[0])


def _expiry_ensure_locked() -> None:
    global _expiry
    if _expiry is None:
        _expiry = threading.Thread(target=_expiry_run, name="preopen-expiry", daemon=True)
        _expiry.start()
    _expiry_wake.notify()


def _expiry_run() -> None:
    """Closes what nobody took (its socket landed in another web process, or the page never opened one) when its time
    is up, then ends once nothing is held."""
    global _expiry
    with _lock:
        while _opened:
            _expire_locked()
            if _opened:
                first = min(deadline for _, deadline in _opened.values())
                _expiry_wake.wait(timeout=max(0.05, first - time.monotonic()))
        _expiry = None


def _discard(future: Future) -> None:
    """Closes an attach nobody took, now or when it finishes opening."""
    future.add_done_callback(lambda done: done.result() is not None and terminal_close(done.result()))


def terminal_close(stream: TerminalStream) -> None:
    """Ends the attach (tmux's session and the learner's shell go on). Shut down first: docker-py's response still
    refers to the socket, so close() alone would leave the connection open until that is collected."""
    try:
        stream.sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    stream.sock.close()
