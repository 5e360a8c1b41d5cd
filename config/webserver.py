"""The site's web server: several daphne processes accepting on one listening socket.

    python -m config.webserver --host 127.0.0.1 --port 8000 [--processes N]

One daphne process runs Django's Python on one core at most (the GIL), so a class pressing "Start the lab" at the same
second queued on it however many cores the host has (bench herd). This parent binds the socket once and hands it to
each child (`daphne --fd`); the kernel spreads new connections over the processes accepting on it. The parent does
nothing else: a child that exits is started again (after a pause that grows while it keeps failing at once, giving up
after a few such failures so that a broken install stops rather than spins), and SIGTERM or SIGINT stops them all.

What stays per process: how many sockets one user may have open (SANDCLOUD_SOCKETS_PER_USER counts in each), and a
terminal opened ahead at a warm claim (sandbox/terminals.py), which a socket that lands in another process does not
find (it opens its own, as without the head start).
"""
from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

APPLICATION = "config.asgi:application"
BASE_DIR = Path(__file__).resolve().parent.parent
BACKLOG = 1024  # connections the kernel holds while every process is busy (a class of 30 opens about 90 at once)
MAX_PROCESSES = 8

# A child that exits within QUICK_EXIT_SECONDS of its start failed at once (a broken setting, a port, an import):
# it is started again after 1, 2, 4 ... seconds, and after GIVE_UP_AFTER such failures in a row everything stops.
QUICK_EXIT_SECONDS = 10.0
MAX_PAUSE_SECONDS = 30.0
GIVE_UP_AFTER = 5
STOP_SECONDS = 15.0


def default_processes() -> int:
    """SANDCLOUD_WEB_PROCESSES, else one per core beyond the first, at most 4 (each holds its own copy of the site).

    One core is left to Docker and the worker: on the 2-core machine a class of 30 arriving at once kept both cores
    busy with one web process, and a second gained it 0.03 s at the 95th percentile (bench herd: 2.42 against 2.45 s)
    while a single learner's start lost its terminal opened ahead half the time (bench sandbox warm p50 112 against
    91 ms).
    """
    configured = os.environ.get("SANDCLOUD_WEB_PROCESSES", "").strip()
    if configured:
        if not configured.isdigit():
            raise ValueError(f"SANDCLOUD_WEB_PROCESSES must be a whole number, not {configured!r}")
        return int(configured)
    return max(1, min((os.cpu_count() or 1) - 1, 4))


def restart_pause(quick_failures: int) -> float:
    """Seconds to wait before starting a child again that has failed at once `quick_failures` times in a row."""
    if quick_failures <= 0:
        return 0.0
    return min(MAX_PAUSE_SECONDS, 2.0 ** (quick_failures - 1))


@dataclass
class Child:
    number: int
    command: list[str]
    listener_fd: int
    process: subprocess.Popen | None = None
    started_at: float = 0.0
    quick_failures: int = 0
    start_after: float = 0.0

    def tend(self, now: float) -> None:
        """Starts the child if it is due, and notices when it has exited."""
        if self.process is not None:
            code = self.process.poll()
            if code is None:
                return
            quick = now - self.started_at < QUICK_EXIT_SECONDS
            self.quick_failures = self.quick_failures + 1 if quick else 0
            pause = restart_pause(self.quick_failures)
            _say(f"web process {self.number} (pid {self.process.pid}) exited with code {code}; "
                 f"starting it again{f' in {pause:g} s' if pause else ''}")
            self.process, self.start_after = None, now + pause
        if self.process is None and now >= self.start_after and not self.gave_up:
            self.process = subprocess.Popen(self.command, cwd=BASE_DIR, pass_fds=(self.listener_fd,))
            self.started_at = now

    @property
    def gave_up(self) -> bool:
        return self.quick_failures >= GIVE_UP_AFTER


def daphne_command(listener_fd: int) -> list[str]:
    daphne = Path(sys.executable).parent / "daphne"
    return [str(daphne) if daphne.exists() else "daphne", "--fd", str(listener_fd), APPLICATION]


def serve(*, host: str, port: int, processes: int) -> int:
    """Runs until SIGTERM or SIGINT (returns 0), or until a child keeps failing at once (returns 1)."""
    if not 1 <= processes <= MAX_PROCESSES:
        _say(f"--processes must be between 1 and {MAX_PROCESSES} (SANDCLOUD_WEB_PROCESSES), not {processes}")
        return 2
    try:
        listener = socket.create_server((host, port), backlog=BACKLOG)
    except OSError as error:
        _say(f"cannot listen on {host}:{port}: {os.strerror(error.errno)} (is another Sandcloud there? "
             f"SANDCLOUD_PORT chooses another port)")
        return 1
    listener.set_inheritable(True)
    stopping: list[int] = []
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda received, frame: stopping.append(received))
    children = [Child(number, daphne_command(listener.fileno()), listener.fileno())
                for number in range(1, processes + 1)]
    _say(f"serving http://{host}:{port}/ with {processes} daphne process{'es' if processes > 1 else ''}")
    code = 0
    try:
        while not stopping:
            now = time.monotonic()
            for child in children:
                child.tend(now)
            if any(child.gave_up for child in children):
                _say(f"a web process failed {GIVE_UP_AFTER} times in a row within {QUICK_EXIT_SECONDS:g} s of its "
                     f"start: stopping (its log above says why)")
                code = 1
                break
            time.sleep(0.2)
    finally:
        _stop([child.process for child in children if child.process is not None])
        listener.close()
    return code


def _stop(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        if process.poll() is None:
            process.terminate()
    deadline = time.monotonic() + STOP_SECONDS
    for process in processes:
        try:
            process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _say(line: str) -> None:
    print(f"webserver: {line}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m config.webserver", description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=int(os.environ.get("SANDCLOUD_PORT", "8000")))
    parser.add_argument("--processes", type=int, default=None,
                        help="daphne processes (default SANDCLOUD_WEB_PROCESSES, else one per core beyond the first, "
                             "at most 4)")
    args = parser.parse_args(argv)
    try:
        processes = default_processes() if args.processes is None else args.processes
    except ValueError as error:
        _say(str(error))
        return 2
    return serve(host=args.host, port=args.port, processes=processes)


if __name__ == "__main__":
    sys.exit(main())
