"""The live log socket of a function's page: the owner (and their instructor) get the lines as they are stored."""
from __future__ import annotations

import json

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator

from config.asgi import application
from sandbox.functions.records import records_flush
from tests.sandbox.test_consumers import headers_for

from .conftest import create

pytestmark = pytest.mark.docker


def follow(path: str, headers) -> WebsocketCommunicator:
    return WebsocketCommunicator(application, path, headers=headers)


async def _lines_until(communicator, needle: str, timeout: float = 15) -> list[str]:
    lines = []
    while not any(needle in line for line in lines):
        message = json.loads(await communicator.receive_from(timeout=timeout))
        lines += [event["message"] for event in message["events"]]
    return lines


def test_the_owner_gets_the_report_line_of_an_invocation_over_the_socket(aws, learner):
    client = aws(learner)
    create(client, learner)
    headers = headers_for(user=learner)

    async def scenario():
        communicator = follow("/ws/functions/hello/logs/", headers)
        connected, _ = await communicator.connect()
        assert connected
        first = json.loads(await communicator.receive_from(timeout=10))
        assert first == {"type": "logs", "events": []}
        from asgiref.sync import sync_to_async

        await sync_to_async(lambda: (client.invoke(FunctionName="hello", Payload=b'{"name": "Ada"}'),
                                     records_flush()))()
        lines = await _lines_until(communicator, "REPORT RequestId:")
        await communicator.disconnect()
        return lines

    lines = async_to_sync(scenario)()
    assert any('hello {"name": "Ada"}' in line for line in lines)


@pytest.mark.parametrize("who, code", [("other", 4403), ("anonymous", 4401)])
def test_nobody_else_follows_a_learners_log(aws, learner, other_learner, who, code):
    create(aws(learner), learner)
    user = other_learner if who == "other" else None
    headers = headers_for(user=user)

    async def scenario():
        communicator = follow(f"/ws/functions/learner/{learner.pk}/hello/logs/" if user else
                              "/ws/functions/hello/logs/", headers)
        connected, close_code = await communicator.connect()
        return connected, close_code

    connected, close_code = async_to_sync(scenario)()
    assert not connected and close_code == code


def test_an_instructor_follows_their_learners_log(aws, learner, instructor):
    client = aws(learner)
    create(client, learner)
    client.invoke(FunctionName="hello", Payload=b"{}")
    records_flush()
    headers = headers_for(user=instructor)

    async def scenario():
        communicator = follow(f"/ws/functions/learner/{learner.pk}/hello/logs/", headers)
        connected, _ = await communicator.connect()
        assert connected
        lines = await _lines_until(communicator, "REPORT RequestId:")
        await communicator.disconnect()
        return lines

    assert any(line.startswith("START RequestId:") for line in async_to_sync(scenario)())
