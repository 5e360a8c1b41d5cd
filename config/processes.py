"""Starts Sandcloud's web server, AWS edge listener and Celery worker as child processes, for benchmarks and tests."""
from __future__ import annotations

import http.client
import os
import random
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from django.conf import settings

BASE_DIR = Path(settings.BASE_DIR)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_for_port(port: int, process: subprocess.Popen, timeout: float, *, host: str = "127.0.0.1") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the web server exited early with code {process.returncode}")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"the web server did not listen on port {port} within {timeout:.0f} s")


def _wait_for_http(port: int, process: subprocess.Popen, timeout: float) -> None:
    """Until the server answers an HTTP request. config/webserver.py's parent listens before its daphne processes have
    loaded the site, so a connection alone proves nothing (it waits in the kernel's backlog)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the web server exited early with code {process.returncode}")
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=max(0.5, deadline - time.monotonic()))
        try:
            connection.request("HEAD", "/")
            connection.getresponse()
            return
        except OSError:
            time.sleep(0.1)
        finally:
            connection.close()
    raise RuntimeError(f"the web server did not answer on port {port} within {timeout:.0f} s")


def _wait_for_worker(process: subprocess.Popen, name: str, timeout: float) -> None:
    from config.celery import app

    with app.connection_for_write() as connection:
        connection_errors = (OSError, *connection.connection_errors)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the Celery worker exited early with code {process.returncode}")
        try:
            if app.control.ping(destination=[name], timeout=0.5):
                return
        except connection_errors:
            pass  # the broker restarted under the pooled connection, which reconnects on the next try
    raise RuntimeError(f"the Celery worker did not answer within {timeout:.0f} s")


def _group_stop(process: subprocess.Popen, *, timeout: float) -> None:
    """SIGTERM to a child started in its own session and everything it started, SIGKILL if it outlives `timeout`."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def database_url() -> str:
    """The URL of the database this process uses right now (the test database inside tests)."""
    from django.db import connection

    config = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{config['NAME']}"
    return (f"postgres://{config['USER']}:{config['PASSWORD']}@{config['HOST'] or '127.0.0.1'}:"
            f"{config['PORT'] or 5432}/{config['NAME']}")


@dataclass
class WorkerProcess:
    """A Celery worker child process; tests may kill it, as an operator's machine sometimes does."""

    process: subprocess.Popen
    name: str
    log_path: Path

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL to the worker and its pool: nothing is acknowledged, handed back or cleaned up."""
        if self.alive():
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        """A warm shutdown: running tasks finish first."""
        if self.alive():
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()


def worker_start(*, env: dict[str, str] | None = None, log_dir: Path | None = None, concurrency: int = 2,
                 program: list[str] | None = None, timeout: float = 60) -> WorkerProcess:
    """Starts a Celery worker on this instance's queue, sharing this process's settings and database, and waits until
    it answers a ping. `program` replaces `celery -A config` (e.g. a test's wrapper that halts at a named point)."""
    log_dir = log_dir or BASE_DIR / "var" / "log"
    log_dir.mkdir(parents=True, exist_ok=True)
    child_env = {**os.environ, "PYTHONUNBUFFERED": "1", "DATABASE_URL": database_url(), **(env or {})}
    port = free_port()  # only a unique name for the worker and its log
    name = f"worker-{port}@{socket.gethostname()}"
    program = program or [str(Path(sys.executable).parent / "celery"), "-A", "config"]
    log_path = log_dir / f"worker-{port}.log"
    with open(log_path, "w") as log_file:
        process = subprocess.Popen(
            [*program, "worker", "--loglevel=INFO", f"--concurrency={concurrency}",
             f"--queues={settings.CELERY_TASK_DEFAULT_QUEUE}", f"--hostname={name}", "--without-gossip",
             "--without-mingle"],
            cwd=BASE_DIR, env=child_env, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True)
    worker = WorkerProcess(process=process, name=name, log_path=log_path)
    try:
        _wait_for_worker(process, name, timeout=timeout)
    except BaseException:
        worker.kill()
        raise
    return worker


@contextmanager
def running_stack(*, env: dict[str, str] | None = None, worker: bool = True, log_dir: Path | None = None,
                  web_processes: int | None = None) -> Iterator[str]:
    """Yields the base URL of a daphne server (plus a Celery worker) sharing this process's settings and database.
    With `web_processes`, the server is `make run`'s (config/webserver.py): that many daphne processes on one port."""
    port = free_port()
    log_dir = log_dir or BASE_DIR / "var" / "log"
    log_dir.mkdir(parents=True, exist_ok=True)
    child_env = {**os.environ, "PYTHONUNBUFFERED": "1", "DATABASE_URL": database_url(), **(env or {})}
    bin_dir = Path(sys.executable).parent
    web = None
    workers: list[WorkerProcess] = []
    try:
        with open(log_dir / f"web-{port}.log", "w") as web_log:
            if web_processes is None:
                command = [str(bin_dir / "daphne"), "-b", "127.0.0.1", "-p", str(port), "config.asgi:application"]
            else:
                command = [sys.executable, "-m", "config.webserver", "--host", "127.0.0.1", "--port", str(port),
                           "--processes", str(web_processes)]
            web = subprocess.Popen(command, cwd=BASE_DIR, env=child_env, stdout=web_log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
        if worker:
            workers.append(worker_start(env=env, log_dir=log_dir))
        _wait_for_http(port, web, timeout=60)
        yield f"http://127.0.0.1:{port}"
    finally:
        if web is not None and web.poll() is None:
            os.killpg(web.pid, signal.SIGTERM)
        for each in workers:
            each.stop()
        if web is not None:
            try:
                web.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(web.pid, signal.SIGKILL)
                web.wait()


@dataclass(frozen=True)
class EdgeListener:
    """An AWS edge listener (`manage.py awsedge`) that sandboxes reach at http://aws.sandcloud.internal:<port>/aws."""

    address: str
    port: int
    log_path: Path

    @property
    def settings(self) -> dict[str, object]:
        """The settings that point an install's sandboxes at this listener (a worker process takes them as the
        environment variable SANDCLOUD_AWS_EDGE_PORT)."""
        return {"SANDCLOUD_AWS_EDGE_PORT": self.port,
                "SANDCLOUD_AWS_SANDBOX_ENDPOINT_URL": f"http://aws.sandcloud.internal:{self.port}/aws"}


@contextmanager
def running_edge(*, env: dict[str, str] | None = None, log_dir: Path | None = None,
                 timeout: float = 30) -> Iterator[EdgeListener]:
    """Yields an AWS edge listener sharing this process's settings and database, on a free port of
    SANDCLOUD_AWS_EDGE_PORTS (another install's edge, e.g. `make run`'s, may hold SANDCLOUD_AWS_EDGE_PORT). Sandboxes
    started after their settings take the listener's `settings` call it."""
    from sandbox.engine.host_gateway import host_gateway_address

    address = host_gateway_address()
    log_dir = log_dir or BASE_DIR / "var" / "log"
    log_dir.mkdir(parents=True, exist_ok=True)
    child_env = {**os.environ, "PYTHONUNBUFFERED": "1", "DATABASE_URL": database_url(), **(env or {})}
    first, last = settings.SANDCLOUD_AWS_EDGE_PORTS
    ports = list(range(first, last + 1))
    random.shuffle(ports)  # test runs starting together rarely try the same port first
    edge = None
    try:
        for port in ports:
            try:
                socket.create_server((address, port)).close()
            except OSError:
                continue  # taken
            # Named for the instance too: the parallel processes of a test run take turns on the same few ports.
            log_path = log_dir / f"edge-{settings.SANDCLOUD['INSTANCE']}-{port}.log"
            with open(log_path, "w") as edge_log:
                # Its own settings agree on the port too: what it starts (a function's environment) is told the URL.
                edge = subprocess.Popen([sys.executable, "manage.py", "awsedge", "--port", str(port)], cwd=BASE_DIR,
                                        env={**child_env, "SANDCLOUD_AWS_EDGE_PORT": str(port)}, stdout=edge_log,
                                        stderr=subprocess.STDOUT, start_new_session=True)
            try:
                _wait_for_port(port, edge, timeout=timeout, host=address)
            except RuntimeError:
                if edge.poll() is None:
                    raise
                continue  # another run took the port between the probe and daphne's bind
            yield EdgeListener(address=address, port=port, log_path=log_path)
            return
        raise RuntimeError(f"no free port for an AWS edge listener on {address} between {first} and {last}")
    finally:
        if edge is not None:
            _group_stop(edge, timeout=15)


@dataclass(frozen=True)
class RegistryProcess:
    """ECR's registry (sandbox/registry/server.py) listening on 127.0.0.1:<port>, trusting this site's tokens."""

    port: int
    log_path: Path

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"


@contextmanager
def running_registry(*, token_url: str, port: int | None = None, log_dir: Path | None = None,
                     env: dict[str, str] | None = None, timeout: float = 30) -> Iterator[RegistryProcess]:
    """Yields ECR's registry (`manage.py registry`: the front on 127.0.0.1:<port>, a free one unless given, and
    docker-registry behind it) storing under SANDCLOUD_REGISTRY["DIR"] and sharing this process's database, whose
    clients fetch bearer tokens from `token_url` (this site's /registry/token). `env` adds settings (e.g.
    SANDCLOUD_REGISTRY_QUOTA_MB)."""
    port = port or free_port()
    log_dir = log_dir or BASE_DIR / "var" / "log"
    log_dir.mkdir(parents=True, exist_ok=True)
    child_env = {**os.environ, "PYTHONUNBUFFERED": "1", "DATABASE_URL": database_url(),
                 "SANDCLOUD_REGISTRY_DIR": str(settings.SANDCLOUD_REGISTRY["DIR"]), **(env or {})}
    log_path = log_dir / f"registry-{port}.log"
    with open(log_path, "w") as registry_log:
        process = subprocess.Popen([sys.executable, "manage.py", "registry", "--port", str(port), "--token-url",
                                    token_url], cwd=BASE_DIR, env=child_env, stdout=registry_log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait_for_port(port, process, timeout=timeout)
        yield RegistryProcess(port=port, log_path=log_path)
    finally:
        _group_stop(process, timeout=20)


@contextmanager
def running_dockerproxy(*, directory: Path, env: dict[str, str] | None = None, log_path: Path | None = None,
                        timeout: float = 30) -> Iterator[Path]:
    """Yields `directory` once a `manage.py dockerproxy` sharing this process's settings and database serves the uid
    directories under it (a probe directory's socket says so); afterwards the proxy is stopped and the learner
    volumes' filesystems it mounted there are unmounted."""
    directory.mkdir(parents=True, exist_ok=True)
    log_path = log_path or directory / "proxy.log"
    child_env = {**os.environ, "PYTHONUNBUFFERED": "1", "DATABASE_URL": database_url(), **(env or {})}
    with open(log_path, "w") as proxy_log:
        process = subprocess.Popen([sys.executable, "manage.py", "dockerproxy", "--dir", str(directory)],
                                   cwd=BASE_DIR, env=child_env, stdout=proxy_log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    try:
        probe = directory / "uid-0" / "docker.sock"
        probe.parent.mkdir(exist_ok=True)
        deadline = time.monotonic() + timeout
        while not probe.exists():
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the Docker proxy did not start: {log_path.read_text()[-2000:]}")
            time.sleep(0.05)
        yield directory
    finally:
        _group_stop(process, timeout=15)
        for mountpoint in (directory / "volumes").glob("*"):
            if os.path.ismount(mountpoint):
                subprocess.run(["umount", "-l", str(mountpoint)], check=False)
