"""Streamed and hijacked endpoints through the proxy: logs -f, events (only the learner's own), exec -it with a TTY."""
from __future__ import annotations

import os
import pty
import select
import subprocess
import time

from tests.dockerproxy.conftest import DOCKER_CLI

IMAGE = "sandcloud/python:3.11"


def _lines_within(process: subprocess.Popen, wanted: int, seconds: float) -> list[str]:
    lines, deadline = [], time.monotonic() + seconds
    os.set_blocking(process.stdout.fileno(), False)
    buffer = b""
    while len(lines) < wanted and time.monotonic() < deadline:
        select.select([process.stdout], [], [], 0.2)
        buffer += process.stdout.read() or b""
        *done, buffer = buffer.split(b"\n")
        lines += [line.decode() for line in done]
    return lines


def test_logs_follow_streams_lines_as_they_are_written(ada_docker):
    ada_docker.ok("run", "-d", "--name", "ticker", IMAGE, "sh", "-c",
                  "i=0; while true; do i=$((i+1)); echo tick $i; sleep 0.2; done")
    follower = subprocess.Popen([DOCKER_CLI, "logs", "-f", "ticker"], env=ada_docker.env, stdout=subprocess.PIPE)
    try:
        lines = _lines_within(follower, 5, 15)
    finally:
        follower.kill()
    assert len(lines) >= 5 and lines[0] == "tick 1"


def test_events_show_the_learners_own_objects_only(ada_docker, grace_docker):
    fmt = ["--format", "{{.Type}} {{.Action}} {{.Actor.Attributes.name}}"]
    adas = subprocess.Popen([DOCKER_CLI, "events", *fmt], env=ada_docker.env, stdout=subprocess.PIPE)
    graces = subprocess.Popen([DOCKER_CLI, "events", *fmt], env=grace_docker.env, stdout=subprocess.PIPE)
    try:
        time.sleep(1)
        ada_docker.ok("run", "--rm", "--name", "eventful", IMAGE, "true")
        seen_by_ada = _lines_within(adas, 2, 15)
        seen_by_grace = _lines_within(graces, 1, 2)
    finally:
        adas.kill()
        graces.kill()
    assert "container create eventful" in seen_by_ada
    assert seen_by_grace == []


def test_exec_it_gets_a_terminal(ada_docker):
    ada_docker.ok("run", "-d", "--name", "shell", IMAGE, "sleep", "60")
    pid, fd = pty.fork()
    if pid == 0:
        os.execve(DOCKER_CLI, [DOCKER_CLI, "exec", "-it", "shell", "sh", "-c", "tty; echo done"], ada_docker.env)
    output, deadline = b"", time.monotonic() + 20
    while b"done" not in output and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if ready:
            try:
                output += os.read(fd, 4096)
            except OSError:
                break
    os.waitpid(pid, 0)
    assert b"/dev/pts/" in output and b"done" in output, output
