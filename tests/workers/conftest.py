"""Worker fixtures: a private Redis this package may restart, and real Celery worker processes its tests may kill."""
from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis
from django.conf import settings

from config.celery import app as celery_app
from config.processes import WorkerProcess, free_port, worker_start
from labs import services as lab_services
from labs.models import Attempt, Lab
from sandbox import services
from sandbox.engine.docker import engine
from sandbox.models import Sandbox
from sandbox.states import ACTIVE
from tests.labs.conftest import lab_folder_write

QUEUE = settings.CELERY_TASK_DEFAULT_QUEUE


@dataclass
class PrivateRedis:
    """A redis-server of this test run's own on a free loopback port: restarting it disturbs nobody else (other test
    runs share the one on 6379). Started without persistence, so a restart loses whatever was queued, as a crash of a
    Redis without an append-only file does."""

    directory: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, socket_timeout=5, socket_connect_timeout=5)

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.directory)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(lambda: self._answers(), what="the private redis-server to answer", timeout=10)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def restart(self) -> None:
        self.kill()
        self.start()

    def _answers(self) -> bool:
        try:
            return bool(self.client().ping())
        except redis.RedisError:
            return False

    def queued(self) -> int:
        """Messages waiting in this instance's queue."""
        return self.client().llen(QUEUE)

    def unacknowledged(self) -> int:
        """Messages a worker took and has not acknowledged (kombu's Redis transport keeps them in this hash)."""
        return self.client().hlen("unacked")


def wait_until(predicate: Callable[[], object], *, what: str, timeout: float = 60, interval: float = 0.1):
    """Polls until `predicate` returns something true and returns it; fails the test, naming `what`, after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")


def tasks_finished(worker: WorkerProcess, task_name: str) -> int:
    """How many `task_name` tasks the worker has finished, succeeded or raised, as its log says."""
    pattern = rf"Task {re.escape(task_name)}\[[0-9a-f-]+\] (succeeded|raised)"
    return len(re.findall(pattern, worker.log_path.read_text(errors="replace")))


def _celery_use_broker(url: str, *, eager: bool) -> None:
    # The app keeps its pools of broker connections (kombu's, one per broker URL); forget them so the next publish
    # takes the pool of `url`. Never close them: the pool of the URL switched back to is the same object again.
    celery_app.conf.broker_url = url
    celery_app.conf.task_always_eager = eager
    celery_app._pool = None
    celery_app.amqp._producer_pool = None


@contextmanager
def celery_broker_use(url: str, *, eager: bool) -> Iterator[None]:
    """This process queues its tasks on `url` (for real unless `eager`) inside the block."""
    previous = (celery_app.conf.broker_url, celery_app.conf.task_always_eager)
    _celery_use_broker(url, eager=eager)
    try:
        yield
    finally:
        _celery_use_broker(previous[0], eager=previous[1])


@pytest.fixture(scope="package")
def private_redis(tmp_path_factory) -> Iterator[PrivateRedis]:
    server = PrivateRedis(directory=tmp_path_factory.mktemp("redis"))
    server.start()
    try:
        # This process now queues tasks on the private Redis for real, instead of running them inline.
        with celery_broker_use(server.url, eager=False):
            yield server
    finally:
        server.kill()


class Workers:
    """Starts workers on the private Redis; one plain worker is kept running between tests that do not kill it."""

    def __init__(self, broker: PrivateRedis, log_dir: Path):
        self.broker, self.log_dir = broker, log_dir
        self.started: list[WorkerProcess] = []
        self._shared: WorkerProcess | None = None

    def env(self, **extra: str) -> dict[str, str]:
        return {"SANDCLOUD_REDIS_URL": self.broker.url, "SANDCLOUD_WARM_POOL_SIZE": "0", **extra}

    def start(self, *, halt_file: Path | None = None, **env: str) -> WorkerProcess:
        """A new worker, the only one on the queue, so the test knows who takes each task; with `halt_file`, one whose
        pool halts once it has started a container (halting_worker)."""
        for worker in self.started:
            worker.stop()
        extra = dict(env)
        program = None
        if halt_file is not None:
            extra["SANDCLOUD_TEST_HALT_FILE"] = str(halt_file)
            program = [sys.executable, "-m", "tests.workers.halting_worker"]
        worker = worker_start(env=self.env(**extra), log_dir=self.log_dir, concurrency=1, program=program)
        self.started.append(worker)
        return worker

    def shared(self) -> WorkerProcess:
        """The plain worker tests share; started again if a test killed it."""
        if self._shared is None or not self._shared.alive():
            self._shared = self.start()
        return self._shared

    def stop_all(self, *, but_shared: bool = False) -> None:
        for worker in self.started:
            if not (but_shared and worker is self._shared):
                worker.kill()
        self.started = [w for w in self.started if w.alive()]


@pytest.fixture(scope="package")
def workers(private_redis, django_db_setup, django_db_blocker, tmp_path_factory) -> Iterator[Workers]:
    pool = Workers(private_redis, tmp_path_factory.mktemp("worker-logs"))
    try:
        yield pool
    finally:
        pool.stop_all()


@pytest.fixture
def worker_stack(workers, private_redis, transactional_db, docker_engine) -> Iterator[Workers]:
    """Workers on a Redis with nothing queued; afterwards every sandbox is stopped and the instance's containers go."""
    private_redis.client().flushall()
    yield workers
    workers.stop_all(but_shared=True)  # a worker a test started must not take the next test's tasks
    for sandbox_id in Sandbox.objects.filter(state__in=ACTIVE).values_list("pk", flat=True):
        services.sandbox_stop(sandbox_id=sandbox_id)
    services.warm_pool_drain()
    for container in engine().managed_containers():
        engine().remove(container.id)


def sandbox_wait(sandbox_id: int, *states: str, timeout: float = 60) -> Sandbox:
    def reached():
        sandbox = Sandbox.objects.get(pk=sandbox_id)
        return sandbox if sandbox.state in states else None

    return wait_until(reached, what=f"sandbox {sandbox_id} to be {' or '.join(states)}", timeout=timeout)


def containers_of(sandbox: Sandbox) -> list[str]:
    """Ids of every container of this install that belongs to the sandbox, by label or by its derived name."""
    from sandbox.policy import container_name

    name = container_name(settings.SANDCLOUD["INSTANCE"], sandbox.pk)
    return sorted(c.id for c in engine().managed_containers()
                  if c.labels.get("sandcloud.sandbox") == str(sandbox.pk) or c.name == name)


# The check hangs while ~/hang exists, after leaving ~/check-started behind: the test then knows the worker is inside
# the check (its docker exec is running), not before or after it.
HANGING_LAB = """
title: Hanging check
summary: A lab whose check can be made to hang.
difficulty: beginner
estimated_minutes: 5
environment:
  runtime: runc
scoring:
  max_attempts: 3
  penalty_per_failed_attempt: 1
  hint_cost: 2
steps:
  - slug: answer
    title: Write the answer
    instructions: steps/one.md
    check:
      timeout: 60
      script: |
        if [ -f ~/hang ]; then touch ~/check-started; sleep 60; fi
        if [ ! -f ~/answer.txt ]; then echo "FAIL: ~/answer.txt does not exist yet."; exit 1; fi
    solution: touch ~/answer.txt
    points: 10
"""


@pytest.fixture
def hanging_lab(tmp_path) -> Lab:
    lab_folder_write(tmp_path, "hanging-check", HANGING_LAB)
    report = lab_services.labs_load(root=tmp_path)
    assert not report.errors, report.errors
    return Lab.objects.get(slug="hanging-check")


def attempt_wait(attempt_id: int, *statuses: str, timeout: float = 60) -> Attempt:
    def reached():
        attempt = Attempt.objects.get(pk=attempt_id)
        return attempt if attempt.status in statuses else None

    return wait_until(reached, what=f"attempt {attempt_id} to be {' or '.join(statuses)}", timeout=timeout)
