"""The terminal and stream WebSockets: who may connect, what they can do, and that bytes really flow (real Docker)."""
from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

from asgiref.sync import async_to_sync, sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import Client

from config.asgi import application
from config.websockets import (CLOSE_TOO_MANY_SOCKETS, CLOSE_TOO_SLOW, SCOPE_KEY, UNSENT_HARD_LIMIT,
                               sockets_open)
from sandbox import consumers, services
from sandbox.engine.streams import log_followers
from tests.conftest import run_in

ORIGIN = b"http://127.0.0.1"


def headers_for(user=None, origin: bytes = ORIGIN) -> list[tuple[bytes, bytes]]:
    headers = [(b"origin", origin), (b"host", b"127.0.0.1")]
    if user is not None:
        client = Client()
        client.force_login(user)
        headers.append((b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode()))
    return headers


def terminal(sandbox_id: int, **kwargs) -> WebsocketCommunicator:
    return WebsocketCommunicator(application, f"/ws/sandboxes/{sandbox_id}/terminal/", headers=headers_for(**kwargs))


def stream(sandbox_id: int, **kwargs) -> WebsocketCommunicator:
    return WebsocketCommunicator(application, f"/ws/sandboxes/{sandbox_id}/stream/", headers=headers_for(**kwargs))


async def read_until(communicator: WebsocketCommunicator, needle: bytes, timeout: float = 10) -> bytes:
    seen = b""
    deadline = time.monotonic() + timeout
    while needle not in seen:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"{needle!r} never arrived; got {seen[-400:]!r}"
        message = await communicator.receive_output(timeout=remaining)
        if message.get("bytes"):
            seen += message["bytes"]
        elif message.get("text"):
            seen += message["text"].encode()
        elif message["type"] == "websocket.close":
            raise AssertionError(f"socket closed ({message.get('code')}) before {needle!r}; got {seen[-400:]!r}")
    return seen


async def read_json_until(communicator: WebsocketCommunicator, messages: list[dict], done, timeout: float = 15) -> None:
    """Appends stream messages to `messages` until `done(messages)` holds."""
    while not done(messages):
        messages.append(json.loads(await communicator.receive_from(timeout=timeout)))


async def close_code(communicator: WebsocketCommunicator) -> int:
    """The code the server closed the socket with. The client then says goodbye as a browser would, so the consumer
    ends the normal way instead of being cancelled mid-read of its channel-layer receive when the loop closes."""
    try:
        connected, code = await communicator.connect(timeout=10)
        if not connected:
            return code
        while True:
            message = await communicator.receive_output(timeout=10)
            if message["type"] == "websocket.close":
                return message.get("code")
    finally:
        await communicator.disconnect(timeout=5)


def test_an_anonymous_visitor_cannot_open_a_terminal(start_sandbox, learner):
    sandbox = start_sandbox(learner)
    assert async_to_sync(close_code)(terminal(sandbox.pk)) == 4401


def test_another_learner_cannot_open_my_terminal_or_stream(start_sandbox, learner, other_learner):
    sandbox = start_sandbox(learner)
    assert async_to_sync(close_code)(terminal(sandbox.pk, user=other_learner)) == 4403
    assert async_to_sync(close_code)(stream(sandbox.pk, user=other_learner)) == 4403


def test_a_socket_from_a_foreign_origin_is_refused(start_sandbox, learner):
    sandbox = start_sandbox(learner)
    communicator = terminal(sandbox.pk, user=learner, origin=b"http://evil.example")

    async def scenario():
        connected, _ = await communicator.connect(timeout=10)
        await communicator.disconnect(timeout=5)
        return connected

    assert async_to_sync(scenario)() is False


def test_the_owner_types_a_command_and_sees_its_output(start_sandbox, learner):
    sandbox = start_sandbox(learner)
    communicator = terminal(sandbox.pk, user=learner)

    async def scenario():
        connected, _ = await communicator.connect(timeout=10)
        assert connected
        await read_until(communicator, b"learner@sandbox")
        await communicator.send_to(text_data=json.dumps({"type": "resize", "cols": 100, "rows": 30}))
        await communicator.send_to(bytes_data=b"echo $((6*7))-done\r")
        output = await read_until(communicator, b"42-done")
        await communicator.disconnect()
        return output

    assert b"42-done" in async_to_sync(scenario)()


def test_reconnecting_replays_the_screen_of_the_same_shell(start_sandbox, learner):
    sandbox = start_sandbox(learner)

    first, second = terminal(sandbox.pk, user=learner), terminal(sandbox.pk, user=learner)

    async def scenario():
        await first.connect(timeout=10)
        await read_until(first, b"learner@sandbox")
        await first.send_to(bytes_data=b"export MARKER=kept; echo remembered-line\r")
        await read_until(first, b"remembered-line\r\n")
        await first.disconnect()
        await second.connect(timeout=10)
        redraw = await read_until(second, b"remembered-line")
        await second.send_to(bytes_data=b"echo value=$MARKER\r")
        await read_until(second, b"value=kept")
        await second.disconnect()
        return redraw

    assert b"remembered-line" in async_to_sync(scenario)()


def test_staff_who_teach_nobody_here_cannot_watch(start_sandbox, learner, staff_user):
    sandbox = start_sandbox(learner)
    assert async_to_sync(close_code)(terminal(sandbox.pk, user=staff_user)) == 4403


def test_the_learners_instructor_watches_read_only_and_their_keystrokes_do_nothing(start_sandbox, learner,
                                                                                   instructor, monkeypatch):
    # tmux's read-only attach would hide a consumer that forwarded the watcher's input. Attach the watcher writable,
    # so only the consumer's own drop stands between their keystrokes and the learner's shell.
    monkeypatch.setattr(consumers, "WATCHER_TMUX", consumers.OWNER_TMUX)
    sandbox = start_sandbox(learner)
    watcher, owner = terminal(sandbox.pk, user=instructor), terminal(sandbox.pk, user=learner)

    async def scenario():
        connected, _ = await watcher.connect(timeout=10)
        assert connected
        await read_until(watcher, b"read-only")
        await watcher.send_to(bytes_data=b"touch /home/learner/staff-was-here\r")
        await watcher.send_to(text_data=json.dumps({"type": "input", "data": "touch /home/learner/x2\r"}))
        # Then the owner types into the same tmux session: once their command has answered, anything the watcher's
        # keystrokes could have started in that shell has run before it.
        await owner.connect(timeout=10)
        await read_until(owner, b"learner@sandbox")
        await owner.send_to(bytes_data=b"echo $((6*7))-after-the-watcher\r")
        await read_until(owner, b"42-after-the-watcher")
        await owner.disconnect()
        await watcher.disconnect()

    async_to_sync(scenario)()
    exit_code, _ = run_in(sandbox, "test -e ~/staff-was-here || test -e ~/x2")
    assert exit_code == 1


def test_a_learner_with_every_socket_in_use_is_refused_one_more_and_another_learner_is_not(
        start_sandbox, learner, other_learner):
    sandbox, theirs = start_sandbox(learner), start_sandbox(other_learner)
    cap = settings.SANDCLOUD["SOCKETS_PER_USER"]
    held = [stream(sandbox.pk, user=learner) for _ in range(cap)]
    one_more, others, again = terminal(sandbox.pk, user=learner), stream(theirs.pk, user=other_learner), \
        stream(sandbox.pk, user=learner)

    async def scenario():
        for communicator in held:
            connected, _ = await communicator.connect(timeout=10)
            assert connected
        refused = await close_code(one_more)
        counted = sockets_open(user_id=learner.pk)
        others_connected, _ = await others.connect(timeout=10)
        others_state = json.loads(await others.receive_from(timeout=10))
        await others.disconnect()
        # Closing one of the learner's sockets gives its place to the next.
        await held.pop().disconnect()
        again_connected, _ = await again.connect(timeout=10)
        first_message = json.loads(await again.receive_from(timeout=10))
        for communicator in [*held, again]:
            await communicator.disconnect()
        return refused, counted, others_connected, others_state, again_connected, first_message

    refused, counted, others_connected, others_state, again_connected, first_message = async_to_sync(scenario)()
    assert refused == CLOSE_TOO_MANY_SOCKETS
    assert counted == cap  # the refused socket took no place
    assert others_connected and others_state["type"] in ("event", "state")
    assert again_connected and first_message["type"] in ("event", "state")
    assert sockets_open(user_id=learner.pk) == 0 and sockets_open(user_id=other_learner.pk) == 0


def test_a_socket_whose_client_stopped_reading_long_ago_is_closed_as_too_slow(start_sandbox, learner):
    """What daphne holds unsent is read from its transport; here the probe reports a backlog past the hard limit."""
    sandbox = start_sandbox(learner)

    async def backlogged(scope, receive, send):
        probe = {SCOPE_KEY: lambda: UNSENT_HARD_LIMIT + 1}
        return await application({**scope, **probe}, receive, send)

    communicator = WebsocketCommunicator(backlogged, f"/ws/sandboxes/{sandbox.pk}/stream/",
                                         headers=headers_for(user=learner))
    assert async_to_sync(close_code)(communicator) == CLOSE_TOO_SLOW


def test_a_stopped_sandbox_says_so_instead_of_opening_a_terminal(start_sandbox, learner):
    sandbox = start_sandbox(learner)
    services.sandbox_stop(sandbox_id=sandbox.pk)

    communicator = terminal(sandbox.pk, user=learner)

    async def scenario():
        await communicator.connect(timeout=10)
        message = json.loads(await communicator.receive_from(timeout=10))
        closing = await communicator.receive_output(timeout=10)
        await communicator.disconnect(timeout=5)
        return message, closing

    message, closing = async_to_sync(scenario)()
    assert message["type"] == "error" and "stopped" in message["message"]
    assert closing["code"] == 4409


def test_the_stream_replays_provisioning_steps_and_carries_the_container_log(start_sandbox, learner):
    sandbox = start_sandbox(learner)
    communicator = stream(sandbox.pk, user=learner)

    async def scenario():
        connected, _ = await communicator.connect(timeout=10)
        assert connected
        messages = []
        await read_json_until(communicator, messages, lambda ms: any(m["type"] == "state" for m in ms))
        await sync_to_async(run_in)(sandbox, "echo log-line-from-inside > /proc/1/fd/1")
        await read_json_until(communicator, messages, lambda ms: any(
            m["type"] == "log" and "log-line-from-inside" in m["lines"] for m in ms))
        await communicator.disconnect()
        return messages

    messages = async_to_sync(scenario)()
    steps = [m["message"] for m in messages if m["type"] == "event" and m.get("replay")]
    assert "Your sandbox is ready" in steps
    assert any(m["type"] == "state" and m["state"] == "running" for m in messages)
    boot_lines = [line for m in messages if m["type"] == "log" for line in m["lines"]]
    assert any(line.startswith("sandbox ready: Linux") for line in boot_lines)


def test_two_pages_on_one_sandbox_share_one_engine_log_stream_and_both_get_every_line(start_sandbox, learner):
    sandbox = start_sandbox(learner)
    first, second = stream(sandbox.pk, user=learner), stream(sandbox.pk, user=learner)

    def has_line(text):
        return lambda ms: any(m["type"] == "log" and any(text in line for line in m["lines"]) for m in ms)

    async def scenario():
        seen_first, seen_second = [], []
        await first.connect(timeout=10)
        await read_json_until(first, seen_first, has_line("sandbox ready: Linux"))
        # The page that joins later is replayed the log's tail from the shared stream.
        await second.connect(timeout=10)
        await read_json_until(second, seen_second, has_line("sandbox ready: Linux"))
        followed = list(log_followers().logs)
        await sync_to_async(run_in)(sandbox, "echo shared-line > /proc/1/fd/1")
        await read_json_until(first, seen_first, has_line("shared-line"))
        await read_json_until(second, seen_second, has_line("shared-line"))
        await first.disconnect()
        await second.disconnect()
        return followed, list(log_followers().logs)

    followed, after = async_to_sync(scenario)()
    assert followed == [sandbox.container_id]
    assert after == []  # the last page to leave closed the stream


def test_a_process_killed_for_memory_is_reported_as_out_of_memory(start_sandbox, learner):
    sandbox = start_sandbox(learner)
    communicator = stream(sandbox.pk, user=learner)

    async def scenario():
        connected, _ = await communicator.connect(timeout=10)
        assert connected
        messages = []
        # The first log line (the boot banner) shows the server is following the container, OOM watch included.
        await read_json_until(communicator, messages, lambda ms: any(m["type"] == "log" for m in ms))
        await sync_to_async(run_in)(sandbox, "python3 -c 'b = bytearray(1024 * 1024 * 1024)'")
        await read_json_until(communicator, messages, lambda ms: any(m.get("level") == "error" for m in ms))
        await communicator.disconnect()
        return [m for m in messages if m.get("level") == "error"]

    errors = async_to_sync(scenario)()
    assert "Out of memory" in errors[0]["message"] and "256 MB" in errors[0]["message"]


def test_the_owners_session_is_recorded_as_asciicast_and_only_they_and_their_instructor_can_replay_it(
        start_sandbox, learner, other_learner, instructor):
    sandbox = start_sandbox(learner)
    communicator = terminal(sandbox.pk, user=learner)

    async def scenario():
        await communicator.connect(timeout=10)
        await read_until(communicator, b"learner@sandbox")
        await communicator.send_to(text_data=json.dumps({"type": "resize", "cols": 90, "rows": 20}))
        await communicator.send_to(bytes_data=b"echo recorded-$((40+2))\r")
        await read_until(communicator, b"recorded-42")
        await communicator.disconnect()

    async_to_sync(scenario)()
    owner, intruder, teacher = Client(), Client(), Client()
    owner.force_login(learner)
    intruder.force_login(other_learner)
    teacher.force_login(instructor)
    url = f"/api/sandboxes/{sandbox.pk}/recording.cast?minutes=5"
    cast = owner.get(url).content.decode().splitlines()
    header, events = json.loads(cast[0]), [json.loads(line) for line in cast[1:]]
    assert header["version"] == 2
    assert any(kind == "o" and "recorded-42" in text for _, kind, text in events)
    assert ["r", "90x20"] in [[kind, text] for _, kind, text in events]
    assert all(0 <= at <= 300 for at, _, _ in events)
    assert teacher.get(url).status_code == 200
    assert intruder.get(url).status_code == 403


def test_recordings_stop_at_the_per_sandbox_cap_and_expire_after_the_sandbox_ends(start_sandbox, learner):
    from datetime import timedelta

    from django.utils import timezone

    from sandbox.models import Sandbox, TerminalRecording
    from sandbox.recording import recording_start, recordings_expire

    sandbox = start_sandbox(learner)
    first = recording_start(sandbox=sandbox)
    first.output(b"x" * 100)
    first.close()
    TerminalRecording.objects.filter(pk=first.recording.pk).update(size_bytes=32 * 1024 * 1024)
    assert recording_start(sandbox=sandbox) is None  # over the cap: the session is not recorded

    services.sandbox_stop(sandbox_id=sandbox.pk)
    Sandbox.objects.filter(pk=sandbox.pk).update(ended_at=timezone.now() - timedelta(days=31))
    assert recordings_expire(before=timezone.now() - timedelta(days=30)) == 1
    assert not TerminalRecording.objects.filter(sandbox=sandbox).exists()
    assert not Path(first.recording.path).exists()
