"""Django's SQLite backend, with writers that wait their turn in a queue instead of SQLite's busy handler.

Every `transaction.atomic()` here begins `BEGIN IMMEDIATE` (config/settings.py), which takes SQLite's one write lock.
A writer that finds it taken is left to SQLite's busy handler, which sleeps and tries again, 1, 2, 5 ... then 100 ms
at a time: with thirty learners starting a lab at once (bench herd), most of each start went on those sleeps while
the lock sat free between them. Here a writer first takes a turn: within a process a lock the next thread is handed at
once, across processes (web, worker, beat) an flock on `<database>.writers`, tried every few milliseconds. The turn is
given back at commit, rollback or close. Writes outside a transaction (autocommit) still meet only SQLite's handler.

A writer that waits longer than the connection's `timeout` for its turn goes on without it, so a transaction stuck
elsewhere yields SQLite's own "database is locked" error instead of a hang.
"""
from __future__ import annotations

import fcntl
import logging
import os
import threading
import time

from django.db.backends.sqlite3 import base

log = logging.getLogger(__name__)

POLL_SECONDS = (0.0005, 0.001, 0.002)  # between tries of the flock: then every 2 ms


class _Queue:
    """The turns of one database file in this process: a lock for its threads, one open file for its flock."""

    def __init__(self, path: str):
        self.path = path
        self.threads = threading.Lock()
        self.fd: int | None = None

    def take(self, timeout: float) -> bool:
        """True once this thread holds the turn; False after `timeout` (the caller goes on without it)."""
        deadline = time.monotonic() + timeout
        if not self.threads.acquire(timeout=timeout):
            return False
        if self.fd is None:
            self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        tries = 0
        while True:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    self.threads.release()
                    return False
                time.sleep(POLL_SECONDS[min(tries, len(POLL_SECONDS) - 1)])
                tries += 1

    def give(self) -> None:
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        self.threads.release()


_queues: dict[str, _Queue] = {}
_queues_guard = threading.Lock()


def _queue_for(database: str) -> _Queue:
    with _queues_guard:
        queue = _queues.get(database)
        if queue is None:
            queue = _queues[database] = _Queue(f"{database}.writers")
        return queue


def _forget_after_fork() -> None:
    # A forked child (Celery's pool) must not share its parent's open file, whose flock is one lock for both, nor
    # inherit a thread lock some other thread of the parent held at the fork.
    global _queues, _queues_guard
    _queues, _queues_guard = {}, threading.Lock()


os.register_at_fork(after_in_child=_forget_after_fork)


class DatabaseWrapper(base.DatabaseWrapper):
    _turn: _Queue | None = None

    def _start_transaction_under_autocommit(self):
        if self.transaction_mode == "IMMEDIATE" and not self.is_in_memory_db():
            queue = _queue_for(str(self.settings_dict["NAME"]))
            timeout = float(self.settings_dict.get("OPTIONS", {}).get("timeout", 5))
            if queue.take(timeout):
                self._turn = queue
            else:
                log.warning("waited %g s for a turn to write to %s; going on without it", timeout, queue.path)
        try:
            super()._start_transaction_under_autocommit()
        except BaseException:
            self._turn_give()
            raise

    def _commit(self):
        try:
            return super()._commit()
        finally:
            self._turn_give()

    def _rollback(self):
        try:
            return super()._rollback()
        finally:
            self._turn_give()

    def _close(self):
        try:
            return super()._close()
        finally:
            self._turn_give()

    def _turn_give(self) -> None:
        turn, self._turn = self._turn, None
        if turn is not None:
            turn.give()
