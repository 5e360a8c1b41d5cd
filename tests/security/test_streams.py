"""Sockets that never read while a learner floods their container's log: the web process stays bounded, others unharmed.

These run against a real daphne started by the test (config/processes.py), because the memory at stake is daphne's
own write buffer, which the in-process test communicator does not have.
"""
from __future__ import annotations

import base64
import json
import os
import re
import socket
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client
from playwright.sync_api import expect
from websockets.sync.client import connect as ws_connect

from config.processes import running_stack
from sandbox.engine.docker import engine
from sandbox.engine.images import LEARNER_GID
from tests.browser.conftest import VIEWPORT, chromium, sign_in

FLOOD_SECONDS = 30
NEVER_READING_STREAMS = 3
MAX_GROWTH_PER_SOCKET_KB = 4 * 1024


@pytest.fixture
def web(transactional_db, docker_engine):
    """daphne on the test database (no worker: the tests start sandboxes in-process); yields (port, pid)."""
    with running_stack(worker=False) as base_url:
        port = int(base_url.rsplit(":", 1)[1])
        yield port, _daphne_pid(port)


def _daphne_pid(port: int) -> int:
    for entry in Path("/proc").iterdir():
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        # The daphne script runs under the venv's python: its path is argv[0] or argv[1].
        if any(arg.endswith(b"/daphne") for arg in argv[:2]) and str(port).encode() in argv:
            return int(entry.name)
    raise AssertionError(f"no daphne process serves port {port}")


def _status(pid: int, field: str) -> int:
    found = re.search(rf"^{field}:\s+(\d+)", Path(f"/proc/{pid}/status").read_text(), re.MULTILINE)
    return int(found.group(1))


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def session_cookie(user) -> str:
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}"


def never_reading_socket(port: int, path: str, cookie: str) -> socket.socket:
    """A client that completes the WebSocket handshake and then never reads a byte of what the server sends."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a small window, so the backlog stays server-side
    sock.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall((f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nOrigin: http://127.0.0.1:{port}\r\n"
                  f"Cookie: {cookie}\r\n\r\n").encode())
    response = b""
    while not response.endswith(b"\r\n\r\n"):  # byte by byte: not one byte of the frames after it is read
        byte = sock.recv(1)
        assert byte, f"the server hung up during the handshake: {response!r}"
        response += byte
    assert response.startswith(b"HTTP/1.1 101"), response
    return sock


def websocket(port: int, path: str, cookie: str, receive_buffer: int | None = None, **kwargs):
    sock = socket.socket()
    if receive_buffer:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    sock.connect(("127.0.0.1", port))
    return ws_connect(f"ws://127.0.0.1:{port}{path}", sock=sock, origin=f"http://127.0.0.1:{port}",
                      additional_headers={"Cookie": cookie}, open_timeout=15, **kwargs)


def receive_until(ws, needle: bytes, timeout: float) -> bytes:
    seen, deadline = b"", time.monotonic() + timeout
    while needle not in seen:
        try:
            frame = ws.recv(timeout=max(0.01, deadline - time.monotonic()))
        except TimeoutError:
            raise AssertionError(f"{needle!r} did not arrive within {timeout} s; got {seen[-300:]!r}") from None
        seen += frame if isinstance(frame, bytes) else frame.encode()
    return seen


def _echo(terminal, n: int) -> float:
    """Seconds from a command typed into the terminal to its answer."""
    sent = time.monotonic()
    # Only the shell's answer holds the sum; the echo of the typed line holds the expression.
    terminal.send(f"echo $(({n}+1000))-ok\r".encode())
    receive_until(terminal, f"{n + 1000}-ok".encode(), timeout=10)
    return time.monotonic() - sent


def flood(sandbox, seconds: int) -> None:
    """The learner writes to their container's stdout (the log the stream socket follows) as fast as they can, and
    prints without end in their terminal's shell (the tmux session every terminal socket of theirs is attached to)."""
    line = "flood " + "x" * 200
    script = (f"setsid timeout {seconds} yes '{line}' > /proc/1/fd/1 2>&1 & "
              f"tmux send-keys -t main 'timeout {seconds} yes {line}' Enter")
    exit_code, output = engine().exec(sandbox.container_id, ["bash", "-c", script],
                                      user=f"{sandbox.uid}:{LEARNER_GID}", timeout=10)
    assert exit_code == 0, output


@pytest.mark.docker
def test_sockets_that_never_read_leave_the_web_process_bounded_and_other_terminals_echoing(
        web, start_sandbox, learner, other_learner):
    port, pid = web
    flooder, bystander = start_sandbox(learner), start_sandbox(other_learner)
    flooder_cookie, bystander_cookie = session_cookie(learner), session_cookie(other_learner)
    stream_path = f"/ws/sandboxes/{flooder.pk}/stream/"

    terminal = websocket(port, f"/ws/sandboxes/{bystander.pk}/terminal/", bystander_cookie)
    receive_until(terminal, b"$ ", timeout=30)
    quiet_echoes = [_echo(terminal, n) for n in range(5)]
    # A page that stops reading during the flood (a frozen tab), then reads again: it is told how many lines it missed.
    slow = websocket(port, stream_path, flooder_cookie, receive_buffer=4096, max_queue=2, ping_interval=None)
    threads_before = _status(pid, "Threads")
    silent = [never_reading_socket(port, path, flooder_cookie)
              for path in [stream_path] * NEVER_READING_STREAMS + [f"/ws/sandboxes/{flooder.pk}/terminal/"]]
    time.sleep(2)  # each socket's replay (log tail, provisioning steps, tmux's first screen) has been written
    rss_before, threads_with_sockets = _status(pid, "VmRSS"), _status(pid, "Threads")

    cpu_before = _cpu_seconds(pid)
    flood(flooder, FLOOD_SECONDS)
    rss_peak, echoes, slow_messages = rss_before, [], []
    deadline = time.monotonic() + FLOOD_SECONDS
    while time.monotonic() < deadline:
        echoes.append(_echo(terminal, 100 + len(echoes)))
        rss_peak = max(rss_peak, _status(pid, "VmRSS"))
        time.sleep(0.25)
    while True:  # the frozen page wakes up and reads what it was sent
        try:
            slow_messages.append(json.loads(slow.recv(timeout=2)))
        except TimeoutError:
            break
    for sock in silent:
        sock.close()
    slow.close()
    terminal.close()

    growth_kb, cpu = rss_peak - rss_before, (_cpu_seconds(pid) - cpu_before) / FLOOD_SECONDS
    echoes.sort()
    print(f"daphne RSS {rss_before} kB -> peak {rss_peak} kB (+{growth_kb} kB), {cpu:.2f} CPU during the flood; "
          f"threads {threads_before} -> {threads_with_sockets}; bystander echo p50 "
          f"{echoes[len(echoes) // 2] * 1000:.0f} ms, max {echoes[-1] * 1000:.0f} ms over {len(echoes)} "
          f"(before the flood: max {max(quiet_echoes) * 1000:.0f} ms)")
    # Five sockets were backed up (three streams and a terminal that never read, one frozen page).
    assert growth_kb < (len(silent) + 1) * MAX_GROWTH_PER_SOCKET_KB
    # Following a log costs no thread: the sockets share the event loop (and one OOM event stream per process).
    assert threads_with_sockets - threads_before < NEVER_READING_STREAMS
    # The other learner's terminal kept answering throughout (what slows it is the flood's load on the 2 cores).
    assert len(echoes) > FLOOD_SECONDS and echoes[-1] < 2.0
    dropped = [m["count"] for m in slow_messages if m["type"] == "dropped"]
    assert dropped and all(count > 0 for count in dropped)
    assert slow_messages[-1]["type"] == "log"  # and the newest lines came after the count


@pytest.mark.browser
@pytest.mark.docker
def test_a_learner_with_too_many_sockets_open_is_told_so_on_the_sandbox_page(web, start_sandbox, learner):
    port, _ = web
    sandbox = start_sandbox(learner)
    cookie = session_cookie(learner)
    held = [never_reading_socket(port, f"/ws/sandboxes/{sandbox.pk}/stream/", cookie)
            for _ in range(settings.SANDCLOUD["SOCKETS_PER_USER"])]
    try:
        with chromium() as browser:
            page = browser.new_page(viewport=VIEWPORT)
            sign_in(page, f"http://127.0.0.1:{port}", username="ada", password="pw-ada",
                    next_path=f"/sandboxes/{sandbox.pk}/")
            banner = page.locator("#terminal-banner")
            expect(banner).to_contain_text("You have too many Sandcloud pages open at once.", timeout=20_000)
            expect(page.locator("#sandbox-log")).to_contain_text("The live log is paused")
    finally:
        for sock in held:
            sock.close()
