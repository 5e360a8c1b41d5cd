"""Starts Sandcloud's web server and Celery worker as child processes, for benchmarks and browser tests."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from django.conf import settings

BASE_DIR = Path(settings.BASE_DIR)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_for_port(port: int, process: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the web server exited early with code {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"the web server did not listen on port {port} within {timeout:.0f} s")


def _wait_for_worker(process: subprocess.Popen, name: str, timeout: float) -> None:
    from config.celery import app

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the Celery worker exited early with code {process.returncode}")
        if app.control.ping(destination=[name], timeout=0.5):
            return
    raise RuntimeError(f"the Celery worker did not answer within {timeout:.0f} s")


def database_url() -> str:
    """The URL of the database this process uses right now (the test database inside tests)."""
    from django.db import connection

    config = connection.settings_dict
    if config["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{config['NAME']}"
    return (f"postgres://{config['USER']}:{config['PASSWORD']}@{config['HOST'] or '127.0.0.1'}:"
            f"{config['PORT'] or 5432}/{config['NAME']}")


@contextmanager
def running_stack(*, env: dict[str, str] | None = None, worker: bool = True,
                  log_dir: Path | None = None) -> Iterator[str]:
    """Yields the base URL of a daphne server (plus a Celery worker) sharing this process's settings and database."""
    port = free_port()
    log_dir = log_dir or BASE_DIR / "var" / "log"
    log_dir.mkdir(parents=True, exist_ok=True)
    child_env = {**os.environ, "PYTHONUNBUFFERED": "1", "DATABASE_URL": database_url(), **(env or {})}
    worker_name = f"worker-{port}@{socket.gethostname()}"
    bin_dir = Path(sys.executable).parent
    processes: list[subprocess.Popen] = []
    try:
        web_log = open(log_dir / f"web-{port}.log", "w")
        web = subprocess.Popen([str(bin_dir / "daphne"), "-b", "127.0.0.1", "-p", str(port),
                                "config.asgi:application"], cwd=BASE_DIR, env=child_env, stdout=web_log,
                               stderr=subprocess.STDOUT, start_new_session=True)
        processes.append(web)
        if worker:
            worker_log = open(log_dir / f"worker-{port}.log", "w")
            processes.append(subprocess.Popen(
                [str(bin_dir / "celery"), "-A", "config", "worker", "--loglevel=INFO", "--concurrency=2",
                 f"--queues={settings.CELERY_TASK_DEFAULT_QUEUE}", f"--hostname={worker_name}", "--without-gossip",
                 "--without-mingle"],
                cwd=BASE_DIR, env=child_env, stdout=worker_log, stderr=subprocess.STDOUT, start_new_session=True))
        _wait_for_port(port, web, timeout=30)
        if worker:
            _wait_for_worker(processes[-1], worker_name, timeout=60)
        yield f"http://127.0.0.1:{port}"
    finally:
        for process in processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
