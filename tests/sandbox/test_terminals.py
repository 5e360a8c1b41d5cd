"""Terminals opened ahead at a warm claim: the learner's socket gets the attach already made, once, and only theirs."""
from __future__ import annotations

import time

import pytest
from asgiref.sync import async_to_sync
from django.conf import settings
from django.test import Client

from sandbox import services, terminals
from sandbox.models import Sandbox
from tests.sandbox.test_consumers import read_until, terminal

pytestmark = pytest.mark.docker


def wait_for_preopened(sandbox_id: int, timeout: float = 10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with terminals._lock:
            entry = terminals._opened.get(sandbox_id)
        if entry is not None and entry[0].done():
            return entry[0].result()
        time.sleep(0.02)
    raise AssertionError(f"no terminal was opened ahead for sandbox {sandbox_id}")


@pytest.fixture
def warm_claim(start_sandbox, learner, monkeypatch):
    monkeypatch.setitem(settings.SANDCLOUD, "WARM_POOL_SIZE", 1)
    assert services.warm_pool_fill() == 1
    client = Client()
    client.force_login(learner)
    client.post("/sandboxes/start/", {"runtime": "runc"})
    sandbox = Sandbox.objects.get(owner=learner)
    yield sandbox
    services.sandbox_stop(sandbox_id=sandbox.pk)
    services.warm_pool_drain()


def test_a_warm_claim_through_the_page_opens_the_owners_terminal_which_their_socket_takes(warm_claim, learner):
    assert warm_claim.from_warm_pool
    preopened = wait_for_preopened(warm_claim.pk)

    communicator = terminal(warm_claim.pk, user=learner)

    async def connect():
        connected, _ = await communicator.connect()
        assert connected
        screen = await read_until(communicator, b"$")
        await communicator.disconnect()
        return screen

    assert b"$" in async_to_sync(connect)()
    assert terminals.terminal_take(sandbox_id=warm_claim.pk) is None  # taken once, by the owner's socket
    assert preopened.sock._closed  # and closed with that socket


def test_an_instructor_watching_never_gets_the_owners_terminal(warm_claim, instructor):
    wait_for_preopened(warm_claim.pk)

    communicator = terminal(warm_claim.pk, user=instructor)

    async def watch():
        connected, _ = await communicator.connect()
        assert connected
        await read_until(communicator, b"read-only")
        await communicator.disconnect()

    async_to_sync(watch)()
    assert terminals.terminal_take(sandbox_id=warm_claim.pk) is not None  # still waiting for its owner


def test_a_terminal_nobody_took_is_closed_after_its_time(warm_claim, monkeypatch):
    preopened = wait_for_preopened(warm_claim.pk)
    now = time.monotonic
    monkeypatch.setattr(terminals.time, "monotonic", lambda: now() + terminals.PREOPEN_SECONDS + 1)

    assert terminals.terminal_take(sandbox_id=warm_claim.pk) is None
    assert preopened.sock._closed


def test_a_terminal_nobody_took_is_closed_on_time_without_another_call(warm_claim, monkeypatch):
    """As when the learner's socket lands in another web process (config/webserver.py) and nothing else happens here."""
    wait_for_preopened(warm_claim.pk)
    terminals.terminal_close(terminals.terminal_take(sandbox_id=warm_claim.pk).result())  # the claim's own, full time
    monkeypatch.setattr(terminals, "PREOPEN_SECONDS", 0.8)
    terminals.terminal_preopen(sandbox_id=warm_claim.pk, container_id=warm_claim.container_id, uid=warm_claim.uid)
    preopened = wait_for_preopened(warm_claim.pk)

    deadline = time.monotonic() + 5
    while not preopened.sock._closed and time.monotonic() < deadline:
        time.sleep(0.05)
    assert preopened.sock._closed
    assert not terminals._opened
    deadline = time.monotonic() + 2
    while terminals._expiry is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert terminals._expiry is None  # the expiry thread ends once nothing is held
