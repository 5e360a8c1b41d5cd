"""The terminal's output throttle, as logic: a program printing without end is paused, not buffered without end."""
import asyncio

from sandbox import consumers
from sandbox.consumers import OUTPUT_BYTES_PER_SECOND, TerminalConsumer


def test_output_beyond_the_rate_makes_the_reader_pause(monkeypatch):
    slept = []

    async def fake_sleep(seconds):
        slept.append(seconds)

    monkeypatch.setattr(consumers.asyncio, "sleep", fake_sleep)
    consumer = TerminalConsumer()

    async def flood():
        for _ in range(40):  # 40 × 64 KB = 2.5 MB within a millisecond or two (the sleeps return at once)
            await consumer._throttle(65536)

    asyncio.run(flood())
    assert len(slept) >= 40 - (OUTPUT_BYTES_PER_SECOND // 10) // 65536
    assert all(0 < s <= 0.1 for s in slept)


def test_ordinary_output_is_never_paused(monkeypatch):
    slept = []

    async def fake_sleep(seconds):
        slept.append(seconds)

    monkeypatch.setattr(consumers.asyncio, "sleep", fake_sleep)
    consumer = TerminalConsumer()

    async def typing():
        for _ in range(50):
            await consumer._throttle(200)

    asyncio.run(typing())
    assert slept == []
