"""The front's write gate on its own (pure asyncio, no registry): a collection waits for pushes under way, holds new
ones until it is over, and never holds reads."""
from __future__ import annotations

import asyncio

from sandbox.registry.gate import WriteGate


def run(coroutine):
    return asyncio.run(coroutine)


async def _collect_marking(gate: WriteGate, events: list[str], *, drain_seconds: float = 5) -> dict:
    async def collect():
        events.append("collect")
        await asyncio.sleep(0.05)
        events.append("collected")
        return {}
    return await gate.collect(collect, drain_seconds=drain_seconds)


def test_a_collection_waits_until_the_push_under_way_puts_its_manifest():
    async def scenario():
        gate, events = WriteGate(idle_seconds=30), []
        async with gate.pushing("a/one") as push:
            events.append("layer")
        collecting = asyncio.create_task(_collect_marking(gate, events))
        await asyncio.sleep(0.1)
        async with gate.pushing("a/one") as push:  # the same push goes on while the gate drains
            events.append("manifest")
            push["finished"] = True
        outcome = await collecting
        return events, outcome

    events, outcome = run(scenario())

    assert events == ["layer", "manifest", "collect", "collected"]
    assert outcome["status"] == "DONE"


def test_a_new_push_waits_for_the_collection_and_then_goes_on():
    async def scenario():
        gate, events = WriteGate(idle_seconds=30), []
        collecting = asyncio.create_task(_collect_marking(gate, events))
        await asyncio.sleep(0)

        async def new_push():
            async with gate.pushing("a/two"):
                events.append("new push")
        pushing = asyncio.create_task(new_push())
        await asyncio.gather(collecting, pushing)
        return events, collecting.result()

    events, outcome = run(scenario())

    assert events == ["collect", "collected", "new push"]
    assert outcome["held_writes"] == 1


def test_deletes_wait_only_while_the_collection_runs():
    async def scenario():
        gate, events = WriteGate(idle_seconds=30), []
        collecting = asyncio.create_task(_collect_marking(gate, events))
        await asyncio.sleep(0.01)

        async def delete():
            async with gate.writing():
                events.append("delete")
        await asyncio.gather(collecting, asyncio.create_task(delete()))
        return events

    assert run(scenario()) == ["collect", "collected", "delete"]


def test_a_push_that_never_finishes_postpones_the_collection():
    async def scenario():
        gate, events = WriteGate(idle_seconds=30), []
        async with gate.pushing("a/one"):
            pass
        return events, await _collect_marking(gate, events, drain_seconds=0.3)

    events, outcome = run(scenario())

    assert events == [] and outcome["status"] == "POSTPONED"


def test_an_abandoned_push_lapses_after_its_idle_time():
    async def scenario():
        gate, events = WriteGate(idle_seconds=0.2), []
        async with gate.pushing("a/one"):
            pass
        return events, await _collect_marking(gate, events, drain_seconds=3)

    events, outcome = run(scenario())

    assert events == ["collect", "collected"] and outcome["status"] == "DONE"
