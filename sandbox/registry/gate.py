"""The front's write gate: what lets a garbage collection run without losing a push.

distribution's collector deletes every blob no manifest references, and a push uploads its layers before the
manifest that references them, so a collection in the middle of a push would delete layers the push is about to
name. The gate therefore tracks pushes per repository (a push is any request carrying a token that may push there;
it is under way until its manifest is put, or until it has been idle for PUSH_IDLE seconds) and, to collect:
draining: pushes under way go on, new ones wait; collecting: every write waits; then all go on. Reads never wait.
"""
from __future__ import annotations

import asyncio
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass, field


@dataclass
class Push:
    in_flight: int = 0
    last: float = field(default_factory=time.monotonic)


class WriteGate:
    OPEN, DRAINING, COLLECTING = "open", "draining", "collecting"

    def __init__(self, *, idle_seconds: float):
        self.idle_seconds = idle_seconds
        self.state = self.OPEN
        self.pushes: dict[str, Push] = {}
        self.other_writes = 0  # deletes: they take no part in a push
        self.held = 0  # requests that waited for the current (or last) collection
        self._changed = asyncio.Condition()
        self._collecting = asyncio.Lock()

    def _live(self, name: str) -> Push | None:
        push = self.pushes.get(name)
        if push is not None and push.in_flight == 0 and time.monotonic() - push.last > self.idle_seconds:
            del self.pushes[name]
            return None
        return push

    def pushes_under_way(self) -> int:
        return sum(1 for name in list(self.pushes) if self._live(name) is not None)

    @asynccontextmanager
    async def pushing(self, name: str):
        """One request of a push to `name`. `finished()` on the yielded Push-ender closes the push (manifest put)."""
        async with self._changed:
            waited = False
            while not (self.state == self.OPEN or (self.state == self.DRAINING and self._live(name) is not None)):
                self.held += not waited  # counted as it starts waiting, so the collection's answer includes it
                waited = True
                await self._changed.wait()
            push = self._live(name) or self.pushes.setdefault(name, Push())
            push.in_flight += 1
        ender = {"finished": False}
        try:
            yield ender
        finally:
            async with self._changed:
                push.in_flight -= 1
                push.last = time.monotonic()
                if ender["finished"] and push.in_flight == 0 and self.pushes.get(name) is push:
                    del self.pushes[name]
                self._changed.notify_all()

    @asynccontextmanager
    async def writing(self):
        """A write outside any push (a delete): waits only while a collection runs."""
        async with self._changed:
            waited = False
            while self.state == self.COLLECTING:
                self.held += not waited
                waited = True
                await self._changed.wait()
            self.other_writes += 1
        try:
            yield
        finally:
            async with self._changed:
                self.other_writes -= 1
                self._changed.notify_all()

    async def _set(self, state: str) -> None:
        async with self._changed:
            self.state = state
            self._changed.notify_all()

    async def _until(self, done, deadline: float) -> bool:
        async with self._changed:
            while not done():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                try:
                    # Woken by every request's end; the timeout also lets idle pushes lapse.
                    await asyncio.wait_for(self._changed.wait(), timeout=min(remaining, 0.5))
                except asyncio.TimeoutError:
                    pass
            return True

    async def collect(self, run, *, drain_seconds: float) -> dict:
        """Drains pushes (up to `drain_seconds`), holds every write, awaits `run()`, lets everything go on. Answers
        {"status": "DONE" | "POSTPONED", "held_writes", "held_seconds" (every write held), "seconds" (from the
        start of draining), ...run()'s own keys}."""
        async with self._collecting:
            started = time.monotonic()
            self.held = 0
            await self._set(self.DRAINING)
            try:
                if not await self._until(lambda: self.pushes_under_way() == 0, started + drain_seconds):
                    return {"status": "POSTPONED", "held_writes": self.held,
                            "seconds": round(time.monotonic() - started, 3),
                            "detail": f"{self.pushes_under_way()} push(es) still under way after {drain_seconds:g} s"}
                await self._set(self.COLLECTING)
                if not await self._until(lambda: self.other_writes == 0 and self.pushes_under_way() == 0,
                                         time.monotonic() + drain_seconds):
                    return {"status": "POSTPONED", "held_writes": self.held,
                            "seconds": round(time.monotonic() - started, 3),
                            "detail": "writes still under way when the collection was to start"}
                held_from = time.monotonic()
                outcome = await run()
            finally:
                await self._set(self.OPEN)
            return {"status": "DONE", **outcome, "held_writes": self.held,
                    "held_seconds": round(time.monotonic() - held_from, 3),
                    "seconds": round(time.monotonic() - started, 3)}
