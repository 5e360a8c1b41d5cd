"""Provisioning on real worker processes killed with SIGKILL mid-start: redelivery, the reaper, nothing left behind."""
from __future__ import annotations

import os
import signal

from django.conf import settings

from sandbox import services
from sandbox.engine.docker import engine
from sandbox.states import State

from .conftest import containers_of, sandbox_wait, tasks_finished, wait_until


def _halted(halt_file) -> tuple[int, str]:
    """Waits until the halting worker's pool process has started a container and stopped; its pid and that container."""
    def written():
        text = halt_file.read_text() if halt_file.exists() else ""
        return text if text.endswith("\n") else None

    pid, container_id = wait_until(written, what="the worker to start the container and halt").split()
    return int(pid), container_id


def test_a_pool_process_killed_mid_start_is_replaced_and_the_start_finishes_with_one_container(
        worker_stack, private_redis, learner, tmp_path):
    # Given a worker whose pool process has started the learner's container and is killed before recording it.
    halt_file = tmp_path / "halted"
    worker = worker_stack.start(halt_file=halt_file)
    sandbox = services.sandbox_request(owner=learner)
    pid, container_id = _halted(halt_file)
    assert engine().state(container_id).running
    assert sandbox_wait(sandbox.pk, State.PROVISIONING).container_id == ""
    os.kill(pid, signal.SIGKILL)
    # When the worker notices its pool process died (acks_late + reject_on_worker_lost send the task back at once).
    sandbox = sandbox_wait(sandbox.pk, State.RUNNING, State.FAILED)
    # Then the redelivered start found the container it had made: the learner has it, and there is no second one.
    assert sandbox.state == State.RUNNING, sandbox.failure_reason
    assert containers_of(sandbox) == [container_id] and sandbox.container_id == container_id
    assert worker.alive()
    assert private_redis.queued() == 0


def test_a_worker_killed_mid_start_leaves_no_orphan_and_its_redelivered_task_starts_nothing(
        worker_stack, private_redis, learner, tmp_path, monkeypatch):
    # Given a whole worker killed (SIGKILL to the main process and its pool) after it started the learner's container.
    halt_file = tmp_path / "halted"
    worker = worker_stack.start(halt_file=halt_file)
    sandbox = services.sandbox_request(owner=learner)
    _, container_id = _halted(halt_file)
    worker.kill()
    # Nobody acknowledged the task: it waits in Redis for its visibility timeout.
    assert private_redis.unacknowledged() == 1
    # When the reaper runs after the start counts as stuck.
    monkeypatch.setitem(settings.SANDCLOUD, "PROVISION_STUCK_SECONDS", 0)
    services.sandbox_reap()
    # Then the learner is told, and the container the dead worker made is gone.
    sandbox.refresh_from_db()
    assert sandbox.state == State.FAILED and "took too long" in sandbox.failure_reason
    assert engine().state(container_id) is None and containers_of(sandbox) == []
    # And when a new worker gets the task back (its visibility timeout passed), it starts nothing for a failed sandbox.
    replacement = worker_stack.start(SANDCLOUD_BROKER_VISIBILITY_TIMEOUT="1")
    wait_until(lambda: tasks_finished(replacement, "sandbox.tasks.sandbox_provision_task"),
               what="the new worker to take the lost task back and finish it")
    sandbox.refresh_from_db()
    assert sandbox.state == State.FAILED and containers_of(sandbox) == []
    # And the learner's way forward works: a new start runs, and it is the only container of this install.
    again = services.sandbox_request(owner=learner)
    again = sandbox_wait(again.pk, State.RUNNING, State.FAILED)
    assert again.state == State.RUNNING, again.failure_reason
    assert [c.id for c in engine().managed_containers()] == [again.container_id]


def test_a_worker_killed_mid_start_hands_it_to_the_next_worker_once_the_visibility_timeout_passes(
        worker_stack, private_redis, learner, tmp_path):
    # Given a whole worker killed after it started the learner's container.
    halt_file = tmp_path / "halted"
    worker = worker_stack.start(halt_file=halt_file)
    sandbox = services.sandbox_request(owner=learner)
    _, container_id = _halted(halt_file)
    worker.kill()
    # When a new worker starts before the reaper gives up on the start.
    worker_stack.start(SANDCLOUD_BROKER_VISIBILITY_TIMEOUT="1")
    # Then it finishes the start with the container the dead worker made, and no second one.
    sandbox = sandbox_wait(sandbox.pk, State.RUNNING, State.FAILED)
    assert sandbox.state == State.RUNNING, sandbox.failure_reason
    assert containers_of(sandbox) == [container_id] == [sandbox.container_id]
    # And the reaper, run now, leaves it alone.
    services.sandbox_reap()
    sandbox.refresh_from_db()
    assert sandbox.state == State.RUNNING and engine().state(container_id).running
