"""Redis restarted with tasks queued: after the reapers run, no orphan container, no stuck check, no learner stuck."""
from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from labs import services as lab_services
from labs.models import Attempt
from sandbox import services
from sandbox.engine.docker import engine
from sandbox.policy import container_name, learner_network_name
from sandbox.states import State
from tests.conftest import run_in

from .conftest import attempt_wait, sandbox_wait

INSTANCE = settings.SANDCLOUD["INSTANCE"]


def test_a_redis_restart_that_loses_the_queue_leaves_every_learner_a_way_forward(
        worker_stack, private_redis, learner, other_learner, django_user_model, hanging_lab, monkeypatch):
    # Given three learners whose next step waits in the queue while no worker is free to take it:
    # ada has pressed "Check", grace has claimed a warm workstation (its attach is queued), alan has asked for a
    # cold start.
    alan = django_user_model.objects.create_user("alan", password="pw-alan")
    step = hanging_lab.steps.get(slug="answer")
    worker_stack.shared()
    lab_sandbox = sandbox_wait(lab_services.lab_start(user=learner, lab=hanging_lab).pk, State.RUNNING, State.FAILED)
    assert lab_sandbox.state == State.RUNNING, lab_sandbox.failure_reason
    assert run_in(lab_sandbox, "touch ~/answer.txt")[0] == 0
    monkeypatch.setitem(settings.SANDCLOUD, "WARM_POOL_SIZE", 1)
    assert services.warm_pool_fill() == 1
    worker_stack.shared().stop()
    attempt = lab_services.attempt_request(user=learner, sandbox=lab_sandbox, step=step)
    claimed = services.sandbox_request(owner=other_learner)
    assert claimed.from_warm_pool and claimed.state == State.RUNNING
    cold = services.sandbox_request(owner=alan)
    assert private_redis.queued() == 4  # the check, the attach, the pool refill and the cold start
    # When Redis restarts and comes back empty, and a worker starts.
    private_redis.restart()
    assert private_redis.queued() == 0
    worker_stack.shared()
    # And the reapers run once those tasks count as lost.
    monkeypatch.setitem(settings.SANDCLOUD, "PROVISION_STUCK_SECONDS", 0)
    monkeypatch.setitem(settings.SANDCLOUD, "ORPHAN_GRACE_SECONDS", 0)
    services.sandbox_reap()
    later = timezone.now() + timedelta(seconds=lab_services.grading_time_limit(step) + 60)
    assert lab_services.attempts_reap(now=later) == 1
    # Then ada's check is finished as not counted, and nothing is left pending.
    attempt.refresh_from_db()
    assert attempt.status == Attempt.Status.ERROR and attempt.points == 0 and "does not count" in attempt.message
    assert not Attempt.objects.filter(status__in=[Attempt.Status.PENDING, Attempt.Status.RUNNING]).exists()
    # And grace's workstation was moved onto her own network under her sandbox's name.
    attrs = engine().api.inspect_container(claimed.container_id)
    assert attrs["Name"] == "/" + container_name(INSTANCE, claimed.pk)
    assert list(attrs["NetworkSettings"]["Networks"]) == [learner_network_name(INSTANCE, other_learner.pk)]
    # And alan was told his start was abandoned; every container left belongs to a running sandbox.
    cold.refresh_from_db()
    assert cold.state == State.FAILED and "Please start a new one" in cold.failure_reason
    assert sorted(c.id for c in engine().managed_containers()) == sorted([lab_sandbox.container_id,
                                                                          claimed.container_id])
    # And when Redis restarts once more under the running worker, it reconnects, and each learner can go on:
    # ada checks again and passes, grace uses her sandbox, alan starts a new one.
    private_redis.restart()
    again = lab_services.attempt_request(user=learner, sandbox=lab_sandbox, step=step)
    again = attempt_wait(again.pk, Attempt.Status.PASSED, Attempt.Status.FAILED, Attempt.Status.ERROR)
    assert again.status == Attempt.Status.PASSED, again.message
    claimed.refresh_from_db()
    assert run_in(claimed, "whoami")[1].strip() == "learner"
    fresh = sandbox_wait(services.sandbox_request(owner=alan).pk, State.RUNNING, State.FAILED)
    assert fresh.state == State.RUNNING, fresh.failure_reason
