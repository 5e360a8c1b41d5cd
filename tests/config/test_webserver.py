"""`make run`'s web server (config/webserver.py): several daphne processes on one listening socket, each started again
when it exits, all stopped together."""
import os
import signal
import socket
import sys
import time
from pathlib import Path

import pytest
import requests

from config import webserver
from config.processes import running_stack


def _children(pid: int) -> set[int]:
    children = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        children |= {int(child) for child in (task / "children").read_text().split()}
    return children


def _until(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"{what} within {timeout:g} s")


def _answers(base_url: str) -> bool:
    try:  # generous: a process just started loads the site on its first request, slowly on a busy machine
        return requests.get(f"{base_url}/lessons/", timeout=30).status_code == 200
    except requests.ConnectionError:
        return False


def test_the_pause_before_a_restart_grows_while_a_process_keeps_failing_at_once():
    assert [webserver.restart_pause(n) for n in range(7)] == [0, 1, 2, 4, 8, 16, 30]
    assert webserver.restart_pause(40) == webserver.MAX_PAUSE_SECONDS


def test_the_number_of_processes_comes_from_the_setting_or_the_cores(monkeypatch):
    monkeypatch.setenv("SANDCLOUD_WEB_PROCESSES", "3")
    assert webserver.default_processes() == 3
    monkeypatch.delenv("SANDCLOUD_WEB_PROCESSES")
    assert webserver.default_processes() == max(1, min(os.cpu_count() - 1, 4))
    monkeypatch.setenv("SANDCLOUD_WEB_PROCESSES", "two")
    with pytest.raises(ValueError, match="whole number"):
        webserver.default_processes()


def test_a_bad_setting_or_a_taken_port_is_said_in_words(monkeypatch, capsys):
    monkeypatch.setenv("SANDCLOUD_WEB_PROCESSES", "lots")
    assert webserver.main(["--port", "1"]) == 2
    assert "SANDCLOUD_WEB_PROCESSES must be a whole number" in capsys.readouterr().err
    assert webserver.main(["--processes", "0"]) == 2
    assert "--processes must be between 1 and 8" in capsys.readouterr().err
    with socket.create_server(("127.0.0.1", 0)) as taken:
        assert webserver.main(["--port", str(taken.getsockname()[1]), "--processes", "1"]) == 1
    assert "Address already in use" in capsys.readouterr().err


def test_a_process_that_fails_at_once_is_started_again_after_a_growing_pause_then_given_up():
    with socket.create_server(("127.0.0.1", 0)) as listener:
        child = webserver.Child(1, [sys.executable, "-c", "raise SystemExit(3)"], listener.fileno())
        now, starts = 0.0, 0
        while not child.gave_up:
            before = child.process
            child.tend(now)
            if child.process is not None and child.process is not before:
                starts += 1
                child.process.wait(timeout=10)
            now += 0.5
        assert starts == webserver.GIVE_UP_AFTER
        assert now > sum(webserver.restart_pause(n) for n in range(webserver.GIVE_UP_AFTER))  # it did pause


@pytest.mark.docker
def test_two_processes_serve_one_port_each_is_restarted_when_killed_and_sigterm_stops_all(transactional_db,
                                                                                           docker_engine):
    with running_stack(worker=False, web_processes=2) as base_url:
        parent = next(int(pid) for pid in os.listdir("/proc") if pid.isdigit() and _is_webserver(int(pid), base_url))
        first = _until(lambda: len(_children(parent)) == 2 and _children(parent), 30, "two daphne processes")
        # Each process alone answers: kill one, the other serves; the killed one comes back; then the other way round.
        for victim in sorted(first):
            os.kill(victim, signal.SIGKILL)
            assert all(_answers(base_url) for _ in range(10))
            _until(lambda: len(_children(parent)) == 2 and victim not in _children(parent), 60,
                   f"process {victim} replaced")
        survivors = _children(parent)
        assert not survivors & first
        os.kill(parent, signal.SIGTERM)
        _until(lambda: all(_gone(pid) for pid in survivors | {parent}), 20, "the web server and its processes stopped")
        assert not _answers(base_url)


def _is_webserver(pid: int, base_url: str) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"config.webserver" in cmdline and base_url.rsplit(":", 1)[1].encode() in cmdline


def _gone(pid: int) -> bool:
    """Exited (a zombie until its parent collects it)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def test_the_server_stops_with_an_error_when_a_process_keeps_failing_at_once(monkeypatch, capsys):
    # A child that cannot start (here it exits at once, as daphne does on a broken setting) with no pause between tries.
    monkeypatch.setattr(webserver, "daphne_command", lambda fd: [sys.executable, "-c", "raise SystemExit(3)"])
    monkeypatch.setattr(webserver, "restart_pause", lambda failures: 0.0)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    began = time.monotonic()
    assert webserver.serve(host="127.0.0.1", port=port, processes=2) == 1
    assert time.monotonic() - began < 30
    said = capsys.readouterr().err
    assert said.count("exited with code 3") >= webserver.GIVE_UP_AFTER
    assert f"failed {webserver.GIVE_UP_AFTER} times in a row" in said
    with socket.create_server(("127.0.0.1", port)):
        pass  # the port is free again
